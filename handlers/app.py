"""Builds the one Bolt `App`: the single error handler and every area's listeners."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.metrics import Meter
from handlers import actions, commands, events
from handlers.errors import report_error
from handlers.publisher import SlackPublisher

if TYPE_CHECKING:
    from bot.bootstrap import Services

log = logging.getLogger(__name__)


def make_client(*, token: str, base_url: str) -> WebClient:
    """The Web API client the listeners share (Bolt copies its settings per request)."""
    client = WebClient(token=token, base_url=base_url, timeout=30)
    # Slack answers 429 with Retry-After when we post faster than ~1 message/second/channel.
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return client


@dataclass(frozen=True)
class TokenCheck:
    """What Slack said of the bot token: who the bot is, or one line saying what is wrong and what to do."""

    problem: str | None = None
    identity: str = ""


_TOKEN_ADVICE = {
    "invalid_auth": "set SLACK_BOT_TOKEN to the bot token from your Slack app's OAuth page (starts with xoxb-)",
    "not_authed": "set SLACK_BOT_TOKEN to the bot token from your Slack app's OAuth page (starts with xoxb-)",
    "token_revoked": "reinstall the app to the workspace and set SLACK_BOT_TOKEN to the new bot token",
    "token_expired": "token rotation is on: set SLACK_BOT_TOKEN to a fresh bot token",
    "account_inactive": "the bot user or workspace was deactivated: reinstall the app and set SLACK_BOT_TOKEN anew",
}


def check_bot_token(*, token: str, base_url: str, timeout: int = 10) -> TokenCheck:
    """`auth.test` through the real client at `base_url`: the call Bolt makes when the app starts."""
    # The SDK logs a failed request at ERROR with its own wording; the one line returned here says it all.
    quiet = logging.getLogger(f"{__name__}.auth_test")
    quiet.setLevel(logging.CRITICAL)
    client = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[], logger=quiet)
    try:
        data = client.auth_test()
    except SlackApiError as err:
        error = err.response.get("error") if isinstance(err.response.data, dict) else None
        if error is None:
            return TokenCheck(
                f"Slack's Web API answered HTTP {err.response.status_code} at {base_url}, not Slack's JSON; "
                "set SLACK_API_URL to the Slack Web API base URL, e.g. https://slack.com/api/."
            )
        advice = _TOKEN_ADVICE.get(str(error), "check SLACK_BOT_TOKEN and the app's installation")
        return TokenCheck(f"Slack refused SLACK_BOT_TOKEN at {base_url} ({error}): {advice}.")
    except (SlackClientError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        return TokenCheck(
            f"Slack cannot be reached at {base_url} ({reason}); check SLACK_API_URL and the network."
        )
    return TokenCheck(
        identity=f"@{data.get('user', '?')} in {data.get('team', '?')} ({data.get('team_id', '?')})"
    )


def make_publisher(
    *, token: str, base_url: str, timeout: int = 30, meter: Meter | None = None
) -> SlackPublisher:
    """The outbox's publisher. Its client retries nothing: the outbox decides (see handlers.publisher)."""
    return SlackPublisher(
        WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[]), meter=meter
    )


def finish_listeners(app: App) -> None:
    """Wait for listeners still at work after their ack (Bolt runs them on its executor), and start no more."""
    app.listener_runner.listener_executor.shutdown(wait=True)


def build_app(
    *,
    client: WebClient,
    signing_secret: str,
    services: Services,
    socket_mode: bool = False,
    process_before_response: bool = False,
) -> App:
    """`process_before_response`: listeners finish before the HTTP answer (tests read outcomes right after it),
    reactions applied to the votes included."""
    app = App(
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=not socket_mode,
        process_before_response=process_before_response,
        # Reactions on our own messages are delivered; reactions *by* the bot are dropped by Bolt.
        ignoring_self_events_enabled=True,
    )
    # Bolt logs the whole body of a request that fails verification at INFO; keep it out of the logs.
    logging.getLogger("slack_bolt.middleware.request_verification").setLevel(logging.WARNING)

    # Global middleware runs on the thread that answers Slack, before any ack: nothing here may be slow or
    # touch the database (retried events are skipped inside the event listeners, after the ack).
    def attach_meter(context: BoltContext, next: Any) -> None:
        context["meter"] = services.meter  # for handlers.errors, which counts listener failures
        next()

    app.middleware(attach_meter)

    @app.error
    def handle_errors(error: Exception, context: Any) -> None:
        # Listeners report their own failures (see handlers.errors.reported); this catches the rest.
        report_error(error, context, services.publisher)

    # Events first: Bolt tries listeners in the order they were registered, building each matcher's arguments,
    # and a burst of reactions is the busiest traffic there is (commands and clicks then pass three matchers).
    events.register(
        app,
        inbox=services.inbox,
        ballots=services.ballots,
        apply_at_once=process_before_response,
        variations=services.variations,
        jobs=services.jobs,
        publisher=services.publisher,
    )
    commands.register(
        app,
        drafts=services.drafts,
        channels=services.channels,
        rounds=services.rounds,
        patterns=services.patterns,
        providers=services.providers,
        publisher=services.publisher,
    )
    actions.register(
        app,
        drafts=services.drafts,
        rounds=services.rounds,
        ballots=services.ballots,
        variations=services.variations,
        patterns=services.patterns,
        jobs=services.jobs,
        providers=services.providers,
        publisher=services.publisher,
    )
    return app

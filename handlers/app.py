"""Builds the one Bolt `App`: event dedupe, the single error handler, and every area's listeners."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

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


def make_publisher(*, token: str, base_url: str, timeout: int = 30) -> SlackPublisher:
    """The outbox's publisher. Its client retries nothing: the outbox decides (see handlers.publisher)."""
    return SlackPublisher(WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[]))


def build_app(
    *,
    client: WebClient,
    signing_secret: str,
    services: Services,
    socket_mode: bool = False,
    process_before_response: bool = False,
) -> App:
    """`process_before_response`: listeners finish before the HTTP answer (tests read outcomes right after it)."""
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

    def skip_duplicate_events(body: dict[str, Any], next: Any) -> BoltResponse | None:
        # Slack retries an event it thinks we missed; the event_id says whether we already handled it.
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not services.inbox.first_delivery(str(event_id)):
            log.info("skipping retried event %s", event_id)
            return BoltResponse(status=200, body="")
        return next()  # type: ignore[no-any-return]

    app.middleware(skip_duplicate_events)

    @app.error
    def handle_errors(error: Exception, context: Any) -> None:
        # Listeners report their own failures (see handlers.errors.reported); this catches the rest.
        report_error(error, context, services.publisher)

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
        jobs=services.jobs,
        providers=services.providers,
        publisher=services.publisher,
    )
    events.register(
        app,
        rounds=services.rounds,
        variations=services.variations,
        jobs=services.jobs,
        publisher=services.publisher,
    )
    return app

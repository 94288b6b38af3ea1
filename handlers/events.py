"""Event listeners: reactions (on a variation's message or its clip) are votes, thread replies are commands."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import App, BoltContext

from bot import votes
from bot.ballot_box import BallotBox, Reaction
from bot.inbox import Inbox
from bot.jobs import Jobs
from bot.ports import Publisher
from bot.variations import Variations
from handlers.errors import reported

# A reply also sent to the channel, or sent with a file attached, is still a person's reply; edits,
# deletions, joins and bot posts are not.
HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])


def handled_once(inbox: Inbox) -> Callable[[F], F]:
    """Skip an event Slack delivers again (it retries one it thinks we missed; the event_id says so).

    The check writes a row, so it runs inside the listener: Bolt has acknowledged the event by then, and Slack
    never waits on the database for its 200. The insert-or-ignore still lets exactly one delivery through.
    The listener must take a `body` argument (Bolt injects arguments by the wrapped function's names).
    """

    def decorate(listener: F) -> F:
        @functools.wraps(listener)
        def wrapper(**kwargs: Any) -> None:
            event_id = kwargs["body"].get("event_id")
            if event_id and not inbox.first_delivery(str(event_id)):
                log.info("skipping retried event %s", event_id)
                return
            listener(**kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def register(
    app: App,
    *,
    inbox: Inbox,
    ballots: BallotBox,
    apply_at_once: bool = False,
    variations: Variations,
    jobs: Jobs,
    publisher: Publisher,
) -> None:
    guarded = reported(publisher)
    once = handled_once(inbox)

    def tell(channel_id: str, user_id: str, text: str | None, thread_ts: str | None = None) -> None:
        if text:
            publisher.tell_user(channel_id, user_id, text, thread_ts=thread_ts)

    # A reaction is queued for the ballot box's thread, which keeps it (its id skips Slack's retries) and applies
    # it to the votes in batches; a private note for the voter (a moved vote, a closed round) comes from there.
    @app.event("reaction_added")
    @guarded
    def handle_reaction_added(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message" or event.get("user") == context.bot_user_id:
            return
        if votes.normalise_emoji(event["reaction"]) in votes.CANCEL_EMOJI:
            cancel(event=event, body=body)
        else:
            take(event, body, context, active=True)

    @once
    def cancel(event: dict[str, Any], body: dict[str, Any]) -> None:
        """❌ on your own queued or running variation cancels it (once, however often Slack delivers it)."""
        item = event["item"]
        outcome = jobs.cancel_by_reaction(
            channel_id=item["channel"], message_ts=item["ts"], user_id=event["user"]
        )
        tell(item["channel"], event["user"], outcome.message)

    @app.event("reaction_removed")
    @guarded
    def handle_reaction_removed(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message" or event.get("user") == context.bot_user_id:
            return
        take(event, body, context, active=False)

    def take(event: dict[str, Any], body: dict[str, Any], context: BoltContext, *, active: bool) -> None:
        item = event["item"]
        event_ts = str(event.get("event_ts") or "")
        # Slack always sends an event id; without one, the event's own fields name it.
        event_id = (
            body.get("event_id") or f"{event['user']}/{item['ts']}/{event['reaction']}/{active}/{event_ts}"
        )
        ballots.take(
            Reaction(
                event_id=str(event_id),
                channel_id=item["channel"],
                message_ts=item["ts"],
                user_id=event["user"],
                emoji=event["reaction"],
                active=active,
                event_ts=event_ts,
                on_bot_message=_on_bot_message(event, context),
            ),
            at_once=apply_at_once,
        )

    @app.event("message")
    @guarded
    @once
    def handle_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        # Only human replies inside a thread: no edits, deletions, bot posts or top-level chatter.
        if (
            event.get("subtype") not in HUMAN_SUBTYPES
            or event.get("bot_id")
            or not thread_ts
            or thread_ts == ts
        ):
            return
        user_id = event.get("user")
        if not user_id or user_id == context.bot_user_id:
            return
        outcome = variations.handle_reply(
            channel_id=event["channel"], thread_ts=thread_ts, user_id=user_id, text=event.get("text") or ""
        )
        tell(event["channel"], user_id, outcome.message, thread_ts)


def _on_bot_message(event: dict[str, Any], context: BoltContext) -> bool:
    """Whether the reacted message is the bot's (a clip's message among them); unknown counts as maybe."""
    author = event.get("item_user")
    return author is None or author == context.bot_user_id

"""The Slack publisher: the core's `Publisher` port, spoken through `slack_sdk.WebClient`.

Its client retries nothing by itself: a retried post whose first answer was lost would post twice, so every
failure goes back to the outbox, which knows whether it may resend (and looks first when Slack may have acted).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain import Conversation, SharedFile, ThreadRef
from bot.errors import PublishError, PublishUncertain
from bot.metrics import Meter, NoMeter
from bot.records import DecisionRecord
from bot.views import RoundView, VariationView
from handlers import blocks

log = logging.getLogger(__name__)

ALT_TEXT = 1_000  # Slack refuses a longer description with alt_txt_too_large
EVENT_TYPE = "sora_bot_post"  # the message metadata type that carries an outbox row's key
# Slack's answers that no retry can change: the bot is not there, or the message is not acceptable.
PERMANENT = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "too_many_attachments",
        "restricted_action",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "cant_update_message",
        "message_not_found",
    }
)


class SlackPublisher:
    def __init__(self, client: WebClient, *, meter: Meter | None = None) -> None:
        self.client = client
        self.meter = meter or NoMeter()
        self._bot_user_id: str | None = None

    def _call(self, method: str, *, uncertain: bool = True, **kwargs: Any) -> dict[str, Any]:
        """`uncertain`: whether a call that got no answer may still have been carried out by Slack."""
        started, outcome = time.perf_counter(), "no_answer"
        try:
            response = getattr(self.client, method)(**kwargs)
            outcome = "ok"
        except SlackApiError as err:
            error = str(err.response.get("error", "unknown error"))
            retry_after = None
            outcome = "rate_limited" if err.response.status_code == 429 else "error"
            if err.response.status_code == 429:
                retry_after = float(
                    err.response.headers.get("Retry-After", err.response.headers.get("retry-after", 1))
                )
            raise PublishError(
                f"Slack refused {method}: {error}", retry_after=retry_after, permanent=error in PERMANENT
            ) from err
        except (SlackClientError, OSError) as err:
            kind = PublishUncertain if uncertain else PublishError
            raise kind(f"Slack could not be reached for {method}: {err}") from err
        finally:
            self.meter.slack_call(
                method.replace("_", ".", 1), outcome=outcome, seconds=time.perf_counter() - started
            )
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post_round(self, view: RoundView, *, key: str, thread_ts: str | None = None) -> str:
        message = blocks.round_message(view)
        data = self._call(
            "chat_postMessage",
            channel=view.channel_id,
            thread_ts=thread_ts,  # None (dropped by the client): a round that starts its thread
            unfurl_links=False,
            metadata=_metadata(key),
            **message,
        )
        return str(data["ts"])

    def update_round(self, thread: ThreadRef, view: RoundView) -> None:
        self._call(
            "chat_update", channel=thread.channel_id, ts=thread.thread_ts, **blocks.round_message(view)
        )

    def post_variation(self, thread: ThreadRef, view: VariationView, *, key: str) -> str:
        message = blocks.variation_message(view)
        data = self._call(
            "chat_postMessage",
            channel=thread.channel_id,
            thread_ts=thread.thread_ts,
            unfurl_links=False,
            metadata=_metadata(key),
            **message,
        )
        return str(data["ts"])

    def update_variation(self, thread: ThreadRef, message_ts: str, view: VariationView) -> None:
        self._call("chat_update", channel=thread.channel_id, ts=message_ts, **blocks.variation_message(view))

    def upload_file(
        self, thread: ThreadRef, path: Path, *, filename: str, title: str, comment: str, alt_text: str
    ) -> SharedFile:
        data = self._call(
            "files_upload_v2",
            file=str(path),
            filename=filename,
            title=title,
            alt_txt=blocks.clip(alt_text, ALT_TEXT),
            channel=thread.channel_id,
            thread_ts=thread.thread_ts,
            initial_comment=blocks.escape(comment),
        )
        files = data.get("files") or [data.get("file") or {}]
        file_id = str(files[0].get("id", ""))
        try:  # the upload is done: failing to learn where Slack shared it must not make it uncertain
            ts = self.file_message(thread, file_id) if file_id else None
        except PublishError as err:
            log.info("could not ask Slack where %s was shared yet: %s", file_id, err)
            ts = None
        return SharedFile(file_id=file_id, message_ts=ts)

    def file_message(self, thread: ThreadRef, file_id: str) -> str | None:
        data = self._call("files_info", uncertain=False, file=file_id)
        shares = (data.get("file") or {}).get("shares") or {}
        for visibility in ("public", "private"):
            for share in (shares.get(visibility) or {}).get(thread.channel_id) or []:
                if share.get("thread_ts") == thread.thread_ts and share.get("ts"):
                    return str(share["ts"])
        return None

    def announce_winner(self, thread: ThreadRef, view: RoundView, *, key: str) -> str:
        message = blocks.winner_message(view)
        data = self._call(
            "chat_postMessage",
            channel=thread.channel_id,
            thread_ts=thread.thread_ts,
            metadata=_metadata(key),
            **message,
        )
        return str(data["ts"])

    def post_record(self, thread: ThreadRef, record: DecisionRecord, *, key: str) -> str:
        data = self._call(
            "chat_postMessage",
            channel=thread.channel_id,
            thread_ts=thread.thread_ts,
            unfurl_links=False,
            metadata=_metadata(key),
            **blocks.decision_record_message(record),
        )
        return str(data["ts"])

    def send_file_to_user(
        self, user_id: str, *, content: bytes, filename: str, title: str, comment: str
    ) -> None:
        """Slack has no ephemeral files: the file goes to the bot's DM with the person, which only they see."""
        opened = self._call("conversations_open", uncertain=False, users=user_id)
        channel_id = str((opened.get("channel") or {}).get("id") or "")
        if not channel_id:
            raise PublishError("Slack opened no conversation with the asker")
        self._call(
            "files_upload_v2",
            uncertain=False,
            content=content,
            filename=filename,
            title=title,
            channel=channel_id,
            initial_comment=blocks.escape(comment),
        )

    def find_message(self, channel_id: str, *, thread_ts: str | None, key: str, since: float) -> str | None:
        for message in self._messages(channel_id, thread_ts=thread_ts, since=since):
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == EVENT_TYPE
                and (metadata.get("event_payload") or {}).get("key") == key
            ):
                return str(message["ts"])
        return None

    def find_file(self, thread: ThreadRef, *, filename: str) -> SharedFile | None:
        for message in self._messages(thread.channel_id, thread_ts=thread.thread_ts, since=0):
            for file in message.get("files") or []:
                if file.get("name") == filename:
                    return SharedFile(file_id=str(file["id"]), message_ts=str(message["ts"]))
        return None

    def _messages(self, channel_id: str, *, thread_ts: str | None, since: float) -> list[dict[str, Any]]:
        """The thread's messages (or the channel's since `since`) with their metadata; a few pages at most."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(10):
            if thread_ts is not None:
                data = self._call(
                    "conversations_replies",
                    uncertain=False,
                    channel=channel_id,
                    ts=thread_ts,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            else:
                data = self._call(
                    "conversations_history",
                    uncertain=False,
                    channel=channel_id,
                    oldest=f"{since:.6f}",
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            found.extend(data.get("messages") or [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found

    def reactions(self, channel_id: str, message_ts: str) -> dict[str, tuple[str, ...]]:
        data = self._call(
            "reactions_get", uncertain=False, channel=channel_id, timestamp=message_ts, full=True
        )
        bot = self._bot_user()
        return {
            str(reaction["name"]): tuple(u for u in reaction.get("users") or [] if u != bot)
            for reaction in (data.get("message") or {}).get("reactions") or []
        }

    def tell_user(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> None:
        self._call(
            "chat_postEphemeral",
            uncertain=False,
            channel=channel_id,
            user=user_id,
            thread_ts=thread_ts,
            **blocks.notice(text),
        )

    def notify_channel(self, channel_id: str, text: str, *, by: str) -> None:
        self._call(
            "chat_postMessage",
            uncertain=False,
            channel=channel_id,
            unfurl_links=False,
            **blocks.notice_by(by, text),
        )

    def conversation(self, channel_id: str) -> Conversation:
        try:
            data = self._call("conversations_info", uncertain=False, channel=channel_id)
        except PublishError as err:
            if "channel_not_found" in str(err):  # Slack hides a private conversation the bot is not in
                return Conversation(channel_id=channel_id, private=True, member=False)
            raise
        info = data.get("channel") or {}
        private = any(bool(info.get(flag)) for flag in ("is_private", "is_im", "is_mpim", "is_group"))
        # DMs and group DMs carry no is_member: if Slack shows them to the bot at all, the bot is in them.
        member = bool(info.get("is_member", True)) and not info.get("is_archived")
        return Conversation(channel_id=channel_id, private=private, member=member)

    def is_admin(self, user_id: str) -> bool:
        user = self._call("users_info", uncertain=False, user=user_id).get("user") or {}
        return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))

    def _bot_user(self) -> str | None:
        if self._bot_user_id is None:
            try:
                self._bot_user_id = str(self._call("auth_test", uncertain=False).get("user_id") or "")
            except PublishError as err:
                log.warning("could not learn the bot's own user id: %s", err)
                return None
        return self._bot_user_id or None


def _metadata(key: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}

"""The Slack publisher: the core's `Publisher` port, spoken through `slack_sdk.WebClient`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain import RoundView, ThreadRef, VariationView
from bot.errors import PublishError
from handlers import blocks

log = logging.getLogger(__name__)


class SlackPublisher:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = getattr(self.client, method)(**kwargs)
        except SlackApiError as err:
            raise PublishError(
                f"Slack refused {method}: {err.response.get('error', 'unknown error')}"
            ) from err
        except (SlackClientError, OSError) as err:
            raise PublishError(f"Slack could not be reached for {method}: {err}") from err
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post_round(self, view: RoundView) -> str:
        message = blocks.round_message(view)
        data = self._call("chat_postMessage", channel=view.channel_id, unfurl_links=False, **message)
        return str(data["ts"])

    def update_round(self, thread: ThreadRef, view: RoundView) -> None:
        self._call(
            "chat_update", channel=thread.channel_id, ts=thread.thread_ts, **blocks.round_message(view)
        )

    def post_variation(self, thread: ThreadRef, view: VariationView) -> str:
        message = blocks.variation_message(view)
        data = self._call(
            "chat_postMessage",
            channel=thread.channel_id,
            thread_ts=thread.thread_ts,
            unfurl_links=False,
            **message,
        )
        return str(data["ts"])

    def update_variation(self, thread: ThreadRef, message_ts: str, view: VariationView) -> None:
        self._call("chat_update", channel=thread.channel_id, ts=message_ts, **blocks.variation_message(view))

    def upload_file(self, thread: ThreadRef, path: Path, *, title: str, comment: str) -> str:
        data = self._call(
            "files_upload_v2",
            file=str(path),
            filename=path.name,
            title=title,
            channel=thread.channel_id,
            thread_ts=thread.thread_ts,
            initial_comment=blocks.escape(comment),
        )
        files = data.get("files") or [data.get("file") or {}]
        return str(files[0].get("id", ""))

    def announce_winner(self, thread: ThreadRef, view: RoundView) -> str:
        message = blocks.winner_message(view)
        data = self._call(
            "chat_postMessage", channel=thread.channel_id, thread_ts=thread.thread_ts, **message
        )
        return str(data["ts"])

    def tell_user(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> None:
        self._call(
            "chat_postEphemeral", channel=channel_id, user=user_id, thread_ts=thread_ts, **blocks.notice(text)
        )

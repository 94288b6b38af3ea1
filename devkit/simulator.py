"""Plays Slack's users towards the bot: commands, clicks, modal submissions, reactions and replies.

Each action's payload is built once, as Slack builds it, and handed to a delivery: signed HTTP requests to
`/slack/events` (`HttpDelivery`, the default) or Socket Mode envelopes (`devkit.socket_mode.SocketModeDelivery`)."""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk.signature import SignatureVerifier

from devkit.slack_api import (
    BOT_ID,
    TEAM_ID,
    Ephemeral,
    FakeSlack,
    Message,
    View,
    emoji_name,
    new_hash,
    now_ts,
)


@dataclass(frozen=True)
class SimResponse:
    status: int
    headers: dict[str, str]
    body: str
    json: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Delivery(Protocol):
    """How Slack hands the bot what people did: each method returns the bot's answer."""

    def command(self, fields: Mapping[str, str]) -> SimResponse: ...

    def interaction(self, payload: Mapping[str, Any]) -> SimResponse: ...

    def event(self, envelope: Mapping[str, Any], *, retry_num: int | None) -> SimResponse: ...


class HttpDelivery:
    """HTTP mode: signed requests to `<app_url>/slack/events`, as Slack sends them."""

    def __init__(self, *, app_url: str, signing_secret: str, timeout: float = 10.0) -> None:
        self.events_url = app_url.rstrip("/") + "/slack/events"
        self._verifier = SignatureVerifier(signing_secret)
        self._timeout = timeout
        # No proxies: the bot under test is always local, whatever HTTP(S)_PROXY says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def command(self, fields: Mapping[str, str]) -> SimResponse:
        return self.post(urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def interaction(self, payload: Mapping[str, Any]) -> SimResponse:
        body = "payload=" + urllib.parse.quote(json.dumps(payload))
        return self.post(body.encode(), "application/x-www-form-urlencoded")

    def event(self, envelope: Mapping[str, Any], *, retry_num: int | None) -> SimResponse:
        extra = {}
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(envelope).encode(), "application/json", extra_headers=extra)

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        signature: str | None = None,
        timestamp: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> SimResponse:
        timestamp = timestamp or str(int(time.time()))
        if signature is None:
            signature = self._verifier.generate_signature(timestamp=timestamp, body=body.decode()) or ""
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            **(extra_headers or {}),
        }
        request = urllib.request.Request(self.events_url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                status, raw = response.status, response.read()
                reply_headers = dict(response.headers.items())
        except urllib.error.HTTPError as err:
            with err:
                status, raw, reply_headers = err.code, err.read(), dict(err.headers.items())
        text = raw.decode("utf-8", errors="replace")
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        return SimResponse(
            status=status,
            headers=reply_headers,
            body=text,
            json=decoded if isinstance(decoded, dict) else None,
        )


class SlackSimulator:
    """Plays Slack towards the bot; user activity is kept in the fake.

    Requests go as signed HTTP to `app_url` (with `signing_secret`), or through `delivery` (Socket Mode)."""

    def __init__(
        self,
        fake: FakeSlack,
        *,
        app_url: str | None = None,
        signing_secret: str | None = None,
        delivery: Delivery | None = None,
        team_id: str = TEAM_ID,
        api_app_id: str = "A0001",
        timeout: float = 10.0,
    ) -> None:
        if delivery is None:
            if app_url is None or signing_secret is None:
                raise ValueError("give app_url and signing_secret (HTTP mode), or a delivery")
            delivery = HttpDelivery(app_url=app_url, signing_secret=signing_secret, timeout=timeout)
        self.fake = fake
        self.delivery = delivery
        self.team_id = team_id
        self.api_app_id = api_app_id
        self._counter = itertools.count(1)
        self._tag = secrets.token_hex(3).upper()

    def command(self, user_id: str, channel_id: str, text: str, *, command: str = "/sora") -> SimResponse:
        fields = {
            "token": "verification-token",
            "team_id": self.team_id,
            "team_domain": self.fake.team_domain,
            "channel_id": channel_id,
            "channel_name": self.fake.channel_name(channel_id),
            "user_id": user_id,
            "user_name": self.fake.user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.fake.new_response_url(channel_id, user_id),
            "trigger_id": self._trigger_id(),
        }
        return self.delivery.command(fields)

    def click(
        self,
        user_id: str,
        *,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        message: Message | Ephemeral | Mapping[str, Any] | None = None,
        channel_id: str,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
        response_url: str | None = None,
        action_text: str | None = None,
        selected_option: Mapping[str, Any] | None = None,
    ) -> SimResponse:
        """Send a `block_actions` payload for a button click (or, with `selected_option`, a menu choice)."""
        message_body: dict[str, Any] | None = None
        thread_ts: str | None = None
        if isinstance(message, Ephemeral):
            # Slack does not echo an ephemeral message back in the payload; only container.message_ts.
            is_ephemeral, message_ts, thread_ts = True, message_ts or message.ts, message.thread_ts
        elif isinstance(message, Message):
            message_body, message_ts, thread_ts = (
                message.to_slack(),
                message_ts or message.ts,
                message.thread_ts,
            )
        elif message is not None:
            message_body = dict(message)
            message_ts = message_ts or message_body.get("ts")
            thread_ts = message_body.get("thread_ts")
        if message_ts is None:
            raise ValueError("click() needs a message or a message_ts")
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or f"b{next(self._counter)}",
            "value": value,
            "type": "button",
            "action_ts": now_ts(),
        }
        if selected_option is not None:
            action = {**action, "type": "static_select", "selected_option": dict(selected_option)}
            del action["value"]
        if action_text is not None:
            action["text"] = {"type": "plain_text", "text": action_text, "emoji": True}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "token": "verification-token",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "team": {"id": self.team_id, "domain": self.fake.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self.fake.channel_name(channel_id)},
            "container": container,
            "trigger_id": self._trigger_id(),
            "response_url": response_url
            or self.fake.new_response_url(
                channel_id, user_id, original_ts=message_ts, original_is_ephemeral=is_ephemeral
            ),
            "state": {"values": {}},
            "actions": [action],
        }
        if message_body is not None:
            payload["message"] = message_body
        return self.delivery.interaction(payload)

    def select(
        self,
        user_id: str,
        *,
        action_id: str,
        block_id: str,
        message: Message | Ephemeral,
        option: Mapping[str, Any],
    ) -> SimResponse:
        """Choose `option` in a `static_select` on `message`."""
        return self.click(
            user_id,
            action_id=action_id,
            block_id=block_id,
            message=message,
            channel_id=message.channel,
            selected_option=option,
        )

    def click_button(
        self, user_id: str, *, message: Message | Ephemeral, action_id: str, channel_id: str | None = None
    ) -> SimResponse:
        """Click the button `action_id` found in `message`'s blocks, with its value and block_id."""
        found = _find_button(message.blocks, action_id)
        if found is None:
            available = sorted(_button_ids(message.blocks))
            raise AssertionError(
                f"no button with action_id {action_id!r} in message {message.ts} "
                f"(buttons: {', '.join(available) or 'none'}; text: {message.text!r})"
            )
        block_id, button = found
        label = button.get("text", {}).get("text") if isinstance(button.get("text"), dict) else None
        return self.click(
            user_id,
            action_id=action_id,
            value=button.get("value"),
            block_id=block_id,
            message=message,
            channel_id=channel_id or message.channel,
            action_text=label,
        )

    def submit_view(
        self, user_id: str, *, view: View | Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]
    ) -> SimResponse:
        """Submit a modal. Leaf values may be plain strings, sent as `plain_text_input` values."""
        spec = copy.deepcopy(view.view if isinstance(view, View) else dict(view))
        vid = spec.get("id") or f"V{self._tag}{next(self._counter):04d}"
        full = {
            "type": "modal",
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "blocks": [],
            "title": {"type": "plain_text", "text": ""},
            "hash": new_hash(),
            "root_view_id": vid,
            "previous_view_id": None,
            "team_id": self.team_id,
            "app_id": self.api_app_id,
            "bot_id": BOT_ID,
            **spec,
            "id": vid,
            "state": {
                "values": {
                    block: {
                        action: ({"type": "plain_text_input", "value": v} if isinstance(v, str) else dict(v))
                        for action, v in actions.items()
                    }
                    for block, actions in values.items()
                }
            },
        }
        payload: dict[str, Any] = {
            "type": "view_submission",
            "token": "verification-token",
            "team": {"id": self.team_id, "domain": self.fake.team_domain},
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "trigger_id": self._trigger_id(),
            "view": full,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return self.delivery.interaction(payload)

    def react(
        self,
        user_id: str,
        channel_id: str,
        ts: str,
        emoji: str,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        event_ts: str | None = None,
        record: bool = True,
    ) -> SimResponse:
        """`event_ts` sets when Slack says it happened (to deliver events out of order); `record` False sends
        the event for a reaction already recorded in the fake (a retry, or a late delivery)."""
        return self._reaction(
            "reaction_added", user_id, channel_id, ts, emoji, event_id, retry_num, event_ts, record
        )

    def unreact(
        self,
        user_id: str,
        channel_id: str,
        ts: str,
        emoji: str,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        event_ts: str | None = None,
        record: bool = True,
    ) -> SimResponse:
        return self._reaction(
            "reaction_removed", user_id, channel_id, ts, emoji, event_id, retry_num, event_ts, record
        )

    def reply(
        self,
        user_id: str,
        channel_id: str,
        thread_ts: str,
        text: str,
        *,
        event_id: str | None = None,
        also_to_channel: bool = False,
        with_file: bool = False,
    ) -> SimResponse:
        """A thread reply; `also_to_channel` is Slack's "Also send to channel" (subtype `thread_broadcast`),
        `with_file` a reply with a file attached (subtype `file_share`)."""
        subtype = "thread_broadcast" if also_to_channel else "file_share" if with_file else None
        return self.post(user_id, channel_id, text, thread_ts=thread_ts, event_id=event_id, subtype=subtype)

    def post(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        event_id: str | None = None,
        subtype: str | None = None,
    ) -> SimResponse:
        """A user's message (top level, or in a thread), stored in the fake and sent as a `message` event."""
        message = self.fake.record_user_message(channel_id, user_id, text, thread_ts=thread_ts)
        event: dict[str, Any] = {
            "type": "message",
            "user": user_id,
            "text": text,
            "ts": message.ts,
            "channel": channel_id,
            "channel_type": "channel",
            "event_ts": message.ts,
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if subtype is not None:
            event["subtype"] = subtype
        if subtype == "file_share":
            event["files"] = [
                {"id": f"F{self._tag}{next(self._counter):04d}", "name": "still.png", "mimetype": "image/png"}
            ]
            event["upload"] = False
        if message.thread_ts is not None:
            event["thread_ts"] = message.thread_ts
            parent = self.fake.message(channel_id, message.thread_ts)
            if parent is not None:
                event["parent_user_id"] = parent.user
        return self._post_event(event, event_id=event_id, retry_num=None)

    def post_raw(
        self, body: bytes, *, content_type: str, signature: str | None = None, timestamp: str | None = None
    ) -> SimResponse:
        """Send `body` as is; give a wrong `signature` or a stale `timestamp` to test request verification."""
        if not isinstance(self.delivery, HttpDelivery):
            raise TypeError("post_raw sends HTTP requests: this simulator delivers over Socket Mode")
        return self.delivery.post(body, content_type, signature=signature, timestamp=timestamp)

    def _reaction(
        self,
        kind: str,
        user_id: str,
        channel_id: str,
        ts: str,
        emoji: str,
        event_id: str | None,
        retry_num: int | None,
        event_ts: str | None = None,
        record: bool = True,
    ) -> SimResponse:
        name = emoji_name(emoji)
        # Recorded before delivery, as in Slack: the reaction exists by the time the event arrives.
        if record:
            self.fake.record_reaction(channel_id, ts, name, user_id, added=kind == "reaction_added")
        event: dict[str, Any] = {
            "type": kind,
            "user": user_id,
            "reaction": name,
            "item": {"type": "message", "channel": channel_id, "ts": ts},
            "event_ts": event_ts or now_ts(),
        }
        author = self.fake.author(channel_id, ts)
        if author is not None:
            event["item_user"] = author
        return self._post_event(event, event_id=event_id, retry_num=retry_num)

    def _post_event(
        self, event: dict[str, Any], *, event_id: str | None, retry_num: int | None
    ) -> SimResponse:
        envelope = {
            "token": "verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{self._tag}{next(self._counter):06d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return self.delivery.event(envelope, retry_num=retry_num)

    def _user(self, user_id: str) -> dict[str, str]:
        name = self.fake.user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _trigger_id(self) -> str:
        return f"{next(self._counter)}.{self.team_id}.{secrets.token_hex(16)}"


def _iter_buttons(blocks: list[dict[str, Any]]) -> list[tuple[str | None, dict[str, Any]]]:
    found: list[tuple[str | None, dict[str, Any]]] = []
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            elements.append(accessory)
        found += [
            (block.get("block_id"), e) for e in elements if isinstance(e, dict) and e.get("type") == "button"
        ]
    return found


def _find_button(blocks: list[dict[str, Any]], action_id: str) -> tuple[str | None, dict[str, Any]] | None:
    return next(
        ((block_id, b) for block_id, b in _iter_buttons(blocks) if b.get("action_id") == action_id), None
    )


def _button_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return {str(b.get("action_id")) for _, b in _iter_buttons(blocks)}

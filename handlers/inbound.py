"""Slack's HTTP requests at the edge: the body read within a cap, the signature checked over the raw bytes, the
body parsed as Slack sends it, and a request handed to Bolt that Bolt reads right.

Bolt's own parser takes any form body containing the substring "payload" for an interaction (a slash command
`/sora draft a payload drone` came back 404), raises on a non-integer timestamp, on invalid UTF-8 and on a signed
`payload=` that is not JSON (500s with tracebacks), and logs the body of a forged request. So nothing reaches Bolt
here unless it is signed, decoded and parsed; everything else gets a 4xx and a log line without its body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl

from slack_bolt import BoltRequest
from slack_bolt.context import BoltContext
from slack_bolt.request.internals import build_context

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

# Slack refuses a request older than five minutes; so do we, in either direction (clock skew).
MAX_AGE_SECONDS = 300
# Slack's largest bodies are interactions carrying a modal (250 kB at most as JSON) or a 50-block message,
# URL-encoded: well under 2 MiB. A body above this is not from Slack.
MAX_SLACK_BODY_BYTES = 2 * 1024 * 1024

_DIGITS = re.compile(rb"[0-9]{1,15}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class Refusal:
    """Why a request is answered without reaching Bolt: an HTTP status and a reason safe to log and return."""

    status: int
    reason: str


class SlackRequest(BoltRequest):
    """A `BoltRequest` whose body was parsed here, so Bolt's form parser (which mistakes any form body containing
    "payload" for an interaction) never runs. The raw body stays as Slack signed it, for Bolt's own check."""

    def __init__(
        self,
        *,
        raw_body: str,
        body: dict[str, Any],
        headers: Mapping[str, str | list[str]],
        query: str | Mapping[str, list[str]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(body="", query=query, headers=dict(headers), context=context)  # type: ignore[arg-type]
        self.raw_body = raw_body
        self.body = body
        self.context = build_context(BoltContext(context or {}), body)

    def to_copyable(self) -> SlackRequest:
        # Bolt copies a request for lazy listeners; the copy must keep our parse, not redo Bolt's.
        return SlackRequest(
            raw_body=self.raw_body,
            body=self.body,
            headers={name: list(values) for name, values in self.headers.items()},
            query={name: list(values) for name, values in self.query.items()},
            context=self.context.to_copyable(),
        )


def read_body(environ: WSGIEnvironment, *, limit: int) -> bytes | Refusal:
    """The whole body, or a refusal: an unreadable Content-Length, one above `limit`, or a body cut short.

    Never reads more than `limit` bytes (the server in front has buffered at most its own cap)."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not declared:
        return b""
    if not _DIGITS.fullmatch(declared.encode("latin-1", "replace")):
        return Refusal(400, "unreadable Content-Length")
    length = int(declared)
    if length > limit:
        return Refusal(413, "body too large")
    stream: BinaryIO = environ["wsgi.input"]
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 64 * 1024))
        if not chunk:
            return Refusal(400, "body shorter than its Content-Length")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def headers_of(environ: WSGIEnvironment) -> dict[str, str]:
    """Request headers, lower-case with dashes, as Bolt names them."""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def verify_signature(
    *, secret: str, headers: Mapping[str, str], body: bytes, now: Callable[[], float] = time.time
) -> Refusal | None:
    """Slack's v0 signature over the raw bytes: HMAC-SHA256 of `v0:{timestamp}:{body}`, within five minutes."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not signature:
        return Refusal(401, "missing or unreadable signature headers")
    if abs(now() - int(timestamp)) > MAX_AGE_SECONDS:
        return Refusal(401, "stale timestamp")
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace")):
        return Refusal(401, "invalid signature")
    return None


def parse_body(text: str, content_type: str) -> dict[str, Any] | Refusal:
    """What Slack sends, by its content type: JSON for the Events API; a form for slash commands; a form whose
    one `payload` field is JSON for interactions (buttons, modals, shortcuts)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (not media_type and text.lstrip().startswith("{")):
        return _json_object(text, what="JSON body")
    if media_type in ("application/x-www-form-urlencoded", ""):
        try:
            fields = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
        except (UnicodeDecodeError, ValueError):
            return Refusal(400, "unreadable form")
        form = dict(fields)
        if "payload" in form:
            return _json_object(form["payload"], what="interaction payload")
        return form
    return Refusal(415, "unsupported content type")


def _json_object(text: str, *, what: str) -> dict[str, Any] | Refusal:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return Refusal(400, f"{what} is not JSON")
    if not isinstance(value, dict):
        return Refusal(400, f"{what} is not a JSON object")
    unexpected = _unexpected_shape(value)
    if unexpected:
        return Refusal(400, f"{what}: {unexpected}")
    return value


# What Bolt indexes into without checking, by the types Slack sends (slack.md §7.1). A signed body that breaks
# these would otherwise fail inside Bolt as a 500: it is malformed, and answered 400 here.
_STRINGS = (
    "type",
    "callback_id",
    "action_id",
    "block_id",
    "trigger_id",
    "response_url",
    "value",
    "api_app_id",
)
_OBJECTS = ("user", "channel", "container", "message", "view", "workflow_step", "event")
_NULLABLE_OBJECTS = ("team", "enterprise")  # null for org-wide installs
_LISTS_OF_OBJECTS = ("authorizations", "actions", "response_urls")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "event_callback": ("event",),
    "block_actions": ("actions",),
    "interactive_message": ("actions", "callback_id"),
    "view_submission": ("view",),
    "view_closed": ("view",),
    "shortcut": ("callback_id",),
    "message_action": ("callback_id",),
    "block_suggestion": ("action_id",),
    "dialog_submission": ("callback_id",),
    "dialog_suggestion": ("callback_id",),
    "dialog_cancellation": ("callback_id",),
    "workflow_step_edit": ("callback_id", "workflow_step"),
}
_EVENT_OBJECTS = ("item", "message", "previous_message", "assistant_thread")


def _unexpected_shape(body: dict[str, Any]) -> str | None:
    """Why a JSON body (an event or an interaction) has a shape Slack never sends, or None."""
    for name in _STRINGS:
        if name in body and not isinstance(body[name], str):
            return f"{name} is not a string"
    for name in _OBJECTS:
        if name in body and not isinstance(body[name], dict):
            return f"{name} is not an object"
    for name in _NULLABLE_OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict | str):
            return f"{name} is not an object"
    for name in _LISTS_OF_OBJECTS:
        if name in body and not (
            isinstance(body[name], list) and all(isinstance(v, dict) for v in body[name])
        ):
            return f"{name} is not a list of objects"
    missing = [name for name in _REQUIRED.get(str(body.get("type")), ()) if not body.get(name)]
    if missing:
        return f"{body['type']} without {', '.join(missing)}"
    if "view" in body and not isinstance(body["view"].get("type"), str):
        return "view has no type"
    if body.get("type") == "block_actions" and not all(
        isinstance(a.get("action_id"), str) for a in body["actions"]
    ):
        return "an action has no action_id"
    if "event" in body:
        event = body["event"]
        if not isinstance(event.get("type"), str):
            return "event has no type"
        for name in _EVENT_OBJECTS:
            if event.get(name) is not None and not isinstance(event[name], dict):
                return f"event.{name} is not an object"
    return None


def read_slack_request(
    environ: WSGIEnvironment, *, signing_secret: str, limit: int = MAX_SLACK_BODY_BYTES
) -> SlackRequest | Refusal:
    """A verified, parsed request for Bolt, or why not: 413 too large, 401 unsigned, 400 malformed."""
    body = read_body(environ, limit=limit)
    if isinstance(body, Refusal):
        return body
    headers = headers_of(environ)
    refused = verify_signature(secret=signing_secret, headers=headers, body=body)
    if refused is not None:
        return refused
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "body is not UTF-8")
    parsed = parse_body(text, headers.get("content-type", ""))
    if isinstance(parsed, Refusal):
        return parsed
    try:
        return SlackRequest(
            raw_body=text, body=parsed, headers=headers, query=str(environ.get("QUERY_STRING") or "")
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        # Bolt reads team, user and channel ids out of the body as it builds the request; a signed body of a
        # shape it cannot read that way (say, `"event": "x"`) is malformed, not a fault of ours.
        return Refusal(400, "body has an unexpected shape")

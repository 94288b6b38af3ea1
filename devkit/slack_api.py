"""A stateful fake of the Slack Web API on 127.0.0.1: messages, files, views, reactions, and the calls it received."""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import json
import mimetypes
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

from devkit.limits import Refusal, check_alt_txt, check_message, check_view

T = TypeVar("T")

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"

# Methods that take an app-level token (xapp-) and refuse a bot token, as Slack does.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60  # seconds

_FIRST_TS_SECONDS = 1_700_000_000
_TS_STEP_MICROS = 100


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake received.

    `method` is the Web API method (`chat.postMessage`), or `upload` / `response_url` / `download` for the
    file upload, response_url and file download endpoints, which are not Web API methods, or `not_found`.
    """

    method: str
    params: dict[str, Any]
    authorization: str | None
    at: float
    path: str
    status: int
    response: dict[str, Any] | None
    answer_lost: bool = False  # performed, but the connection was dropped before the answer (`lose_answer`)


@dataclass
class UploadedFile:
    id: str
    filename: str
    title: str
    length: int
    url_private: str
    alt_txt: str | None = None
    content: bytes | None = None
    completed: bool = False
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    message_ts: str | None = None

    @property
    def size(self) -> int:
        return len(self.content) if self.content is not None else self.length

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    def to_slack(self) -> dict[str, Any]:
        """The file object Slack puts in a message's `files` list."""
        return {
            "id": self.id,
            "name": self.filename,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else "",
            "size": self.size,
            "user": BOT_USER_ID,
            "url_private": self.url_private,
            "url_private_download": self.url_private,
        }


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    bot_id: str | None = None
    files: list[UploadedFile] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    edited_ts: str | None = None
    deleted: bool = False
    metadata: dict[str, Any] | None = None  # {"event_type": ..., "event_payload": {...}}

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def edited(self) -> bool:
        return self.edited_ts is not None

    def to_slack(self, *, include_metadata: bool = False) -> dict[str, Any]:
        """The message as Slack shows it in payloads (`block_actions.message`, history).

        Slack returns `metadata` only to readers that ask for it (`include_all_metadata`).
        """
        out: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
            "team": TEAM_ID,
        }
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.files:
            out["files"] = [f.to_slack() for f in self.files]
            out["upload"] = True
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if include_metadata and self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass
class Ephemeral:
    """A message only `user` sees; always authored by the bot."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"  # or "response_url"
    response_url_id: str | None = None
    edited: bool = False


@dataclass
class View:
    id: str
    trigger_id: str | None
    view: dict[str, Any]  # as Slack returns it: with id, hash, root_view_id, state
    opened_with: str  # "views.open" or "views.push"
    updates: int = 0


@dataclass
class _ResponseUrl:
    id: str
    channel: str
    user: str
    original_ts: str | None
    original_is_ephemeral: bool
    created_at: float
    uses: int = 0
    last_ephemeral_ts: str | None = None


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: int | None
    error: str | None
    lose_answer: bool = False


@dataclass
class _Hook:
    method: str
    action: Callable[[dict[str, Any]], None]
    when: Callable[[dict[str, Any]], bool] | None
    times: int


@dataclass
class _Slowdown:
    seconds: float
    remaining: int | None  # None: every call until cleared


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] | None = None
    lost: bool = False  # the server closes the connection instead of answering
    delay: float = 0.0  # seconds the server waits before answering, outside the fake's lock


class _ApiError(Exception):
    def __init__(self, error: str, *, detail: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail


class FakeSlack:
    """A stateful Slack Web API on 127.0.0.1 that records every call; use `with FakeSlack() as fake:`.

    It refuses what Slack refuses, so tests catch it before a workspace does: Block Kit, modal, text and
    upload limits (`devkit.limits`), revoked tokens (`revoke_token`), `not_in_channel`, response_urls past
    5 uses or 30 minutes. Faults for fault tests: `fail_next` (an HTTP status, an error, or a lost answer)
    and `slow`.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        channels: Mapping[str, str] | None = None,
        bot_name: str = "sora",
        team_name: str = "Sora Demo",
        team_domain: str = "sora-demo",
        app_id: str = "A0001",
        valid_tokens: frozenset[str] | None = None,
        strict_channels: bool = False,
        private_channels: Iterable[str] = (),
        admins: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`channels` are the channels that exist, and the bot is a member of each of them.

        Channels the fake was not told about are accepted as member channels, unless `strict_channels`
        is set: then they answer `channel_not_found`, as Slack does. `private_channels` are private channels
        (ids starting with D are DMs, G group DMs): `conversations.info` says so, and answers
        `channel_not_found` for one the bot is not in. `admins` are workspace admins in `users.info`.
        `clock` (epoch seconds) decides when a response_url expires.
        """
        self.bot_user_id = BOT_USER_ID
        self.bot_id = BOT_ID
        self.team_id = TEAM_ID
        self.bot_name = bot_name
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id = app_id
        self._user_names = dict(users or {})
        self._channel_names = dict(channels or {})
        self._valid_tokens = valid_tokens
        self._revoked_tokens: set[str] = set()
        self._strict_channels = strict_channels
        self._clock = clock
        self._known_channels = set(self._channel_names)
        self._left_channels: set[str] = set()
        self._private_channels = set(private_channels)
        self._admins = set(admins)
        # One re-entrant lock so query helpers can be called from a wait_for predicate under the Condition.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._ids = itertools.count(1)
        self._last_micros = 0
        self._calls: list[Call] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._channel_order: list[str] = []
        self._ephemerals: list[Ephemeral] = []
        self._files: dict[str, UploadedFile] = {}
        self._views: dict[str, View] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._slowdowns: dict[str, _Slowdown] = {}
        self._hooks: list[_Hook] = []
        self._unshared_answers = 0  # files.info answers still to give without `shares` (`share_slowly`)
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "reactions.get": self._reactions_get,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
        }
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        server = _Server(self)
        self._port = int(server.server_port)
        # A short poll interval keeps stop() fast; tests start and stop a fake per test.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeSlack is not started; call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def user_name(self, user_id: str) -> str:
        if user_id == self.bot_user_id:
            return self.bot_name
        with self._lock:
            return self._user_names.get(user_id) or _derived_name(user_id, "user")

    def channel_name(self, channel_id: str) -> str:
        with self._lock:
            return self._channel_names.get(channel_id) or _derived_name(channel_id, "channel")

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        times: int = 1,
        lose_answer: bool = False,
    ) -> None:
        """Fail the next `times` calls to `method`: HTTP `status` + Retry-After, or `{"ok": false, error}`.

        With `lose_answer=True` the call is performed in full (the message is posted, the file shared) and
        then the connection is dropped without an answer, so the client sees a connection error and cannot
        know whether the call happened. Only that answer is lost: slack_sdk's default
        ConnectionErrorRetryHandler retries once, and the retry is a genuine second call that the fake
        performs again, exactly as Slack would (a lost `chat.postMessage` retried by the SDK leaves two
        messages). A client built with `retry_handlers=[]` does not retry.

        `method` may also be `upload` or `response_url` to fail those endpoints.
        """
        fault = _Fault(status, retry_after, error, lose_answer)
        with self._lock:
            self._faults.setdefault(method, deque()).extend([fault] * times)

    def after(
        self,
        method: str,
        action: Callable[[dict[str, Any]], None],
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
        times: int = 1,
    ) -> None:
        """Run `action(params)` once `method` has been carried out and before it is answered (for fault tests:
        kill the bot between Slack doing something and the bot hearing of it). `when` picks which calls."""
        with self._lock:
            self._hooks.append(_Hook(method, action, when, times))

    def _run_hooks(self, method: str, params: dict[str, Any]) -> None:
        with self._lock:
            due = [
                h
                for h in self._hooks
                if h.method == method and h.times > 0 and (h.when is None or h.when(params))
            ]
            for hook in due:
                hook.times -= 1
        for hook in due:
            hook.action(params)

    def slow(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Answer the next `times` calls to `method` (every call when None) `seconds` late.

        The call takes effect when it arrives; only its answer is late, as with a slow Slack, so a client
        that times out and retries does the call twice. `seconds=0` clears it.
        """
        with self._lock:
            if seconds <= 0 or times == 0:
                self._slowdowns.pop(method, None)
            else:
                self._slowdowns[method] = _Slowdown(seconds, times)

    def serve_socket_mode(self, issue_url: Callable[[], str]) -> None:
        """Answer `apps.connections.open` with a URL from `issue_url` (see `devkit.socket_mode`)."""
        with self._lock:
            self._methods["apps.connections.open"] = lambda params: {"ok": True, "url": issue_url()}

    def share_slowly(self, times: int = 1) -> None:
        """Answer the next `times` `files.info` calls without `shares`, as Slack does while it is still sharing
        a just-completed upload (the share happens asynchronously after `files.completeUploadExternal`)."""
        with self._lock:
            self._unshared_answers = times

    def revoke_token(self, token: str) -> None:
        """From now on every call made with `token` answers `token_revoked`, as after an app is uninstalled."""
        with self._lock:
            self._revoked_tokens.add(token)

    def remove_bot_from(self, channel_id: str) -> None:
        """The bot leaves `channel_id`: posting, sharing files and reading there answer `not_in_channel`."""
        with self._lock:
            self._known_channels.add(channel_id)
            self._left_channels.add(channel_id)

    def add_bot_to(self, channel_id: str) -> None:
        with self._lock:
            self._known_channels.add(channel_id)
            self._left_channels.discard(channel_id)

    def make_private(self, channel_id: str, private: bool = True) -> None:
        with self._lock:
            (self._private_channels.add if private else self._private_channels.discard)(channel_id)

    def is_member(self, channel_id: str) -> bool:
        with self._lock:
            if channel_id in self._left_channels:
                return False
            return channel_id in self._known_channels or not self._strict_channels

    def new_response_url(
        self,
        channel_id: str,
        user_id: str,
        *,
        original_ts: str | None = None,
        original_is_ephemeral: bool = False,
    ) -> str:
        """A response_url as Slack puts in commands and clicks; replace_original targets `original_*`.

        Like Slack's, it works 5 times within 30 minutes of its creation; then it answers 404 `used_url` or
        `expired_url` (and the call is recorded).
        """
        with self._lock:
            rid = f"R{next(self._ids):07d}"
            self._response_urls[rid] = _ResponseUrl(
                rid, channel_id, user_id, original_ts, original_is_ephemeral, created_at=self._clock()
            )
        return f"{self.base_url}/response/{rid}"

    def record_user_message(
        self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        with self._lock:
            message = Message(
                channel=channel_id,
                ts=self._next_ts(),
                user=user_id,
                text=text,
                thread_ts=self._thread_root(channel_id, thread_ts),
            )
            self._store_message(message)
            self._notify()
            return copy.deepcopy(message)

    def record_reaction(
        self, channel_id: str, ts: str, name: str, user_id: str, *, added: bool = True
    ) -> bool:
        """Add or remove `user_id`'s reaction; False when the message is unknown to the fake."""
        with self._lock:
            message = self._messages.get((channel_id, ts))
            if message is None:
                return False
            users = message.reactions.setdefault(emoji_name(name), [])
            if added and user_id not in users:
                users.append(user_id)
            elif not added and user_id in users:
                users.remove(user_id)
            if not users:
                del message.reactions[emoji_name(name)]
            self._notify()
            return True

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str, *, thread_ts: str | None = None) -> list[Message]:
        """Top-level messages of `channel`, or the replies of the thread `thread_ts`, in ts order."""
        with self._lock:
            found = [
                m
                for m in self._messages.values()
                if m.channel == channel
                and (not m.is_reply if thread_ts is None else m.is_reply and m.thread_ts == thread_ts)
            ]
            return [copy.deepcopy(m) for m in sorted(found, key=lambda m: ts_key(m.ts))]

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            found = self._messages.get((channel, ts))
            return copy.deepcopy(found) if found is not None else None

    def author(self, channel: str, ts: str) -> str | None:
        """Who posted a message (Slack's `item_user` on a reaction), without copying the message."""
        with self._lock:
            found = self._messages.get((channel, ts))
            return found.user if found is not None else None

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)
            ]

    def files(self) -> list[UploadedFile]:
        with self._lock:
            return [copy.deepcopy(f) for f in self._files.values()]

    def views(self) -> list[View]:
        with self._lock:
            return [copy.deepcopy(v) for v in self._views.values()]

    def wait_for(
        self, predicate: Callable[[], T | None], *, timeout: float = 10.0, what: str = "condition"
    ) -> T:
        """Wait until `predicate()` is truthy and return its value; Bolt runs listeners in the background."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self._version
            # Evaluated outside the lock so a predicate that calls the fake over HTTP cannot deadlock it.
            result = predicate()
            if result:
                return result
            with self._changed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out waiting for {what}")
                if self._version == seen:
                    # Capped so predicates on state outside the fake (a listener's list) are re-checked too.
                    self._changed.wait(min(remaining, 0.05))

    def channels(self) -> list[str]:
        """Channels with messages or ephemerals in them, in the order they first saw activity."""
        with self._lock:
            return list(self._channel_order)

    def transcript(self, *, show_ts: bool = False) -> str:
        """The workspace as a person reads it; see `devkit.transcript`."""
        # transcript renders this module's types, so it imports this module and not the other way round.
        from devkit.transcript import transcript

        with self._lock:  # one consistent snapshot, not one per query
            return transcript(self, show_ts=show_ts)

    def render(self, item: Message | Ephemeral) -> str:
        """One message or ephemeral as `transcript()` shows it."""
        from devkit.transcript import render

        with self._lock:
            return render(self, item)

    def _dispatch(self, verb: str, path: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        url = urllib.parse.urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        authorization = headers.get("Authorization")
        if len(parts) == 2 and parts[0] == "api":
            try:
                params = _parse_params(url.query, headers.get("Content-Type") or "", body)
            except ValueError:
                return self._finish(
                    parts[1], path, {}, authorization, _json_reply(200, _error("invalid_json"))
                )
            return self._api(parts[1], path, params, authorization)
        if len(parts) == 2 and parts[0] == "upload" and verb == "POST":
            return self._upload(parts[1], path, body, authorization)
        if len(parts) == 2 and parts[0] == "response" and verb == "POST":
            return self._response_url(parts[1], path, body)
        if len(parts) >= 2 and parts[0] == "files" and verb == "GET":
            return self._download(parts[1], path, authorization)
        return self._finish("not_found", path, {}, authorization, _text_reply(404, "not_found"))

    def _api(self, method: str, path: str, params: dict[str, Any], authorization: str | None) -> _Reply:
        def perform() -> _Reply:
            if method not in self._methods:
                return _json_reply(200, _error("unknown_method"))
            token = self._token(authorization, params)
            if token in self._revoked_tokens:
                return _json_reply(200, _error("token_revoked"))
            refusal = self._token_refusal(method, token)
            if refusal is not None:
                return _json_reply(200, _error(refusal))
            try:
                return _json_reply(200, self._methods[method](params))
            except _ApiError as err:
                return _json_reply(200, _error(err.error, detail=err.detail))
            except Exception as exc:  # a bug in the fake must reach the test as a failed call, not a hang
                return _json_reply(500, _error(f"fake_slack_bug: {exc!r}"))

        with self._lock:
            reply = self._finish(method, path, params, authorization, self._with_faults(method, perform))
        self._run_hooks(method, params)
        return reply

    def _finish(
        self, method: str, path: str, params: dict[str, Any], authorization: str | None, reply: _Reply
    ) -> _Reply:
        with self._lock:
            self._calls.append(
                Call(
                    method=method,
                    params=copy.deepcopy(params),
                    authorization=authorization,
                    at=time.time(),
                    path=path,
                    status=reply.status,
                    response=copy.deepcopy(reply.payload),
                    answer_lost=reply.lost,
                )
            )
            self._notify()
        return reply

    def _with_faults(self, method: str, perform: Callable[[], _Reply]) -> _Reply:
        """`perform()`, unless a fault queued for `method` answers instead; lost or late as asked."""
        queue = self._faults.get(method)
        fault = queue.popleft() if queue else None
        if fault is not None and not fault.lose_answer:
            reply = _fault_reply(fault)
        else:
            reply = perform()
            if fault is not None:
                reply = dataclasses.replace(reply, lost=True)
        slowdown = self._slowdowns.get(method)
        if slowdown is not None:
            reply = dataclasses.replace(reply, delay=slowdown.seconds)
            if slowdown.remaining is not None:
                slowdown.remaining -= 1
                if slowdown.remaining <= 0:
                    del self._slowdowns[method]
        return reply

    @staticmethod
    def _token(authorization: str | None, params: Mapping[str, Any]) -> str:
        if authorization and authorization.startswith("Bearer "):
            return authorization.removeprefix("Bearer ").strip()
        token = params.get("token")
        return token if isinstance(token, str) else ""

    def _token_refusal(self, method: str, token: str) -> str | None:
        """Slack's error for a token that cannot call `method`, or None: app-level tokens (xapp-) open Socket
        Mode connections and nothing else; bot tokens do the rest."""
        if method in APP_TOKEN_METHODS:
            if not token:
                return "not_authed"
            if token.startswith("xox"):
                return "not_allowed_token_type"
            return None if token.startswith("xapp-") else "invalid_auth"
        if token.startswith("xapp-"):
            return "not_allowed_token_type"
        return None if self._authorized(None, {"token": token}) else "invalid_auth"

    def _authorized(self, authorization: str | None, params: Mapping[str, Any]) -> bool:
        token = self._token(authorization, params)
        if self._valid_tokens is not None:
            return token in self._valid_tokens
        return token.startswith("xoxb-")

    def _upload(self, file_id: str, path: str, body: bytes, authorization: str | None) -> _Reply:
        def perform() -> _Reply:
            pending = self._files.get(file_id)
            if pending is None:
                return _text_reply(404, "file_not_found")
            pending.content = body
            return _text_reply(200, f"OK - {len(body)}")

        with self._lock:
            params: dict[str, Any] = {"file_id": file_id, "length": len(body)}
            return self._finish("upload", path, params, authorization, self._with_faults("upload", perform))

    def _download(self, file_id: str, path: str, authorization: str | None) -> _Reply:
        with self._lock:
            found = self._files.get(file_id)
            if not self._authorized(authorization, {}):
                reply = _text_reply(403, "invalid_auth")
            elif found is None or found.content is None:
                reply = _text_reply(404, "file_not_found")
            else:
                reply = _Reply(200, found.content, {"Content-Type": found.mimetype})
            return self._finish("download", path, {"file_id": file_id}, authorization, reply)

    def _response_url(self, rid: str, path: str, body: bytes) -> _Reply:
        with self._lock:
            try:
                decoded = json.loads(body or b"{}")
            except ValueError:
                decoded = None
            params: dict[str, Any] = decoded if isinstance(decoded, dict) else {}

            def perform() -> _Reply:
                target = self._response_urls.get(rid)
                if target is None:
                    return _text_reply(404, "no_service")
                # Slack: a response_url works up to 5 times within 30 minutes of the interaction.
                if self._clock() - target.created_at > RESPONSE_URL_LIFETIME:
                    return _text_reply(404, "expired_url")
                if target.uses >= RESPONSE_URL_USES:
                    return _text_reply(404, "used_url")
                target.uses += 1
                if decoded is None:
                    return _text_reply(400, "invalid_payload")
                try:
                    self._respond(target, params)
                except _ApiError as err:
                    return _json_reply(400, _error(err.error, detail=err.detail))
                return _text_reply(200, "ok")

            reply = self._with_faults("response_url", perform)
            return self._finish("response_url", path, params, None, reply)

    def _respond(self, target: _ResponseUrl, params: Mapping[str, Any]) -> None:
        text = str(params.get("text") or "")
        blocks = _json_list(params.get("blocks"))
        if params.get("delete_original"):
            self._delete_original(target)
            return
        _check_limits(text, blocks)
        if params.get("replace_original"):
            if target.original_ts is not None and not target.original_is_ephemeral:
                original = self._messages.get((target.channel, target.original_ts))
                if original is not None:
                    original.text, original.blocks, original.edited_ts = text, blocks, now_ts()
                    return
            ephemeral = self._ephemeral_by_ts(
                target.original_ts if target.original_is_ephemeral else target.last_ephemeral_ts
            )
            if ephemeral is not None:
                ephemeral.text, ephemeral.blocks, ephemeral.edited = text, blocks, True
                return
        thread_ts = params.get("thread_ts") or None
        if params.get("response_type") == "in_channel":
            self._store_message(
                Message(
                    channel=target.channel,
                    ts=self._next_ts(),
                    user=self.bot_user_id,
                    text=text,
                    blocks=blocks,
                    bot_id=self.bot_id,
                    thread_ts=self._thread_root(target.channel, thread_ts),
                )
            )
            return
        ephemeral = Ephemeral(
            channel=target.channel,
            user=target.user,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            source="response_url",
            response_url_id=target.id,
        )
        self._add_ephemeral(ephemeral)
        target.last_ephemeral_ts = ephemeral.ts

    def _delete_original(self, target: _ResponseUrl) -> None:
        if target.original_ts is not None and not target.original_is_ephemeral:
            self._delete_message(target.channel, target.original_ts)
            return
        ts = target.original_ts if target.original_is_ephemeral else target.last_ephemeral_ts
        self._ephemerals = [e for e in self._ephemerals if e.ts != ts]

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(_require(params, "channel", "channel_not_found"))
        text, blocks = _text_and_blocks(params)
        self._check_images(blocks)
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            user=self.bot_user_id,
            text=text,
            blocks=blocks,
            bot_id=self.bot_id,
            thread_ts=self._thread_root(channel, params.get("thread_ts") or None),
            metadata=_metadata(params.get("metadata")),
        )
        self._store_message(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_slack()}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        self._member_channel(_require(params, "channel", "channel_not_found"))
        message = self._own_message(params, "cant_update_message")
        text = str(params["text"] or "") if "text" in params else message.text
        # Slack keeps the previous blocks when `blocks` is omitted, and clears them on an empty list.
        blocks = _json_list(params["blocks"]) if "blocks" in params else message.blocks
        _check_limits(text, blocks)
        self._check_images(blocks)
        metadata = _metadata(params.get("metadata"))
        message.text, message.blocks = text, blocks
        if metadata is not None:
            message.metadata = metadata
        message.edited_ts = now_ts()
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_slack(),
        }

    def _check_images(self, blocks: list[dict[str, Any]]) -> None:
        """An image block shows a public `image_url` or a Slack file (`slack_file`, by id or URL), never both;
        the file must be an image (png, jpg, jpeg, gif) uploaded and visible to the poster."""
        for block in blocks:
            if block.get("type") != "image":
                continue
            slack_file, url = block.get("slack_file"), block.get("image_url")
            if bool(slack_file) == bool(url):
                raise _ApiError("invalid_blocks", detail="an image needs image_url or slack_file, not both")
            if not slack_file:
                continue
            if not isinstance(slack_file, dict) or bool(slack_file.get("id")) == bool(slack_file.get("url")):
                raise _ApiError("invalid_blocks", detail="slack_file takes an id or a url")
            found = self._files.get(str(slack_file.get("id") or "")) or next(
                (f for f in self._files.values() if f.url_private == slack_file.get("url")), None
            )
            if found is None or not found.completed:
                raise _ApiError("invalid_blocks", detail="slack_file names no uploaded file")
            if found.filename.rsplit(".", 1)[-1].lower() not in {"png", "jpg", "jpeg", "gif"}:
                raise _ApiError("invalid_blocks", detail="slack_file must be a png, jpg or gif")

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        user = _require(params, "user", "user_not_found")
        text, blocks = _text_and_blocks(params)
        ephemeral = Ephemeral(
            channel=channel,
            user=user,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=params.get("thread_ts") or None,
        )
        self._add_ephemeral(ephemeral)
        return {"ok": True, "message_ts": ephemeral.ts}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._own_message(params, "cant_delete_message")
        self._delete_message(message.channel, message.ts)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._reacted_message(params)
        users = message.reactions.setdefault(emoji_name(params["name"]), [])
        if self.bot_user_id in users:
            raise _ApiError("already_reacted")
        users.append(self.bot_user_id)
        return {"ok": True}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._reacted_message(params)
        name = emoji_name(params["name"])
        users = message.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise _ApiError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[name]
        return {"ok": True}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(params, method="views.open")

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(params, method="views.push")

    def _open_view(self, params: dict[str, Any], *, method: str) -> dict[str, Any]:
        trigger_id = _require(params, "trigger_id", "invalid_trigger_id")
        spec = _json_dict(_require(params, "view", "invalid_arguments"))
        _refuse(check_view(spec))
        vid = f"V{next(self._ids):07d}"
        latest = list(self._views.values())[-1] if self._views else None
        root = latest.view["root_view_id"] if method == "views.push" and latest else vid
        previous = latest.id if method == "views.push" and latest else None
        view = {
            "type": "modal",
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "blocks": [],
            **spec,
            "id": vid,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "state": {"values": {}},
            "hash": new_hash(),
            "root_view_id": root,
            "previous_view_id": previous,
        }
        self._views[vid] = View(id=vid, trigger_id=trigger_id, view=view, opened_with=method)
        return {"ok": True, "view": copy.deepcopy(view)}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        spec = _json_dict(_require(params, "view", "invalid_arguments"))
        _refuse(check_view(spec))
        found: View | None = None
        if params.get("view_id"):
            found = self._views.get(params["view_id"])
        elif params.get("external_id"):
            found = next(
                (v for v in self._views.values() if v.view.get("external_id") == params["external_id"]), None
            )
        if found is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != found.view["hash"]:
            raise _ApiError("hash_conflict")
        kept = {
            k: found.view[k]
            for k in ("id", "team_id", "app_id", "bot_id", "root_view_id", "previous_view_id")
        }
        found.view = {
            "type": "modal",
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "blocks": [],
            **spec,
            **kept,
            "state": {"values": {}},
            "hash": new_hash(),
        }
        found.updates += 1
        return {"ok": True, "view": copy.deepcopy(found.view)}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = _require(params, "user", "user_not_found")
        name = self.user_name(user_id)
        is_bot = user_id == self.bot_user_id
        admin = user_id in self._admins
        return {
            "ok": True,
            "user": {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": name.title(),
                "deleted": False,
                "is_bot": is_bot,
                "is_admin": admin,
                "is_owner": False,
                "is_primary_owner": False,
                "tz": "Europe/London",
                "profile": {
                    "display_name": name,
                    "real_name": name.title(),
                    "bot_id": self.bot_id if is_bot else None,
                },
            },
        }

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        with self._lock:
            private = channel in self._private_channels or channel.startswith(("D", "G"))
        member = self.is_member(channel)
        if private and not member:  # Slack does not show a private conversation to someone outside it
            raise _ApiError("channel_not_found")
        found: dict[str, Any] = {
            "id": channel,
            "created": _FIRST_TS_SECONDS,
            "is_archived": False,
        }
        if channel.startswith("D"):  # a DM: no name, no is_member, no is_private
            found.update({"is_im": True, "user": next(iter(self._user_names), "U0")})
        elif channel.startswith("G"):
            found.update({"name": self.channel_name(channel), "is_mpim": True, "is_private": True})
        else:
            found.update(
                {
                    "name": self.channel_name(channel),
                    "is_channel": True,
                    "is_group": False,
                    "is_im": False,
                    "is_private": private,
                    "is_member": member,
                }
            )
        return {"ok": True, "channel": found}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """The bot's DM with one person (needs `im:write`): the same id every time, as in Slack."""
        users = str(_require(params, "users", "users_list_not_supplied"))
        if "," in users:
            raise _ApiError("not_implemented", detail="the fake opens DMs with one person only")
        if not users.startswith(("U", "W")):
            raise _ApiError("user_not_found")
        channel = "D" + users[1:]
        with self._lock:
            self._known_channels.add(channel)
            self._left_channels.discard(channel)
        return {"ok": True, "channel": {"id": channel}}

    def dm_of(self, user_id: str) -> str:
        """The id `conversations.open` gives the bot's DM with `user_id`."""
        return "D" + user_id[1:]

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = _require(params, "filename", "invalid_arguments")
        try:
            length = int(_require(params, "length", "invalid_arguments"))
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        _refuse(check_alt_txt(params.get("alt_txt") or None))
        file_id = f"F{next(self._ids):07d}"
        self._files[file_id] = UploadedFile(
            id=file_id,
            filename=filename,
            title=filename,
            length=length,
            url_private=f"{self.base_url}/files/{file_id}/{filename}",
            alt_txt=params.get("alt_txt") or None,
        )
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        entries = _json_list(_require(params, "files", "invalid_arguments"))
        if not entries:
            raise _ApiError("invalid_arguments")
        completed: list[UploadedFile] = []
        for entry in entries:
            found = self._files.get(str(entry.get("id")))
            if found is None or found.content is None:
                raise _ApiError("file_not_found")
            found.title = str(entry.get("title") or found.filename)
            completed.append(found)
        channel = params.get("channel_id") or (str(params.get("channels") or "").split(",")[0] or None)
        if channel:
            self._member_channel(channel)
        thread_ts = params.get("thread_ts") or None
        comment = params.get("initial_comment") or None
        message_ts: str | None = None
        if channel:
            # Slack shares the files as one message from the uploader, with initial_comment as its text.
            message = Message(
                channel=channel,
                ts=self._next_ts(),
                user=self.bot_user_id,
                text=comment or "",
                bot_id=self.bot_id,
                thread_ts=self._thread_root(channel, thread_ts),
            )
            self._store_message(message)
            message_ts = message.ts
        for f in completed:
            f.completed, f.channel_id, f.thread_ts = True, channel, thread_ts
            f.initial_comment, f.message_ts = comment, message_ts
        if message_ts is not None and channel:
            self._messages[(channel, message_ts)].files = list(completed)
        # Real Slack shares asynchronously and answers only id + title: no message ts to rely on here.
        return {"ok": True, "files": [{"id": f.id, "title": f.title, "name": f.filename} for f in completed]}

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._files.get(str(_require(params, "file", "file_not_found")))
        if found is None or not found.completed:
            raise _ApiError("file_not_found")
        shown = found.to_slack()
        shown["shares"] = {}
        if self._unshared_answers > 0:
            self._unshared_answers -= 1
        elif found.channel_id and found.message_ts:
            private = found.channel_id in self._private_channels or found.channel_id.startswith(("D", "G"))
            share: dict[str, Any] = {
                "ts": found.message_ts,
                "channel_name": self.channel_name(found.channel_id),
            }
            if found.thread_ts:
                share["thread_ts"] = self._thread_root(found.channel_id, found.thread_ts)
            shown["shares"] = {"private" if private else "public": {found.channel_id: [share]}}
        return {"ok": True, "file": shown, "comments": [], "response_metadata": {"next_cursor": ""}}

    def _reactions_get(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(_require(params, "channel", "channel_not_found"))
        ts = _require(params, "timestamp", "message_not_found")
        message = self._messages.get((channel, ts))
        if message is None or message.deleted:
            raise _ApiError("message_not_found")
        shown = message.to_slack()
        shown.setdefault("reactions", [])
        return {"ok": True, "type": "message", "channel": channel, "message": shown}

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(_require(params, "channel", "channel_not_found"))
        ts = _require(params, "ts", "thread_not_found")
        parent = self._messages.get((channel, ts))
        if parent is None:
            raise _ApiError("thread_not_found")
        replies = (
            [] if parent.is_reply else self._replies(parent)
        )  # Slack: a reply's ts gives that reply alone
        return self._listing([parent, *replies], params, default_limit=1000)

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(_require(params, "channel", "channel_not_found"))
        top = [m for m in self._messages.values() if m.channel == channel and not m.is_reply]
        newest_first = sorted(top, key=lambda m: ts_key(m.ts), reverse=True)
        return self._listing(newest_first, params, default_limit=100)

    def _listing(
        self, ordered: list[Message], params: Mapping[str, Any], *, default_limit: int
    ) -> dict[str, Any]:
        """One page of `ordered` within oldest/latest, as conversations.history and .replies answer."""
        inclusive = _flag(params.get("inclusive"))
        oldest, latest = params.get("oldest") or None, params.get("latest") or None

        def within(m: Message) -> bool:
            if oldest is not None and (ts_key(m.ts) < ts_key(oldest) or (not inclusive and m.ts == oldest)):
                return False
            return latest is None or ts_key(m.ts) < ts_key(latest) or (inclusive and m.ts == latest)

        kept = [m for m in ordered if within(m)]
        start = _decode_cursor(params.get("cursor"))
        limit = int(params.get("limit") or default_limit)
        if limit < 1:
            raise _ApiError("invalid_limit")
        page = kept[start : start + limit]
        has_more = start + limit < len(kept)
        with_metadata = _flag(params.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [self._listed(m, include_metadata=with_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {"next_cursor": _encode_cursor(start + limit) if has_more else ""},
        }

    def _listed(self, message: Message, *, include_metadata: bool) -> dict[str, Any]:
        shown = message.to_slack(include_metadata=include_metadata)
        if not message.is_reply:
            replies = self._replies(message)
            if replies:
                shown["reply_count"] = len(replies)
                shown["latest_reply"] = max((m.ts for m in replies), key=ts_key)
        return shown

    def _replies(self, parent: Message) -> list[Message]:
        found = [
            m
            for m in self._messages.values()
            if m.channel == parent.channel and m.is_reply and m.thread_ts == parent.ts
        ]
        return sorted(found, key=lambda m: ts_key(m.ts))

    def _member_channel(self, channel: str) -> str:
        """`channel`, when the bot may act in it; else Slack's error for it."""
        if (
            self._strict_channels
            and channel not in self._known_channels
            and not channel.startswith(("U", "W"))
        ):
            raise _ApiError("channel_not_found")
        if not self.is_member(channel):
            raise _ApiError("not_in_channel")
        return channel

    def _notify(self) -> None:
        self._version += 1
        self._changed.notify_all()

    def _next_ts(self) -> str:
        # Slack's ts is the posting time (epoch seconds), unique per channel: `oldest`/`latest` filters and a
        # bot looking for what it posted a minute ago depend on that.
        micros = max(int(time.time() * 1_000_000), self._last_micros + _TS_STEP_MICROS)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _thread_root(self, channel: str, thread_ts: str | None) -> str | None:
        # Slack files a reply to a reply under the thread's parent.
        if thread_ts is None:
            return None
        parent = self._messages.get((channel, thread_ts))
        return parent.thread_ts if parent is not None and parent.is_reply else thread_ts

    def _store_message(self, message: Message) -> None:
        self._messages[(message.channel, message.ts)] = message
        self._see_channel(message.channel)

    def _add_ephemeral(self, ephemeral: Ephemeral) -> None:
        self._ephemerals.append(ephemeral)
        self._see_channel(ephemeral.channel)

    def _see_channel(self, channel: str) -> None:
        if channel not in self._channel_order:
            self._channel_order.append(channel)

    def _ephemeral_by_ts(self, ts: str | None) -> Ephemeral | None:
        return next((e for e in self._ephemerals if e.ts == ts), None) if ts else None

    def _own_message(self, params: Mapping[str, Any], not_own_error: str) -> Message:
        channel = _require(params, "channel", "channel_not_found")
        ts = _require(params, "ts", "message_not_found")
        message = self._messages.get((channel, ts))
        if message is None or message.deleted:
            raise _ApiError("message_not_found")
        if message.user != self.bot_user_id:
            raise _ApiError(not_own_error)
        return message

    def _reacted_message(self, params: Mapping[str, Any]) -> Message:
        channel = _require(params, "channel", "channel_not_found")
        ts = _require(params, "timestamp", "message_not_found")
        _require(params, "name", "invalid_name")
        message = self._messages.get((channel, ts))
        if message is None or message.deleted:
            raise _ApiError("message_not_found")
        return message

    def _delete_message(self, channel: str, ts: str) -> None:
        has_replies = any(
            m.is_reply and m.thread_ts == ts and m.channel == channel for m in self._messages.values()
        )
        if has_replies:
            # Slack leaves a tombstone so the thread stays reachable.
            tomb = self._messages[(channel, ts)]
            tomb.deleted, tomb.text, tomb.blocks, tomb.files = True, "This message was deleted.", [], []
        else:
            self._messages.pop((channel, ts), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, verb: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        reply = self.server.fake._dispatch(verb, self.path, headers, body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.lost:
            # No status line at all: the client's read fails as a dropped connection (RemoteDisconnected).
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake records calls itself, and request lines would drown test and demo output."""


def _parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    if "json" in content_type:
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            params.update(decoded)
    elif "x-www-form-urlencoded" in content_type:
        params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


def _require(params: Mapping[str, Any], key: str, error: str) -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise _ApiError(error)
    return value


def _json_list(value: Any) -> list[dict[str, Any]]:
    """Blocks and `files` arrive as lists in JSON bodies but as JSON strings in form bodies."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _ApiError("invalid_blocks_format") from None
    if not isinstance(value, list):
        raise _ApiError("invalid_blocks_format")
    return [dict(item) for item in value if isinstance(item, dict)]


def _json_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _ApiError("invalid_arguments") from None
    if not isinstance(value, dict):
        raise _ApiError("invalid_arguments")
    return dict(value)


def _text_and_blocks(params: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = str(params.get("text") or "")
    blocks = _json_list(params.get("blocks"))
    if not text and not blocks and not params.get("attachments"):
        raise _ApiError("no_text")
    _check_limits(text, blocks)
    return text, blocks


def _check_limits(text: str, blocks: list[dict[str, Any]]) -> None:
    _refuse(check_message(text, blocks))


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise _ApiError(refusal.error, detail=refusal.detail)


def _metadata(value: Any) -> dict[str, Any] | None:
    """Message metadata, a dict in JSON bodies or a JSON string in form bodies."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _ApiError("invalid_metadata_format") from None
    if not isinstance(value, dict):
        raise _ApiError("invalid_metadata_format")
    if not isinstance(value.get("event_type"), str) or not isinstance(value.get("event_payload"), dict):
        raise _ApiError("invalid_metadata_schema")
    return {"event_type": value["event_type"], "event_payload": copy.deepcopy(value["event_payload"])}


def _flag(value: Any) -> bool:
    """Booleans arrive as true/false in JSON bodies and as "1"/"0" or "true"/"false" in form bodies."""
    return value is True or str(value).lower() in ("1", "true")


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(str(cursor).encode()).decode().partition(":")
        if kind == "offset" and int(offset) >= 0:
            return int(offset)
    except ValueError:
        pass
    raise _ApiError("invalid_cursor")


def _error(error: str, *, detail: str | None = None) -> dict[str, Any]:
    if detail is None:
        return {"ok": False, "error": error}
    # Slack names what was wrong in both places, depending on the method.
    return {
        "ok": False,
        "error": error,
        "errors": [detail],
        "response_metadata": {"messages": [f"[ERROR] {detail}"]},
    }


def _fault_reply(fault: _Fault) -> _Reply:
    if fault.error is not None:
        return _json_reply(200, _error(fault.error))
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    error = "ratelimited" if fault.status == 429 else "internal_error"
    return _json_reply(fault.status, _error(error), headers=headers)


def _json_reply(status: int, payload: dict[str, Any], *, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        payload,
    )


def _text_reply(status: int, text: str) -> _Reply:
    return _Reply(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


def emoji_name(name: str) -> str:
    return name.strip().strip(":")


def now_ts() -> str:
    return f"{time.time():.6f}"


def new_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)


def _derived_name(ident: str, kind: str) -> str:
    """`UALICE` → `alice`, `CDEMO` → `demo`; ids with digits keep the id (`U1` → `user-u1`)."""
    rest = ident[1:]
    return rest.lower() if rest.isalpha() else f"{kind}-{ident.lower()}"

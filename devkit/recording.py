"""A recording publisher for core tests and benches: a small stateful stand-in for a Slack channel.

It keeps every message (with the metadata key the outbox sends), file and update, answers the look-ups the outbox
makes after an uncertain send, holds reactions for vote reconciliation, and can fail or lose answers on cue.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.domain import Conversation, SharedFile, ThreadRef
from bot.errors import PublishError, PublishUncertain
from bot.records import DecisionRecord
from bot.views import RoundView, VariationView


@dataclass
class Posted:
    kind: str  # round, variation, winner, file
    ts: str
    channel_id: str
    thread_ts: str | None
    key: str = ""  # the outbox key of a message; a file's id
    view: object = None
    filename: str = ""
    title: str = ""


@dataclass
class RecordingPublisher:
    posts: list[Posted] = field(default_factory=list)
    updates: list[tuple[str, object]] = field(default_factory=list)
    told: list[tuple[str, str]] = field(default_factory=list)
    reactions_by_ts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)
    private_channels: set[str] = field(default_factory=set)
    outside_channels: set[str] = field(default_factory=set)  # channels the bot was not invited to
    admins: set[str] = field(default_factory=set)
    sent_files: list[tuple[str, str, bytes]] = field(default_factory=list)  # (user, filename, content)
    _faults: dict[str, deque[str]] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- faults -----------------------------------------------------------------------------

    def fail_next(self, method: str, *, times: int = 1, how: str = "error") -> None:
        """`how`: "error" (Slack refused; nothing happened), "lost" (done, but the answer never came),
        "down" (unreachable before anything happened: reported as uncertain, as a client would)."""
        with self._lock:
            self._faults.setdefault(method, deque()).extend([how] * times)

    def _fault(self, method: str) -> str | None:
        with self._lock:
            self.calls.append(method)
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    def _do(self, method: str, action: Callable[[], object]) -> object:
        how = self._fault(method)
        if how == "error":
            raise PublishError(f"Slack refused {method}: internal_error")
        if how == "down":
            raise PublishUncertain(f"Slack could not be reached for {method}")
        with self._lock:
            result = action()
        if how == "lost":
            raise PublishUncertain(f"the answer to {method} was lost")
        return result

    def _ts(self) -> str:
        return f"1700000000.{next(self._counter):06d}"

    # --- the port ---------------------------------------------------------------------------

    def post_round(self, view: RoundView, *, key: str, thread_ts: str | None = None) -> str:
        def act() -> str:
            ts = self._ts()
            self.posts.append(Posted("round", ts, view.channel_id, thread_ts, key=key, view=view))
            return ts

        return str(self._do("post_round", act))

    def update_round(self, thread: ThreadRef, view: RoundView) -> None:
        self._do("update_round", lambda: self.updates.append((thread.thread_ts, view)))

    def post_variation(self, thread: ThreadRef, view: VariationView, *, key: str) -> str:
        def act() -> str:
            ts = self._ts()
            self.posts.append(
                Posted("variation", ts, thread.channel_id, thread.thread_ts, key=key, view=view)
            )
            return ts

        return str(self._do("post_variation", act))

    def update_variation(self, thread: ThreadRef, message_ts: str, view: VariationView) -> None:
        self._do("update_variation", lambda: self.updates.append((message_ts, view)))

    def upload_file(
        self, thread: ThreadRef, path: Path, *, filename: str, title: str, comment: str, alt_text: str
    ) -> SharedFile:
        assert path.exists() and path.stat().st_size > 0 and alt_text

        def act() -> SharedFile:
            file_id = f"F{next(self._counter):06d}"
            ts = self._ts()
            self.posts.append(
                Posted(
                    "file",
                    ts,
                    thread.channel_id,
                    thread.thread_ts,
                    key=file_id,
                    filename=filename,
                    title=title,
                )
            )
            return SharedFile(file_id=file_id, message_ts=ts)

        shared = self._do("upload_file", act)
        assert isinstance(shared, SharedFile)
        return shared

    def announce_winner(self, thread: ThreadRef, view: RoundView, *, key: str) -> str:
        def act() -> str:
            ts = self._ts()
            self.posts.append(Posted("winner", ts, thread.channel_id, thread.thread_ts, key=key, view=view))
            return ts

        return str(self._do("announce_winner", act))

    def post_record(self, thread: ThreadRef, record: DecisionRecord, *, key: str) -> str:
        def act() -> str:
            ts = self._ts()
            self.posts.append(Posted("record", ts, thread.channel_id, thread.thread_ts, key=key, view=record))
            return ts

        return str(self._do("post_record", act))

    def send_file_to_user(
        self, user_id: str, *, content: bytes, filename: str, title: str, comment: str
    ) -> None:
        def act() -> None:
            self.sent_files.append((user_id, filename, content))

        self._do("send_file_to_user", act)

    def find_message(self, channel_id: str, *, thread_ts: str | None, key: str, since: float) -> str | None:
        self._fault("find_message")
        with self._lock:
            return next(
                (
                    p.ts
                    for p in self.posts
                    if p.key == key and p.channel_id == channel_id and p.thread_ts == thread_ts
                ),
                None,
            )

    def find_file(self, thread: ThreadRef, *, filename: str) -> SharedFile | None:
        self._fault("find_file")
        with self._lock:
            return next(
                (
                    SharedFile(file_id=p.key, message_ts=p.ts)
                    for p in self.posts
                    if p.kind == "file" and p.filename == filename and p.thread_ts == thread.thread_ts
                ),
                None,
            )

    def file_message(self, thread: ThreadRef, file_id: str) -> str | None:
        self._fault("file_message")
        with self._lock:
            return next((p.ts for p in self.posts if p.kind == "file" and p.key == file_id), None)

    def reactions(self, channel_id: str, message_ts: str) -> dict[str, tuple[str, ...]]:
        if self._fault("reactions") == "error":
            raise PublishError("Slack refused reactions_get: internal_error")
        with self._lock:
            return {name: tuple(users) for name, users in self.reactions_by_ts.get(message_ts, {}).items()}

    def tell_user(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> None:
        with self._lock:
            self.told.append((user_id, text))

    def notify_channel(self, channel_id: str, text: str, *, by: str) -> None:
        self._do("notify_channel", lambda: self.notices.append((channel_id, f"{by} {text}")))

    def conversation(self, channel_id: str) -> Conversation:
        if self._fault("conversation") == "error":
            raise PublishError("Slack refused conversations_info: internal_error")
        with self._lock:
            return Conversation(
                channel_id=channel_id,
                private=channel_id in self.private_channels,
                member=channel_id not in self.outside_channels,
            )

    def is_admin(self, user_id: str) -> bool:
        if self._fault("is_admin") == "error":
            raise PublishError("Slack refused users_info: internal_error")
        with self._lock:
            return user_id in self.admins

    # --- what a test reads ------------------------------------------------------------------

    def react(self, message_ts: str, user_id: str, emoji: str) -> None:
        """A person reacts in Slack (whether or not the bot hears of it)."""
        with self._lock:
            users = self.reactions_by_ts.setdefault(message_ts, {}).setdefault(emoji, [])
            if user_id not in users:
                users.append(user_id)

    def unreact(self, message_ts: str, user_id: str, emoji: str) -> None:
        with self._lock:
            users = self.reactions_by_ts.get(message_ts, {}).get(emoji, [])
            if user_id in users:
                users.remove(user_id)

    def of_kind(self, kind: str) -> list[Posted]:
        with self._lock:
            return [p for p in self.posts if p.kind == kind]

    def last(self, kind: str) -> object:
        with self._lock:
            return next(p.view for p in reversed(self.posts) if p.kind == kind)

    def last_update_of(self, ts: str) -> object:
        with self._lock:
            return next(view for target, view in reversed(self.updates) if target == ts)

"""The Protocols the core needs from the outside world, in its own words: video, Slack, files, time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.domain import Capability, Conversation, GenerationRequest, ProviderJob, SharedFile, ThreadRef

if TYPE_CHECKING:
    from bot.records import DecisionRecord
    from bot.views import RoundView, VariationView


class VideoProvider(Protocol):
    """A video backend. `submit` must be called once per generation row; the core keeps the job id."""

    name: str
    capabilities: frozenset[Capability]

    def submit(self, request: GenerationRequest) -> ProviderJob: ...

    def fetch(self, job_id: str) -> ProviderJob: ...

    def download(self, job_id: str, into: Path) -> Path: ...

    def cancel(self, job_id: str) -> None: ...

    def cost_per_second(self, model: str | None) -> float: ...


@runtime_checkable
class JobFinder(Protocol):
    """A provider that can list the jobs an unanswered create may have made (it takes no idempotency key)."""

    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        """Jobs at the provider that match `request` (prompt, size, model) created since `since` (epoch
        seconds, with a minute's slack), oldest first. Each job's `reference` is the client reference the
        provider kept for it (our `idempotency_key`) where the provider keeps one, else None; its
        `created_at` is set where the provider says. The core tells the variations of a round apart with
        these, and cancels a listed job that no generation owns."""
        ...


class Publisher(Protocol):
    """Where the core's results appear (Slack in production, a recording in tests).

    Only the outbox (`bot.posting`) calls the posting methods: each post carries the outbox row's `key` so that,
    after an answer that never came, `find_message` / `find_file` can tell whether Slack has it. Text arguments
    are plain text written by the core or its users; the publisher escapes them. Failures raise `PublishError`
    (`PublishUncertain` when Slack may have acted).
    """

    def post_round(self, view: RoundView, *, key: str, thread_ts: str | None = None) -> str:
        """Post the round's message; returns its ts. In the channel, it starts the round's thread; with
        `thread_ts` (a round that follows another), it is a reply in that thread."""
        ...

    def update_round(self, thread: ThreadRef, view: RoundView) -> None:
        """Update the round's own message, `thread.thread_ts` (a reply in the thread when the round follows
        another there)."""
        ...

    def post_variation(self, thread: ThreadRef, view: VariationView, *, key: str) -> str: ...

    def update_variation(self, thread: ThreadRef, message_ts: str, view: VariationView) -> None: ...

    def upload_file(
        self, thread: ThreadRef, path: Path, *, filename: str, title: str, comment: str, alt_text: str
    ) -> SharedFile:
        """Upload a clip or image into the thread as `filename` (unique in the thread): its file id, and the
        ts of the message it was shared as when Slack says so already.

        `alt_text` describes it for people who cannot see it (screen readers)."""
        ...

    def announce_winner(self, thread: ThreadRef, view: RoundView, *, key: str) -> str: ...

    def post_record(self, thread: ThreadRef, record: DecisionRecord, *, key: str) -> str:
        """Post a close's decision record in the thread; returns its ts."""
        ...

    def send_file_to_user(
        self, user_id: str, *, content: bytes, filename: str, title: str, comment: str
    ) -> None:
        """A file only `user_id` sees (`/sora export`); not an outbox post: the asker can ask again."""
        ...

    def find_message(self, channel_id: str, *, thread_ts: str | None, key: str, since: float) -> str | None:
        """The ts of a message the bot posted with `key` (in the thread, or in the channel since `since`)."""
        ...

    def find_file(self, thread: ThreadRef, *, filename: str) -> SharedFile | None:
        """A file shared in the thread under `filename` (and its message), if the bot shared one."""
        ...

    def file_message(self, thread: ThreadRef, file_id: str) -> str | None:
        """The ts of the message `file_id` was shared as in the thread; None while Slack has not shared it."""
        ...

    def reactions(self, channel_id: str, message_ts: str) -> dict[str, tuple[str, ...]]:
        """Slack's record of the reactions on a message: emoji name → the users who reacted (not the bot)."""
        ...

    def tell_user(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> None:
        """A message only `user_id` sees (ephemeral in Slack)."""
        ...

    def notify_channel(self, channel_id: str, text: str, *, by: str) -> None:
        """A short notice everyone in the channel sees, about something `by` did (a settings change), shown
        as their mention followed by `text`. Not an outbox post: a notice
        lost in a crash is only a missing line, never a second clip or a wrong winner."""
        ...

    def conversation(self, channel_id: str) -> Conversation:
        """Slack's word on a conversation: private or not, and whether the bot is in it. Raises `PublishError`
        when Slack cannot say."""
        ...

    def is_admin(self, user_id: str) -> bool:
        """Whether Slack says `user_id` is an admin or owner of the workspace. Raises `PublishError` when
        Slack cannot say."""
        ...


class AssetStore(Protocol):
    """Where clips, contact sheets and reference images live, by key (`round-12/variation-3.mp4`); provider URLs
    expire, our copies do not. A folder, or a bucket every replica shares.

    The database keeps keys, never local paths (a value that is an absolute path is a row from before keys, read
    as the local file it names). A key is stored once its file is complete, before any row names it, and its
    content never changes afterwards; so a reader sees a whole file or none, and a cached copy is never stale.
    Failures raise `AssetError` (`AssetMissing` when nothing is stored under the key).
    """

    @property
    def where(self) -> str:
        """Where the assets are, for logs and `doctor` (a folder, or s3://bucket/prefix)."""
        ...

    def scratch(self, name: str) -> Path:
        """A fresh local path, ending in `name`, to write a file into before `put`."""
        ...

    def put(self, key: str, source: Path) -> Path:
        """Store the complete file at `source` under `key`, replacing what was there. `source` is taken (moved
        into the store or its cache): use the returned local copy instead."""
        ...

    def fetch(self, key: str) -> Path:
        """A local copy of the asset, for ffmpeg and Slack uploads (downloaded on first use)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def close(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...

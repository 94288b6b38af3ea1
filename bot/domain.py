"""Plain types the whole core speaks: prompts, findings, generation requests, jobs, thread references."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Aspect(StrEnum):
    LANDSCAPE = "16:9"
    PORTRAIT = "9:16"
    SQUARE = "1:1"

    @property
    def size(self) -> str:
        """The frame size in the Sora grammar (`WIDTHxHEIGHT`) providers map from."""
        return _SIZES[self]

    @property
    def dimensions(self) -> tuple[int, int]:
        width, height = self.size.split("x")
        return int(width), int(height)


_SIZES = {Aspect.LANDSCAPE: "1280x720", Aspect.PORTRAIT: "720x1280", Aspect.SQUARE: "1024x1024"}


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class JobStatus(StrEnum):
    """A generation's lifecycle: queued → submitting → in_progress → completed | failed | cancelled."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class RoundStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class GenerationKind(StrEnum):
    CREATE = "create"
    REMIX = "remix"
    RECUT = "recut"
    EXTEND = "extend"
    LOOP = "loop"
    BLEND = "blend"
    AGAIN = "again"


class Capability(StrEnum):
    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"
    REMIX = "remix"
    EXTEND = "extend"
    FIRST_LAST_FRAME = "first_last_frame"


@dataclass(frozen=True)
class Beat:
    """One storyboard card: what happens, starting at `start` seconds."""

    text: str
    start: float


@dataclass(frozen=True)
class PromptSpec:
    """The structured prompt: five layers plus the output intent."""

    subject: str
    action: str
    camera: str
    environment: str
    finish: str
    intent: str
    beats: tuple[Beat, ...] = ()

    LAYERS = ("subject", "action", "camera", "environment", "finish", "intent")

    def as_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "action": self.action,
            "camera": self.camera,
            "environment": self.environment,
            "finish": self.finish,
            "intent": self.intent,
            "beats": [{"text": b.text, "start": b.start} for b in self.beats],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PromptSpec:
        raw_beats = data.get("beats") or []
        assert isinstance(raw_beats, list)
        return cls(
            subject=str(data.get("subject", "")),
            action=str(data.get("action", "")),
            camera=str(data.get("camera", "")),
            environment=str(data.get("environment", "")),
            finish=str(data.get("finish", "")),
            intent=str(data.get("intent", "")),
            beats=tuple(Beat(text=str(b["text"]), start=float(b["start"])) for b in raw_beats),
        )


@dataclass(frozen=True)
class Finding:
    """One checklist result: which rule, how serious, what is wrong and the concrete fix."""

    rule: str
    severity: Severity
    message: str
    fix: str


@dataclass(frozen=True)
class Edit:
    """A change made to finished clips with media operations rather than a model: trim, loop or crossfade."""

    kind: GenerationKind
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What a provider is asked to make. `idempotency_key` is our generation id, stable across retries.

    `sources` and `edit` are set only for edits of finished clips (recut, loop, blend).
    """

    prompt: str
    spec: PromptSpec
    seconds: int
    aspect: Aspect
    variation: int
    idempotency_key: str
    model: str | None = None
    seed: int | None = None  # distinct per variation of a round; passed wherever the provider takes one
    reference_image: Path | None = None
    sources: tuple[Path, ...] = ()
    edit: Edit | None = None

    @property
    def size(self) -> str:
        return self.aspect.size


@dataclass(frozen=True)
class ProviderJob:
    """A provider's view of one job. `poll_after` is the provider's hint in seconds, when it gives one."""

    job_id: str
    status: JobStatus
    progress: int = 0
    error: str | None = None
    error_code: str | None = None
    poll_after: float | None = None
    seconds: int | None = None
    callback_id: str | None = None  # what the provider's webhooks call this job, when not `job_id` (fal)
    # The client reference (our idempotency key) the provider kept, if it keeps one.
    reference: str | None = None
    created_at: float | None = None  # epoch seconds, when the provider says


@dataclass(frozen=True)
class ThreadRef:
    """Where a round lives in Slack: the channel and the parent message's ts."""

    channel_id: str
    thread_ts: str


@dataclass(frozen=True)
class SharedFile:
    """A file the bot shared in a thread: its id, and the ts of the message Slack shared it as, when known.

    Slack shares an upload asynchronously, so that ts may not be known the moment the upload is done."""

    file_id: str
    message_ts: str | None = None


@dataclass(frozen=True)
class Conversation:
    """What Slack says of a conversation, as the bot sees it.

    `private`: a private channel, a DM or a group DM; what is saved there stays there. `member`: the bot can post
    there. A conversation Slack will not show the bot is neither visible nor a place to post.
    """

    channel_id: str
    private: bool
    member: bool

    @classmethod
    def unknown(cls, channel_id: str) -> Conversation:
        """When Slack could not say: assume the narrower case (private), never the wider."""
        return cls(channel_id=channel_id, private=True, member=True)


@dataclass(frozen=True)
class Tally:
    """Votes for one variation."""

    generation_id: int
    number: int
    votes: int
    voters: tuple[str, ...] = field(default_factory=tuple)

"""The exception tree. Everything the bot raises on purpose derives from `SoraBotError`:

SoraBotError
├── ConfigError            settings missing or malformed (all problems in one message)
├── UserError              the user asked for something we cannot do; `str(err)` is safe to show them
│   ├── NotFound           an unknown draft, round or variation
│   ├── NotAllowed         not yours to do (close someone else's round)
│   └── InvalidInput       the text or values do not make sense
│       └── FieldErrors    problems keyed by a modal's fields
├── ProviderError          a video provider failed; `retryable` and `retry_after` say what to do next. The
│   │                      message is redacted of keys and tokens (a provider may echo ours back)
│   ├── RateLimited        429: retry after `retry_after` (or a backoff)                      retryable
│   ├── ProviderTimedOut   no answer in time, or the connection dropped (not while creating)  retryable
│   ├── ProviderUnavailable 5xx or unreachable                                                retryable
│   ├── OutcomeUnknown     a create call may have reached the provider: look the job up, never resend blindly
│   ├── Moderated          the provider's safety system refused the prompt or the clip
│   ├── JobNotFound        the provider does not know the job, or its clip has expired
│   ├── AuthFailed         the provider refused our key
│   └── NotAClip           what the provider sent is not a playable video of a sane length and size
├── PublishError           Slack refused or could not be reached; the outbox retries from its rows (redacted)
│   └── PublishUncertain   the answer was lost after Slack may have acted: look before sending again
└── AssetError             the asset store (a folder or a bucket) failed; also an OSError, so the callers that
    │                      retry a full disk retry an unreachable bucket the same way
    └── AssetMissing       nothing is stored under that key: waiting will not bring it back
"""

from __future__ import annotations

from bot.redaction import redact


class SoraBotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(SoraBotError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"sora-bot cannot start: {problems[0]}")
        else:
            super().__init__(
                "sora-bot cannot start; fix these settings:\n" + "\n".join(f"  - {p}" for p in problems)
            )


class UserError(SoraBotError):
    """An error whose message is written for the person who caused it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class NotFound(UserError):
    pass


class NotAllowed(UserError):
    pass


class InvalidInput(UserError):
    pass


class NotInvited(UserError):
    """The bot is not a member of the channel: it could not post there, so it does nothing there."""


class ProviderError(SoraBotError):
    """A provider failed. The base class is a refusal that waiting will not fix (a bad request or answer)."""

    retryable_by_default = False

    def __init__(
        self, message: str, *, retryable: bool | None = None, retry_after: float | None = None
    ) -> None:
        self.retryable = self.retryable_by_default if retryable is None else retryable
        self.retry_after = retry_after
        super().__init__(redact(message))


class RateLimited(ProviderError):
    retryable_by_default = True


class ProviderTimedOut(ProviderError):
    retryable_by_default = True


class ProviderUnavailable(ProviderError):
    retryable_by_default = True


class OutcomeUnknown(ProviderError):
    """A create call's answer was lost: the job may exist (and bill). The core looks it up before resending."""


class Moderated(ProviderError):
    pass


class JobNotFound(ProviderError):
    pass


class AuthFailed(ProviderError):
    pass


class NotAClip(ProviderError):
    """The provider's download is not a clip we can post (an HTML page, an empty or oversized body, no video, a
    length far from what was asked). Waiting will not change it."""


class PublishError(SoraBotError):
    """Slack did not take a post. `retry_after` is Slack's hint on a 429; `permanent` means retrying cannot help
    (the bot is not in the channel, the channel is gone)."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        self.retry_after = retry_after
        self.permanent = permanent
        super().__init__(redact(message))


class PublishUncertain(PublishError):
    """The request went out and no answer came back: Slack may have posted it."""


class AssetError(SoraBotError, OSError):
    """The asset store could not store or read a file (a bucket unreachable, a refused credential, a full disk)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class AssetMissing(AssetError):
    """No asset under the key (a legacy path whose file is gone, an object deleted from the bucket)."""


class FieldErrors(InvalidInput):
    """Input problems keyed by field, for a modal to show next to each field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("Some fields need fixing: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))

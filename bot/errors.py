"""The exception tree. Everything the bot raises on purpose derives from `SoraBotError`:

SoraBotError
├── ConfigError          settings missing or malformed (all problems in one message)
├── UserError            the user asked for something we cannot do; `str(err)` is safe to show them
│   ├── NotFound         an unknown draft, round or variation
│   ├── NotAllowed       not yours to do (close someone else's round)
│   └── InvalidInput     the text or values do not make sense
├── ProviderError        a video provider failed; `retryable` and `retry_after` say what to do next
└── PublishError         Slack refused or could not be reached; the sweep retries from the rows
"""

from __future__ import annotations


class SoraBotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(SoraBotError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
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


class ProviderError(SoraBotError):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code
        super().__init__(message)


class PublishError(SoraBotError):
    pass

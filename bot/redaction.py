"""Keeps keys and tokens out of everything the bot shows, logs and stores: one `redact` for every text.

A provider or gateway may echo our key back (a 401 that quotes the `Authorization` header, an error URL with
`?key=…`); that text then becomes a variation's message, a log line and a row. `redact` removes the configured
secrets by value and anything shaped like a key or token. Error messages are redacted where they are built
(`bot.errors`), the texts providers report are redacted before they are stored, and every log record is
redacted as it is made (`install_log_scrubbing`), whatever logger or handler it goes to.

The set of configured secrets is process-wide, as logging is: error messages and log lines are built in
places the settings never reach. The runtime adds its settings' secrets when it starts and removes them when it
closes (`protect`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

REDACTED = "[redacted]"
# A secret shorter than this is too likely to be an ordinary word to replace wherever it appears.
_MIN_SECRET_LENGTH = 6

# Shapes of keys and tokens, whoever they belong to. Each keeps what names the secret and drops the value.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack tokens (bot, user, app-level, refresh…) and app tokens.
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),
    # OpenAI and most gateways (sk-…, sk-proj-…), Google API keys (AIza…), Standard Webhooks secrets.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"), REDACTED),
    # Authorization values: `Bearer <token>`, fal's `Key <id:secret>`.
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=:-]{8,}"), rf"\1 {REDACTED}"),
    (re.compile(r"\b(Key)\s+[A-Za-z0-9._~+/=-]*:[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # Query parameters and headers that carry a key (`?key=…`, `&access_token=…`, `x-goog-api-key: …`).
    (
        re.compile(
            r"(?i)\b((?:x-goog-)?api[-_]?key|key|access[-_]?token|token|secret|signature|sig|password)"
            r"(\"?\s*[=:]\s*\"?)([^\s\"'&,;)}\]]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # Credentials in a URL (`postgresql://user:password@host`).
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\1{REDACTED}@"),
)

_lock = threading.Lock()
_secrets: Counter[str] = Counter()


def redact(text: str) -> str:
    """`text` without the configured secrets or anything shaped like a key or token."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # a longer secret may contain a shorter one
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def protect(values: Iterable[str | SecretStr | None]) -> Callable[[], None]:
    """Redact these values from now on; returns the function that stops it (the runtime calls it on close)."""
    added: list[str] = []
    for value in values:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        for form in _forms(raw):
            added.append(form)
    with _lock:
        _secrets.update(added)
    done = threading.Event()

    def forget() -> None:
        if done.is_set():
            return
        done.set()
        with _lock:
            _secrets.subtract(added)
            for secret in [s for s, n in _secrets.items() if n <= 0]:
                del _secrets[secret]

    return forget


def secrets_of(settings: Any) -> list[str | SecretStr | None]:
    """Every secret a settings object holds: each `SecretStr` field, and a password in its database URL."""
    found: list[str | SecretStr | None] = [
        getattr(settings, name)
        for name in type(settings).model_fields
        if isinstance(getattr(settings, name), SecretStr)
    ]
    url = getattr(settings, "database_url", None)
    if isinstance(url, str):
        found.append(urlsplit(url).password)
    return found


def _forms(value: str | None) -> list[str]:
    """The secret as it may appear: as is, and percent-encoded (in a URL)."""
    if value is None or len(value.strip()) < _MIN_SECRET_LENGTH:
        return []
    value = value.strip()
    return list(dict.fromkeys([value, quote(value, safe="")]))


# ------------------------------------------------------------------------------------------- logging

_installed = False
_formatter = logging.Formatter()


def install_log_scrubbing() -> None:
    """Redact every log record as it is made, on every logger and for every handler (once per process).

    A filter on the root logger would miss records of child loggers (Python applies a logger's filters only to
    records logged on it), and handler filters miss handlers added later; the record factory sees them all.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub(record)
        return record

    logging.setLogRecordFactory(scrubbed)


def scrub(record: logging.LogRecord) -> None:
    """Redact a log record's message, exception text and stack in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when the record is formatted
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # Formatters reuse `exc_text` when it is set, so the traceback is formatted once, redacted.
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)

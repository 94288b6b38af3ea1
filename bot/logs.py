"""How the bot's logs are written: text lines or one JSON object per line, and the scheduler kept quiet."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message, exception), for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            # Redaction (bot.redaction) already set exc_text where it is installed; formatted once either way.
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class _BotHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs, told apart so configuring again replaces it."""


def configure(level: str, *, fmt: LogFormat = "text", stream: TextIO | None = None) -> logging.Handler:
    """Log at `level` to stderr (or `stream`) as text or JSON lines; replaces what an earlier call installed."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BotHandler)]:
        root.removeHandler(old)
    handler = _BotHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    quiet_scheduler()
    return handler


def quiet_scheduler() -> None:
    """APScheduler logs two lines at INFO every time it runs the sweep (every few seconds, or sooner when
    woken), which drowns everything else: its loggers stay at WARNING unless we log at DEBUG."""
    debugging = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    logging.getLogger("apscheduler").setLevel(logging.NOTSET if debugging else logging.WARNING)

"""How the bot logs: text or JSON lines (SORA_BOT_LOG_FORMAT), and a scheduler that says nothing at INFO."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from bot import logs
from bot.config import load_settings
from bot.errors import ConfigError
from bot.ticker import Ticker


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, scheduler = logging.getLogger(), logging.getLogger("apscheduler")
    handlers, level, scheduler_level = list(root.handlers), root.level, scheduler.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    scheduler.setLevel(scheduler_level)


def test_json_logs_are_one_object_per_line_with_time_level_logger_message_and_exception(
    restore_logging: None,
) -> None:
    out = io.StringIO()
    logs.configure("INFO", fmt="json", stream=out)
    log = logging.getLogger("bot.somewhere")
    log.info("round %s closed: %s", 7, 'a "quoted"\nsecond line — ünïcode')
    log.debug("not at INFO")
    try:
        raise ValueError("the provider said no")
    except ValueError:
        log.exception("poll failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO" and first["logger"] == "bot.somewhere"
    assert first["message"] == 'round 7 closed: a "quoted"\nsecond line — ünïcode'
    assert first["time"].endswith("+00:00") and "exception" not in first
    assert second["level"] == "ERROR" and second["message"] == "poll failed"
    assert (
        second["exception"].startswith("Traceback")
        and "ValueError: the provider said no" in second["exception"]
    )


def test_configuring_again_replaces_the_handler_and_text_is_the_default(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure("INFO", fmt="json", stream=first)
    logs.configure("INFO", stream=second)
    logging.getLogger("bot.x").warning("once")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip().endswith("WARNING bot.x: once")


def test_the_log_format_setting_takes_text_or_json_only() -> None:
    assert load_settings({}).log_format == "text"
    assert load_settings({"SORA_BOT_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="SORA_BOT_LOG_FORMAT is invalid"):
        load_settings({"SORA_BOT_LOG_FORMAT": "xml"})


def run_ticks(count: int) -> None:
    """A real ticker (APScheduler) running `count` sweeps, then stopped."""
    done, runs = threading.Event(), []

    def sweep() -> None:
        runs.append(1)
        if len(runs) >= count:
            done.set()

    ticker = Ticker(sweep, interval=0.05)
    ticker.start()
    try:
        assert done.wait(timeout=30), "the ticker never ran"
    finally:
        ticker.stop()


def test_the_scheduler_says_nothing_per_tick_at_info(
    restore_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    logs.configure("INFO", stream=io.StringIO())
    with caplog.at_level(logging.INFO):
        run_ticks(3)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")] == []


def test_the_scheduler_speaks_when_we_log_at_debug(
    restore_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    logs.configure("DEBUG", stream=io.StringIO())
    with caplog.at_level(logging.DEBUG):
        run_ticks(3)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert any("Running job" in message for message in said), said

"""What happens before Slack gets its 200: nothing that waits on the database. With the write lock held by
someone else, a reaction, a slash command, a button and a thread reply are still answered at once; their work
happens once the lock is released, and a retried event still counts once.

The app runs as in production here: Bolt acknowledges, then runs the listener on its own threads."""

from __future__ import annotations

import ast
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import BOB, CHANNEL, OWNER, Bot, make_bot
from sqlalchemy.engine import make_url
from test_slack_loop import draft, ready_round, rows, votes, wait_until

from devkit.slack_api import FakeSlack
from handlers import blocks
from storage.models import Draft, Generation


@pytest.fixture(params=["sqlite", "postgresql"])
def answering_first(request: pytest.FixtureRequest, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    made = make_bot(fake_slack, tmp_path, database_url=url, finish_before_answer=False)
    yield made
    made.server.stop()
    made.runtime.close()


@contextmanager
def write_locked(bot: Bot) -> Iterator[None]:
    """Another connection holds the write lock: SQLite's (BEGIN IMMEDIATE), or PostgreSQL's table locks that
    refuse writers and let readers through."""
    url = make_url(bot.services.store.url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with bot.services.store.engine.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE processed_event, draft, vote IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def test_slack_gets_its_answers_while_the_database_is_write_locked_and_the_work_follows_the_release(
    answering_first: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = answering_first
    parent, messages = ready_round(bot)
    card = draft(bot, "a paper boat drifts down a rainy street")
    drafts_before = len(rows(bot, Draft))
    generations_before = len(rows(bot, Generation))

    caplog.set_level(logging.INFO, logger="handlers.events")
    with write_locked(bot):
        reaction = bot.sim.react(BOB, CHANNEL, messages[1].ts, "fire")
        command = bot.sim.command(OWNER, CHANNEL, "draft a lighthouse in a storm, slow push-in")
        cancel = bot.sim.click_button(OWNER, message=card, action_id=blocks.CANCEL)
        remix = bot.sim.reply(BOB, CHANNEL, parent.ts, "remix #2 make it golden hour", event_id="EvREMIX")
        retried = bot.sim.reply(BOB, CHANNEL, parent.ts, "remix #2 make it golden hour", event_id="EvREMIX")
        assert [r.status for r in (reaction, command, cancel, remix, retried)] == [200] * 5
        # Answered, and nothing written yet: every listener is still waiting for the lock.
        assert votes(bot) == []
        assert len(rows(bot, Draft)) == drafts_before
        assert len(rows(bot, Generation)) == generations_before
    wait_until(lambda: len(votes(bot)) == 1, "the vote")
    wait_until(lambda: len(rows(bot, Draft)) == drafts_before + 1, "the new draft")
    wait_until(lambda: any(d.status == "cancelled" for d in rows(bot, Draft)), "the cancelled draft")
    wait_until(lambda: len(rows(bot, Generation)) > generations_before, "the remix")
    wait_until(lambda: "skipping retried event EvREMIX" in caplog.text, "the retried reply to be skipped")
    assert len(rows(bot, Generation)) == generations_before + 1, "the retried reply remixed once"


SERVICES = {
    "drafts",
    "rounds",
    "jobs",
    "channels",
    "patterns",
    "providers",
    "publisher",
    "inbox",
    "variations",
}


def service_calls_before_ack(path: Path) -> list[str]:
    """Calls on a service that a listener makes before its ack() (pure `validate_*` checks are allowed: a modal
    shows their answer inline, so they must come first)."""
    found = []
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, ast.FunctionDef) or "ack" not in {a.arg for a in function.args.args}:
            continue
        for statement in function.body:
            calls = [n for n in ast.walk(statement) if isinstance(n, ast.Call)]
            if any(isinstance(c.func, ast.Name) and c.func.id == "ack" for c in calls):
                break
            for call in calls:
                target = call.func
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in SERVICES
                    and not target.attr.startswith("validate_")
                ):
                    found.append(
                        f"{path.name}:{call.lineno} {function.name} calls {target.value.id}.{target.attr}"
                    )
    return found


def test_no_listener_calls_a_service_before_its_ack() -> None:
    handlers = Path(__file__).resolve().parent.parent / "handlers"
    listeners = [p for p in sorted(handlers.glob("*.py")) if "ack: Ack" in p.read_text()]
    assert listeners, "no listener takes ack"
    assert [problem for path in listeners for problem in service_calls_before_ack(path)] == []


def test_the_ack_check_catches_a_service_call_before_the_ack(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def handle(ack, body):\n    drafts.cancel_draft(1)\n    ack()\n")
    assert service_calls_before_ack(bad) == ["bad.py:2 handle calls drafts.cancel_draft"]


def test_clicks_are_answered_while_slack_is_slow_to_take_the_posts_they_asked_for(
    answering_first: Bot,
) -> None:
    """Bolt runs listeners on five threads. A listener that waited for its posts (a round's message, a close's
    announcement) held one of them for as long as Slack took; with Slack slow, the sixth click in a row waited
    past Slack's 3 s and was never answered. The posts go out from the outbox's own threads now."""
    bot = answering_first
    cards = [draft(bot, f"a paper boat {i} drifts down a gutter, macro") for i in range(7)]
    bot.fake.slow("chat.postMessage", 4.0)  # every new message is answered 4 s late
    try:
        answers = [
            bot.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status for card in cards
        ]
    finally:
        bot.fake.slow("chat.postMessage", 0)
    assert answers == [200] * 7
    wait_until(lambda: len(rows(bot, Generation)) == 7 * 3, "seven rounds of three")

"""Versioned migrations on SQLite and (with TEST_DATABASE_URL) PostgreSQL: the previous release's database, with
rows in every table, upgraded by `sora-bot migrate` keeping every row; the head revision equal to the models;
migrating twice, or twice at once, doing it once; `serve` and `doctor` on a database behind this release.

The previous release's database is made with its own table definitions (`tests/data/baseline_release_models.py`,
its storage/models.py as it shipped) and search objects, and its rows are inserted through its own models, as
that release would have. The release before it (no outbox) is tests/test_upgrade.py's: the baseline brings it up.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import load_frozen_models
from sqlalchemy import MetaData, create_engine, select
from sqlmodel import Session, SQLModel
from test_serve import child_environment, free_port, run_cli, slack_env, wait_healthy

from bot.__main__ import main
from bot.bootstrap import prepare_schema
from bot.config import load_settings
from bot.errors import ConfigError
from devkit import demo
from devkit.slack_api import FakeSlack
from storage import schema
from storage.models import Pattern, Spend
from storage.store import Store

old = load_frozen_models("baseline_release_models.py")

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CHANNEL, OTHER_CHANNEL, OWNER, BOB = "C0VIDEO", "C0ELSE", "U0OWNER", "U0BOB"
# What this release added, and what a row from before it must read.
NEW_COLUMNS = {
    "draft": {"explore": None},  # drafts from before re-roll one prompt
    # unknown counts as private: the narrower case; rounds from before keep the rules they ran under
    "round": {
        "private": True,
        "rules": None,
        "close_reason": None,
        "pick_reason": None,
        # every round from before started its own thread and followed none
        "thread_ts": None,
        "previous_id": None,
    },
    "pattern": {"private": True, "saved_by": None},  # every pattern from before is a round's winner
    # never recorded per variation: nothing is given back on a guess; the clip's message is looked up when needed
    "generation": {"charged": 0.0, "clip_ts": None, "clip_file_id": None, "clip_seconds": None},
    "spend": {"refund_of": None},  # every row from before is a charge
    # every channel keeps the deployment's default rules
    "channel_settings": {"vote_emoji": None, "multi_vote": None, "owner_votes": None, "quorum": None},
    "vote": {"source": "message"},  # a reaction on a clip was recorded as one on its variation's message
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'previous.db'}"
    return str(request.getfixturevalue("postgres_url"))


def make_previous_release_database(url: str) -> dict[str, int]:
    """The previous release's schema and search objects, with rows in every table; returns their ids."""
    engine = create_engine(url)
    old.BaselineRelease.metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in old.SEARCH_SQLITE if engine.dialect.name == "sqlite" else old.SEARCH_POSTGRESQL:
            conn.exec_driver_sql(statement)

    def ago(**delta: float) -> datetime:
        return NOW - timedelta(**delta)

    with Session(engine) as session:

        def add(row: Any) -> Any:
            session.add(row)
            session.flush()
            return row

        draft = add(
            old.Draft(
                team_id="T",
                channel_id=CHANNEL,
                user_id=OWNER,
                idea="a paper boat in the rain",
                spec={"subject": "a paper boat", "action": "drifts down a gutter"},
                filled=["camera"],
                findings=[{"rule": "light", "message": "say when"}],
                goal="ad",
                aspect="16:9",
                seconds=4,
                variations=2,
                provider="local",
                status="submitted",
                notes=["read offline"],
                created_at=ago(hours=3),
            )
        )
        round_row = add(
            old.Round(
                draft_id=draft.id,
                team_id="T",
                channel_id=CHANNEL,
                owner_id=OWNER,
                title="paper boat",
                parent_ts="1700.000100",
                status="closed",
                blind=True,
                estimated_cost=0.8,
                closes_at=ago(hours=1),
                closed_at=ago(hours=1),
                closed_by=OWNER,
                closes=1,
                created_at=ago(hours=2),
            )
        )
        common = {
            "round_id": round_row.id,
            "kind": "create",
            "requested_by": OWNER,
            "spec": draft.spec,
            "prompt": "A paper boat drifts down a gutter.",
            "seconds": 4,
            "aspect": "16:9",
            "provider": "local",
            "cost": 0.4,
            "created_at": ago(hours=2),
        }
        winner = add(
            old.Generation(
                **common,
                number=1,
                provider_job_id="job-1",
                seed=11,
                status="completed",
                progress=100,
                asset_path="/clips/1.mp4",
                message_ts="1700.000200",
                submitted_at=ago(hours=2),
                completed_at=ago(minutes=110),
            )
        )
        failed = add(
            old.Generation(
                **common,
                number=2,
                parent_id=winner.id,
                provider_job_id="job-2",
                source_paths=["/clips/1.mp4"],
                edit_start=0.5,
                edit_end=2.5,
                status="failed",
                error="The provider refused the prompt.",
                create_unanswered=True,
                attempts=2,
                message_ts="1700.000300",
            )
        )
        round_row.winner_generation_id = winner.id
        add(round_row)
        vote = add(
            old.Vote(
                round_id=round_row.id,
                generation_id=winner.id,
                user_id=BOB,
                emoji="fire",
                event_ts="1700.000500",
                created_at=ago(minutes=90),
            )
        )
        pattern = add(
            old.Pattern(
                team_id="T",
                channel_id=CHANNEL,
                round_id=round_row.id,
                generation_id=winner.id,
                title="paper boat",
                prompt="A paper boat drifts down a gutter.",
                spec=draft.spec,
                rhythm=[{"at": 0, "beat": "drift"}],
                settings={"seconds": 4, "aspect": "16:9"},
                outcome={"winner_number": 1, "votes": 1},
                lineage=[1],
                tags="create 16x9",
                created_at=ago(hours=1),
            )
        )
        add(old.ProcessedEvent(event_id="Ev0OLD", received_at=ago(minutes=5)))
        add(
            old.ChannelSettings(
                channel_id=CHANNEL,
                team_id="T",
                provider="local",
                vote_minutes=30,
                blind=True,
                daily_budget=25.0,
                updated_by=OWNER,
                updated_at=ago(days=1),
            )
        )
        spend = add(
            old.Spend(
                team_id="T",
                channel_id=CHANNEL,
                user_id=OWNER,
                day="2026-11-20",
                round_id=round_row.id,
                provider="local",
                seconds=8,
                amount=0.8,
                created_at=ago(hours=2),
            )
        )
        outbox = add(
            old.Outbox(
                key=f"round-{round_row.id}/post_parent",
                kind="post_parent",
                round_id=round_row.id,
                state="sent",
                due_at=ago(hours=2),
                ts="1700.000100",
                created_at=ago(hours=2),
                sent_at=ago(hours=2),
            )
        )
        session.commit()
        ids = {
            "draft": draft.id,
            "round": round_row.id,
            "winner": winner.id,
            "failed": failed.id,
            "vote": vote.id,
            "pattern": pattern.id,
            "spend": spend.id,
            "outbox": outbox.id,
        }
    engine.dispose()
    return ids


def dump(url: str, metadata: MetaData) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table `metadata` defines, as those tables read them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [
                    dict(row._mapping)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def differences(url: str, metadata: MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match `metadata` (nothing, we hope)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": schema.include_object, "compare_type": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def migrate_to(url: str, revision: str) -> None:
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            command.upgrade(schema.alembic_config(conn), revision)
    finally:
        store.dispose()


def revision_of(url: str) -> str | None:
    store = Store(url)
    try:
        return store.schema_state().current
    finally:
        store.dispose()


@pytest.fixture
def cli_env(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sora-bot …` in this process, configured by the environment as a person would."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SORA_BOT_DATA_DIR", str(tmp_path / "data"))


# --- the revisions themselves -------------------------------------------------------------------


def test_the_revisions_are_the_baseline_then_this_release() -> None:
    assert schema.revisions() == ["0001", "0002", "0003", "0004", "0005", "0006", "0007"]
    assert schema.head() == "0007"


def test_the_baseline_on_an_empty_database_is_the_previous_release_schema(url: str) -> None:
    migrate_to(url, "0001")
    assert revision_of(url) == "0001"
    assert differences(url, old.BaselineRelease.metadata) == []
    assert differences(url, SQLModel.metadata), "this release's columns come with the next revision"


def test_an_empty_database_migrated_to_head_is_what_the_models_define(url: str) -> None:
    store = Store(url)
    try:
        migration = store.create_schema()
    finally:
        store.dispose()
    assert (migration.before, migration.after, migration.ran) == (None, "0007", True)
    assert differences(url, SQLModel.metadata) == []


def test_an_unversioned_database_at_the_baseline_is_only_stamped_by_it(url: str) -> None:
    make_previous_release_database(url)
    before = dump(url, old.BaselineRelease.metadata)
    migrate_to(url, "0001")
    assert revision_of(url) == "0001"
    assert dump(url, old.BaselineRelease.metadata) == before
    assert differences(url, old.BaselineRelease.metadata) == []


# --- the previous release's database, upgraded by `sora-bot migrate` ------------------------------


def test_migrate_upgrades_the_previous_release_keeping_every_row(
    url: str, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = make_previous_release_database(url)
    before = dump(url, old.BaselineRelease.metadata)
    assert all(before.values()), "a row in every table"

    assert main(["migrate"]) == 0
    assert "from no revision to 0007 (head)" in capsys.readouterr().out

    assert revision_of(url) == "0007"
    assert dump(url, old.BaselineRelease.metadata) == before, "every row, every old column, as it was"
    after = dump(url, SQLModel.metadata)
    for table, values in NEW_COLUMNS.items():
        assert after[table], table
        for row in after[table]:
            assert {name: row[name] for name in values} == values, table
    assert differences(url, SQLModel.metadata) == []

    store = Store(url)
    try:
        with store.read() as repo:
            # The search index the previous release built still finds its pattern, now private to its channel.
            hits = repo.patterns.search("T", "paper boat", visible_in=CHANNEL)
            assert [h.pattern.id for h in hits] == [ids["pattern"]]
            assert repo.patterns.search("T", "paper boat", visible_in=OTHER_CHANNEL) == []
        with store.transaction() as repo:
            refund = {"team_id": "T", "channel_id": CHANNEL, "user_id": OWNER, "day": "2026-11-20"}
            refund |= {"provider": "local", "seconds": 4, "amount": -0.4, "refund_of": ids["failed"]}
            assert repo.ledger.refund(Spend(**refund, created_at=NOW)) is True
            assert repo.ledger.refund(Spend(**refund, created_at=NOW)) is False, "one refund per variation"
            assert repo.ledger.refunded(ids["failed"]) == pytest.approx(0.4)
        with store.transaction() as repo:
            # A round keeps its winner and the variations people saved: round_id is no longer unique.
            saved = Pattern(
                team_id="T",
                channel_id=CHANNEL,
                round_id=ids["round"],
                generation_id=ids["failed"],
                title="saved",
                prompt="A paper boat, saved",
                saved_by=OWNER,
                created_at=NOW,
            )
            repo.patterns.save(saved)
        with store.read() as repo:
            found = repo.patterns.search("T", "paper boat", visible_in=CHANNEL)
            assert sorted(h.pattern.saved_by or "" for h in found) == ["", OWNER], "search kept in step"
    finally:
        store.dispose()


def test_migrating_twice_changes_nothing(url: str, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    make_previous_release_database(url)
    assert main(["migrate"]) == 0
    first = dump(url, SQLModel.metadata)
    capsys.readouterr()
    assert main(["migrate"]) == 0
    assert "already at 0007 (head); nothing to do" in capsys.readouterr().out
    assert dump(url, SQLModel.metadata) == first


def test_two_migrations_at_once_run_once(url: str) -> None:
    """Replicas starting together: one migrates, the other waits its turn and finds nothing to do."""
    make_previous_release_database(url)
    before = dump(url, old.BaselineRelease.metadata)
    start = threading.Barrier(2)
    results: list[schema.Migration] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        store = Store(url)
        try:
            start.wait()
            results.append(store.create_schema())
        except BaseException as err:
            errors.append(err)
        finally:
            store.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted((m.before or "", m.after) for m in results) == [("", "0007"), ("0007", "0007")]
    assert dump(url, old.BaselineRelease.metadata) == before
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [("0007",)]
    finally:
        engine.dispose()


def test_a_database_a_newer_release_migrated_is_refused(url: str, cli_env: None) -> None:
    store = Store(url)
    try:
        store.create_schema()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
        with pytest.raises(schema.UnknownRevision, match="0099"):
            store.create_schema()
        with pytest.raises(ConfigError, match="a newer sora-bot migrated it"):
            prepare_schema(store, load_settings({"DATABASE_URL": url, "SORA_BOT_MIGRATE_ON_START": "true"}))
    finally:
        store.dispose()
    assert main(["migrate"]) == 2


# --- serve and doctor on a database behind this release ---------------------------------------


def test_serve_on_the_previous_release_database_says_to_migrate_and_leaves_it_alone(
    url: str, tmp_path: Path
) -> None:
    make_previous_release_database(url)
    before = dump(url, old.BaselineRelease.metadata)
    with FakeSlack(valid_tokens=frozenset({"xoxb-serve"})) as fake:
        env = slack_env(tmp_path, fake.api_url, "xoxb-serve") | {"DATABASE_URL": url}
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "sora-bot cannot start: the database schema is older than this release (unversioned, needs 0007): "
        "back it up and run `sora-bot migrate` (or set SORA_BOT_MIGRATE_ON_START=true)"
    ]
    assert revision_of(url) is None
    assert dump(url, old.BaselineRelease.metadata) == before


def test_serve_with_migrate_on_start_upgrades_the_database_and_serves(url: str, tmp_path: Path) -> None:
    make_previous_release_database(url)
    before = dump(url, old.BaselineRelease.metadata)
    with FakeSlack(users=demo.USERS, channels={demo.CHANNEL: "video-lab"}) as fake:
        port = free_port()
        env = child_environment()
        env.update(
            SLACK_BOT_TOKEN="xoxb-serve",
            SLACK_SIGNING_SECRET=demo.SECRET,
            SLACK_API_URL=fake.api_url,
            SORA_BOT_DATA_DIR=str(tmp_path / "data"),
            DATABASE_URL=url,
            SORA_BOT_MIGRATE_ON_START="true",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_healthy(f"http://127.0.0.1:{port}", process)["ok"] is True
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=20)
    assert "database schema migrated from nothing to 0007" in stderr
    assert revision_of(url) == "0007"
    assert dump(url, old.BaselineRelease.metadata) == before


@pytest.fixture
def doctor_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def test_doctor_shows_the_migration_level_and_what_to_do_when_behind(
    url: str,
    cli_env: None,
    doctor_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-doctor", "SLACK_SIGNING_SECRET": "s"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLACK_API_URL", doctor_slack.api_url)
    assert main(["doctor"]) == 0
    assert "schema: empty (head 0007); serve creates it" in capsys.readouterr().out

    make_previous_release_database(url)
    assert main(["doctor"]) == 1
    problems = capsys.readouterr().out.split("Problems:")[1]
    assert "schema is older than this release (unversioned, needs 0007)" in problems
    assert "run `sora-bot migrate`" in problems

    monkeypatch.setenv("SORA_BOT_MIGRATE_ON_START", "true")
    assert main(["doctor"]) == 0
    assert "; serve migrates it (SORA_BOT_MIGRATE_ON_START)" in capsys.readouterr().out

    assert main(["migrate"]) == 0
    assert main(["doctor"]) == 0
    assert "schema: 0007 (head)" in capsys.readouterr().out


def test_the_migrations_ship_with_the_package() -> None:
    """`pip install` users have them: modules in packages setuptools finds, the template as package data."""
    root = Path(__file__).resolve().parent.parent
    for folder in (schema.MIGRATIONS, schema.MIGRATIONS / "versions"):
        assert (folder / "__init__.py").exists(), folder
    assert (schema.MIGRATIONS / "script.py.mako").exists()
    pyproject = (root / "pyproject.toml").read_text()
    assert '"storage.migrations" = ["script.py.mako"]' in pyproject
    assert not list(root.glob("alembic.ini")), "configured in code (and [tool.alembic] for authors)"

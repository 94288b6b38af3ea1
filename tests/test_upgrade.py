"""Upgrading a database the release before the outbox made (older than the baseline migration, unversioned) to
the newest revision, keeping every row, on SQLite and (with TEST_DATABASE_URL) PostgreSQL. The baseline brings it
up in place (`storage/migrations/legacy.py`), then the later revisions run; tests/test_migrations.py does the
same for the last release's database.

That release's database is made with its own table definitions: `tests/data/pre_outbox_release_models.py` is
its `storage/models.py` as it shipped, with the tables given their own `MetaData` so they sit beside today's,
plus the search objects its `create_schema` added. `create_all` on that metadata
writes exactly the DDL the previous release wrote, on either database, and its rows are inserted through its
own models, as that release would have. Checked-in DDL would be the same schema frozen per dialect; the models
are shorter to read and review against the release.

The data is a channel mid-use: a finished round (announced, contact sheet posted, a pattern saved), a closed
round whose announcement was still owed, and an open round with a posted clip, one still rendering and a recut
queued with its sources in `params`, and votes on both. After `Store.create_schema()` (twice: the second finds
nothing to do) every row is there with the values it must have, and the new core works on it: the rendering and the
recut finish and are posted, the old rounds get no second sheet or announcement, old votes still count, and a
new round runs.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, load_frozen_models, make_core
from sqlalchemy import UniqueConstraint, create_engine, inspect
from sqlalchemy import select as select_rows
from sqlmodel import Session, SQLModel, select

from bot.clock import FrozenClock
from bot.domain import Aspect, GenerationRequest
from bot.prompts import PromptSpec
from devkit.instant import InstantProvider, instant_clip
from storage import schema
from storage.models import Outbox, Pattern, Vote
from storage.store import Store

old = load_frozen_models("pre_outbox_release_models.py")

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SPEC = PromptSpec.from_dict({"subject": "a paper boat", "action": "drifts down a gutter"}).as_dict()
PROMPT = "A paper boat drifts down a gutter."
RETIRED = {"round": {"announced_ts", "sheet_file_id"}, "generation": {"params", "file_id", "posted_at"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'previous.db'}"
    return str(request.getfixturevalue("postgres_url"))


@dataclass
class Previous:
    """Ids and values of what the previous release left in its database."""

    finished: int  # closed, announced, sheet posted, pattern saved
    owed: int  # closed, but its announcement had not gone out yet; every variation failed
    running: int  # open: a posted clip, one still rendering, a recut queued
    winner: int
    runner_up: int
    failed: int
    posted: int
    rendering: int
    recut: int
    clip: Path
    recut_source: Path
    rendering_job: str


def make_previous_release_database(url: str, assets: Path) -> Previous:
    """The previous release's schema (and search objects) with the rows it would have written."""
    assets.mkdir(parents=True, exist_ok=True)
    clip = assets / "clip.mp4"
    shutil.copyfile(instant_clip(Aspect.LANDSCAPE, 4), clip)
    engine = create_engine(url)
    old.PreviousRelease.metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in old.SEARCH_SQLITE if engine.dialect.name == "sqlite" else old.SEARCH_POSTGRESQL:
            conn.exec_driver_sql(statement)
    with Session(engine) as session:
        draft = old.Draft(
            team_id="T",
            channel_id=CHANNEL,
            user_id=OWNER,
            idea="a paper boat",
            spec=SPEC,
            aspect="16:9",
            seconds=4,
            variations=2,
            provider="local",
            status="submitted",
            created_at=NOW - timedelta(hours=3),
        )
        session.add(draft)
        session.flush()

        def round_(title: str, parent_ts: str, **values: Any) -> Any:
            row = old.Round(
                draft_id=draft.id,
                team_id="T",
                channel_id=CHANNEL,
                owner_id=OWNER,
                title=title,
                parent_ts=parent_ts,
                created_at=NOW - timedelta(hours=2),
                **values,
            )
            session.add(row)
            session.flush()
            return row

        def generation(round_row: Any, number: int, **values: Any) -> Any:
            fields: dict[str, Any] = {
                "round_id": round_row.id,
                "number": number,
                "kind": "create",
                "requested_by": OWNER,
                "spec": SPEC,
                "prompt": PROMPT,
                "seconds": 4,
                "aspect": "16:9",
                "provider": "local",
                "created_at": NOW - timedelta(hours=2),
            }
            row = old.Generation(**(fields | values))
            session.add(row)
            session.flush()
            return row

        def done(job: str, message_ts: str, file_id: str) -> dict[str, Any]:
            return {
                "status": "completed",
                "progress": 100,
                "provider_job_id": job,
                "asset_path": str(clip),
                "message_ts": message_ts,
                "file_id": file_id,
                "posted_at": NOW - timedelta(hours=1, minutes=50),
                "submitted_at": NOW - timedelta(hours=2),
                "completed_at": NOW - timedelta(hours=1, minutes=50),
            }

        closed = {
            "status": "closed",
            "closes_at": NOW - timedelta(hours=1),
            "closed_at": NOW - timedelta(hours=1),
        }
        finished = round_(
            "paper boat", "1700.000100", announced_ts="1700.000900", sheet_file_id="F0SHEET", **closed
        )
        winner = generation(finished, 1, **done("job-1", "1700.000200", "F0CLIP1"))
        runner_up = generation(finished, 2, **done("job-2", "1700.000300", "F0CLIP2"))
        finished.winner_generation_id = winner.id
        finished.closed_by = OWNER
        session.add(finished)

        owed = round_("paper boat, again", "1800.000100", sheet_file_id="none", **closed)
        failed = generation(
            owed,
            1,
            status="failed",
            error="The provider refused the prompt.",
            provider_job_id="job-3",
            message_ts="1800.000200",
        )

        running = round_("paper boat at night", "1900.000100", closes_at=NOW + timedelta(hours=2))
        posted = generation(running, 1, **done("job-4", "1900.000200", "F0CLIP4"))
        rendering = generation(
            running,
            2,
            status="in_progress",
            progress=40,
            provider_job_id="instant-pending",  # set below to the id the stand-in provider gives it
            message_ts="1900.000300",
            attempts=3,
            next_poll_at=NOW,
            submitted_at=NOW - timedelta(seconds=20),  # the sweep times its first look at new jobs by it
        )
        recut_source = Path(posted.asset_path)
        recut = generation(
            running,
            3,
            parent_id=posted.id,
            kind="recut",
            change="0.5–2.5 s",
            seconds=2,
            provider="edit",
            requested_by=BOB,
            params={"sources": [str(recut_source)], "start": 0.5, "end": 2.5},
            message_ts="1900.000400",
        )
        rendering_job = f"instant-generation-{rendering.id}"
        rendering.provider_job_id = rendering_job
        session.add(rendering)

        votes = [
            (finished, winner, BOB),
            (finished, winner, CAROL),
            (finished, runner_up, DAN),
            (running, posted, BOB),
            (running, posted, CAROL),
        ]
        for round_row, voted, user in votes:
            session.add(
                old.Vote(
                    round_id=round_row.id,
                    generation_id=voted.id,
                    user_id=user,
                    emoji="fire",
                    created_at=NOW - timedelta(hours=1, minutes=30),
                )
            )
        session.add(
            old.Pattern(
                team_id="T",
                channel_id=CHANNEL,
                round_id=finished.id,
                generation_id=winner.id,
                title="paper boat",
                prompt=PROMPT,
                spec=SPEC,
                settings={
                    "seconds": 4,
                    "aspect": "16:9",
                    "provider": "local",
                    "model": None,
                    "kind": "create",
                },
                outcome={"winner_number": 1, "votes": 2, "voters": 3, "variations": 2, "tie": False},
                lineage=[1],
                tags="create 16x9",
                created_at=NOW - timedelta(hours=1),
            )
        )
        session.add(old.ProcessedEvent(event_id="Ev0OLD", received_at=NOW - timedelta(minutes=5)))
        session.add(
            old.Spend(
                team_id="T",
                channel_id=CHANNEL,
                user_id=OWNER,
                day="2026-11-20",
                round_id=finished.id,
                provider="local",
                seconds=8,
                amount=0.0,
                created_at=NOW - timedelta(hours=2),
            )
        )
        session.commit()
        previous = Previous(
            finished=finished.id,
            owed=owed.id,
            running=running.id,
            winner=winner.id,
            runner_up=runner_up.id,
            failed=failed.id,
            posted=posted.id,
            rendering=rendering.id,
            recut=recut.id,
            clip=clip,
            recut_source=recut_source,
            rendering_job=rendering_job,
        )
    engine.dispose()
    return previous


def dump(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as the current models read them."""
    with store.engine.connect() as conn:
        return {
            table.name: [
                dict(row._mapping) for row in conn.execute(select_rows(table).order_by(*table.primary_key))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


@pytest.fixture
def upgraded(url: str, tmp_path: Path) -> Iterator[tuple[Store, Previous]]:
    previous = make_previous_release_database(url, tmp_path / "old-assets")
    store = Store(url)
    store.create_schema()
    first = dump(store)
    store.create_schema()  # on every start: the second run changes nothing
    assert dump(store) == first
    yield store, previous
    store.dispose()


def test_every_row_is_kept_with_the_values_this_release_reads(upgraded: tuple[Store, Previous]) -> None:
    store, p = upgraded
    rows = dump(store)
    assert {name: len(found) for name, found in rows.items()} == {
        "draft": 1,
        "round": 3,
        "generation": 6,
        "vote": 5,
        "pattern": 1,
        "processed_event": 1,
        "reaction_event": 0,  # new: reactions waiting to be applied
        "channel_settings": 0,
        "spend": 1,
        "outbox": 3,  # the announcement the previous release still owed, and the two sheets it had posted
    }
    with store.read() as repo:
        finished, owed, running = (repo.rounds.get(i) for i in (p.finished, p.owed, p.running))
        assert finished is not None and owed is not None and running is not None
        # A posted sheet (or the "none" given up on) is a sent outbox row; a closed round has closed once.
        sheets = {
            r.round_id: (r.state, r.file_id)
            for r in repo.outbox.in_round(p.finished)
            if r.kind == "upload_sheet"
        } | {
            r.round_id: (r.state, r.file_id) for r in repo.outbox.in_round(p.owed) if r.kind == "upload_sheet"
        }
        assert sheets == {p.finished: ("sent", "F0SHEET"), p.owed: ("sent", None)}
        assert not [r for r in repo.outbox.in_round(p.running) if r.kind == "upload_sheet"]
        assert (finished.closes, finished.status) == (1, "closed")
        assert owed.closes == 1
        assert (running.closes, running.status) == (0, "open")
        assert finished.winner_generation_id == p.winner
        assert finished.closes_at == NOW - timedelta(hours=1)
        assert running.parent_ts == "1900.000100"

        recut = repo.generations.get(p.recut)
        assert recut is not None
        assert recut.source_paths == [str(p.recut_source)]
        assert (recut.edit_start, recut.edit_end, recut.kind, recut.status) == (0.5, 2.5, "recut", "queued")
        for generation_id in (p.winner, p.runner_up, p.failed, p.posted, p.rendering):
            row = repo.generations.get(generation_id)
            assert row is not None
            assert (row.source_paths, row.edit_start, row.edit_end, row.seed) == ([], None, None, None)
        rendering = repo.generations.get(p.rendering)
        assert rendering is not None
        assert (rendering.status, rendering.provider_job_id) == ("in_progress", p.rendering_job)
        assert rendering.submitted_at == NOW - timedelta(seconds=20)
    with Session(store.engine) as session:
        for vote in session.exec(select(Vote)).all():
            assert (vote.active, vote.event_ts) == (True, ""), "a vote cast before the upgrade still counts"
        pattern = session.exec(select(Pattern)).one()
        assert (pattern.round_id, pattern.generation_id, pattern.lineage) == (p.finished, p.winner, [1])
        outbox = session.exec(select(Outbox).where(Outbox.kind != "upload_sheet")).one()
        assert (outbox.key, outbox.kind, outbox.round_id, outbox.state) == (
            f"round-{p.owed}/close-1/announce",
            "announce",
            p.owed,
            "pending",
        )


def test_the_tables_are_what_the_models_define(upgraded: tuple[Store, Previous]) -> None:
    """Columns (with NOT NULL) and named constraints and indexes as a fresh `create_all` would make them."""
    store, _ = upgraded
    inspector = inspect(store.engine)
    for table in SQLModel.metadata.sorted_tables:
        columns = {(c["name"], bool(c["nullable"])) for c in inspector.get_columns(table.name)}
        assert columns == {(c.name, bool(c.nullable)) for c in table.columns}, table.name
        # Named ones only: a column's unique=True gets a name only PostgreSQL makes up.
        found = {u["name"] for u in inspector.get_unique_constraints(table.name)}
        found |= {i["name"] for i in inspector.get_indexes(table.name)}
        found = {n for n in found if n and n.startswith(("uq_", "ix_")) and n != "ix_pattern_search"}
        expected = {c.name for c in table.constraints if isinstance(c, UniqueConstraint) and c.name}
        expected |= {i.name for i in table.indexes if i.name}
        assert found == expected, table.name
    for table_name, retired in RETIRED.items():
        assert not retired & {c["name"] for c in inspector.get_columns(table_name)}


def test_the_new_core_carries_on_where_the_previous_release_stopped(
    upgraded: tuple[Store, Previous], tmp_path: Path
) -> None:
    store, p = upgraded
    provider = InstantProvider()
    # The job the previous release submitted is still at the provider: the stand-in is told about it.
    job = provider.submit(
        GenerationRequest(
            prompt=PROMPT,
            spec=PromptSpec.from_dict(SPEC),
            seconds=4,
            aspect=Aspect.LANDSCAPE,
            variation=2,
            idempotency_key=f"generation-{p.rendering}",
        )
    )
    assert job.job_id == p.rendering_job
    provider.submits.clear()
    core = make_core(tmp_path, store=store, provider=provider, clock=FrozenClock(NOW))
    try:
        # Slack still holds the reactions the old votes were counted from (the sweep reconciles open rounds).
        for user in (BOB, CAROL):
            core.publisher.react("1900.000200", user, "fire")
        core.sweep_until_idle()

        files = core.publisher.of_kind("file")
        assert sorted(f.filename for f in files) == sorted(
            [
                f"round-{p.running}-variation-2.mp4",
                f"round-{p.running}-variation-3.mp4",
                f"round-{p.running}-contact-sheet.png",
            ]
        ), "clips finished after the upgrade are posted; the old rounds get no second sheet"
        winners = core.publisher.of_kind("winner")
        assert [w.key for w in winners] == [f"round-{p.owed}/close-1/announce"]
        assert provider.submits == [], "the job already at the provider is not submitted again"

        with store.read() as repo:
            rendering, recut = repo.generations.get(p.rendering), repo.generations.get(p.recut)
            assert rendering is not None and recut is not None
            assert rendering.status == "completed" and recut.status == "completed", (rendering, recut)

        finished = core.services.rounds.round_view(p.finished)
        assert {v.number: v.votes for v in finished.variations} == {1: 2, 2: 1}
        assert finished.winner_number == 1
        running = core.services.rounds.round_view(p.running)
        assert {v.number: v.votes for v in running.variations} == {1: 2, 2: 0, 3: 0}

        # A vote now lands beside the old ones.
        core.services.ballots.record_vote(
            channel_id=CHANNEL, message_ts="1900.000300", user_id=DAN, emoji="fire", event_ts="2000.000100"
        )
        assert {v.number: v.votes for v in core.services.rounds.round_view(p.running).variations}[2] == 1

        # Closing the open round announces it once, as its first close.
        core.clock.advance(hours=3)
        core.sweep_until_idle()
        assert [w.key for w in core.publisher.of_kind("winner")] == [
            f"round-{p.owed}/close-1/announce",
            f"round-{p.running}/close-1/announce",
        ]

        # A new draft and round run start to finish on the upgraded database.
        card = core.services.drafts.create_draft(
            team_id="T", channel_id=CHANNEL, user_id=OWNER, idea="a kite over the sea"
        )
        started = core.services.rounds.start_round(card.draft_id, actor=OWNER)
        core.sweep_until_idle()
        with store.read() as repo:
            new_round = repo.rounds.get(started.round_id)
            assert new_round is not None and new_round.parent_ts is not None
            statuses = {g.status for g in repo.generations.in_round(started.round_id)}
        assert statuses == {"completed"}
        assert f"round-{started.round_id}-contact-sheet.png" in {
            f.filename for f in core.publisher.of_kind("file")
        }
    finally:
        core.services.close()


def test_duplicate_provider_jobs_leave_the_constraint_out_and_say_so(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two generations owning one provider job (the race the constraint now stops) must not stop the bot."""
    p = make_previous_release_database(url, tmp_path / "old-assets")
    engine = create_engine(url)
    with engine.begin() as conn:
        generation = old.Generation.__table__
        conn.execute(
            generation.update().where(generation.c.id == p.runner_up).values(provider_job_id="job-1")
        )
    engine.dispose()
    store = Store(url)
    try:
        with caplog.at_level(logging.ERROR, logger="storage.migrations.legacy"):
            store.create_schema()
            store.create_schema()
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and "uq_generation_provider_job" in errors[0].getMessage()
        assert "job-1" in errors[0].getMessage()
        inspector = inspect(store.engine)
        names = {i["name"] for i in inspector.get_indexes("generation")}
        names |= {u["name"] for u in inspector.get_unique_constraints("generation")}
        assert "uq_generation_provider_job" not in names
        assert "ix_generation_job" in names, "the old lookup index stays until the constraint replaces it"
        assert not RETIRED["generation"] & {c["name"] for c in inspector.get_columns("generation")}
        with store.read() as repo:
            assert len(list(repo.generations.in_round(p.finished))) == 2
    finally:
        store.dispose()


def test_the_upgraded_database_is_what_the_newest_revision_makes(upgraded: tuple[Store, Previous]) -> None:
    """Alembic's comparison with the models finds nothing to change, but one thing SQLite cannot do in place."""
    store, _ = upgraded
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": schema.include_object, "compare_type": True}
        )
        found = [(d[0], d[1].name) for d in compare_metadata(context, SQLModel.metadata)]
    if store.dialect == "sqlite":
        # SQLite adds no constraint to a table; the unique index the baseline added instead enforces the same.
        assert sorted(found) == [
            ("add_constraint", "uq_generation_provider_job"),
            ("remove_index", "uq_generation_provider_job"),
        ]
    else:  # timestamptz columns included: they now hold UTC as the baseline's timestamp columns do
        assert found == []

"""The ballot box on both databases: reactions queued by the listener, kept in one insert per batch, applied in
batches. Nothing acknowledged is lost: a reaction kept but not applied (the process died between the two) is
applied by the next sweep, a graceful stop applies what is queued, a reaction that cannot be applied is set aside
without holding up the rest, and Slack's retries and two processes applying the same reactions count once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Core, make_core
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from test_workflow import ready_round

from bot.ballot_box import BallotBox, Reaction
from bot.views import RoundView
from storage.models import ReactionEvent, Vote


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'ballots.db'}"


@pytest.fixture
def core(tmp_path: Path, database_url: str) -> Iterator[Core]:
    made = make_core(tmp_path, database_url=database_url)
    yield made
    made.close()


def reaction(message_ts: str, user: str, emoji: str = "+1", *, n: int, active: bool = True) -> Reaction:
    return Reaction(
        event_id=f"Ev{user}{n:04d}",
        channel_id="C",
        message_ts=message_ts,
        user_id=user,
        emoji=emoji,
        active=active,
        event_ts=f"1700000000.{n:06d}",
    )


def held(core: Core, round_id: int) -> set[tuple[int, str, str]]:
    with core.store.read() as repo:
        rows = repo.session.exec(select(Vote).where(Vote.round_id == round_id, Vote.active == True)).all()  # noqa: E712
    return {(v.generation_id, v.user_id, v.emoji) for v in rows}


def kept(core: Core) -> list[ReactionEvent]:
    with core.store.read() as repo:
        return list(repo.session.exec(select(ReactionEvent).order_by(ReactionEvent.id)).all())  # type: ignore[arg-type]


def test_reactions_kept_before_a_crash_are_applied_by_the_next_sweep(core: Core) -> None:
    round_id, ts = ready_round(core)
    # What a process leaves when it dies after keeping a batch and before applying it.
    with core.store.transaction() as repo:
        repo.reactions.add_many(
            [reaction(ts[0], "UA", n=1).row(), reaction(ts[1], "UB", n=2).row()], now=core.clock.now()
        )
    assert held(core, round_id) == set()
    report = core.services.sweep()
    assert report.votes == 2
    assert {(u, e) for _, u, e in held(core, round_id)} == {("UA", "+1"), ("UB", "+1")}
    assert all(r.applied_at is not None for r in kept(core))
    assert core.services.sweep().votes == 0  # applied once


def test_a_graceful_stop_keeps_and_applies_every_queued_reaction(tmp_path: Path, database_url: str) -> None:
    core = make_core(tmp_path, database_url=database_url)
    round_id, ts = ready_round(core)
    for i in range(40):
        core.services.ballots.take(reaction(ts[i % 3], f"U{i:03d}", n=i))
    core.services.ballots.close()
    assert len(held(core, round_id)) == 40
    assert len(kept(core)) == 40 and all(r.applied_at is not None for r in kept(core))
    core.close()


def test_slack_delivering_a_reaction_again_counts_it_once(core: Core) -> None:
    round_id, ts = ready_round(core)
    ballots = core.services.ballots
    first = reaction(ts[0], "UA", n=1)
    for _ in range(3):  # the event, Slack's retry, and a duplicate delivery
        ballots.take(first, at_once=True)
    assert len(kept(core)) == 1
    assert [(u, e) for _, u, e in held(core, round_id)] == [("UA", "+1")]
    view = core.services.rounds.round_view(round_id)
    assert [v.votes for v in view.variations] == [1, 0, 0]


def test_a_reaction_that_cannot_be_applied_is_set_aside_and_the_rest_count(
    core: Core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    round_id, ts = ready_round(core)
    ballots = core.services.ballots
    applying = BallotBox._apply

    def broken(
        self: BallotBox, repo: object, state: object, event: ReactionEvent, *args: object, **kw: object
    ) -> object:
        if event.user_id == "UBAD":
            raise RuntimeError("a row the code cannot handle")
        return applying(self, repo, state, event, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(BallotBox, "_apply", broken)
    with core.store.transaction() as repo:
        repo.reactions.add_many(
            [reaction(ts[0], u, n=i).row() for i, u in enumerate(["UA", "UBAD", "UC", "UD"])],
            now=core.clock.now(),
        )
    with caplog.at_level(logging.ERROR, logger="bot.ballot_box"):
        assert ballots.drain(wait=True) >= 1
        ballots.drain(wait=True)
    assert {u for _, u, _ in held(core, round_id)} == {"UA", "UC", "UD"}
    assert all(r.applied_at is not None for r in kept(core)), "nothing is left to block the next batches"
    assert "setting it aside" in caplog.text


def test_two_processes_applying_at_once_count_each_reaction_once(tmp_path: Path, database_url: str) -> None:
    first = make_core(tmp_path / "a", database_url=database_url, worker_id="a")
    second = make_core(tmp_path / "b", database_url=database_url, worker_id="b")
    try:
        round_id, ts = ready_round(first)
        events = [reaction(ts[i % 3], f"U{i:03d}", n=i) for i in range(120)]
        # Slack delivers some events to one process and retries reach the other: both keep them.
        for box, share in ((first.services.ballots, events[:80]), (second.services.ballots, events[40:])):
            with box.store.transaction() as repo:
                repo.reactions.add_many([r.row() for r in share], now=first.clock.now())
        start = threading.Barrier(2)

        def apply(box: BallotBox) -> None:
            start.wait()
            box.drain(wait=True)

        racers = [threading.Thread(target=apply, args=(c.services.ballots,)) for c in (first, second)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert len(kept(first)) == 120
        assert len(held(first, round_id)) == 120
        view = first.services.rounds.round_view(round_id)
        assert isinstance(view, RoundView) and view.voters == 120
    finally:
        second.close()
        first.close()


def test_a_vote_moved_by_a_later_reaction_tells_the_voter_privately(core: Core) -> None:
    round_id, ts = ready_round(core)
    ballots = core.services.ballots
    ballots.take(reaction(ts[0], "UA", n=1), at_once=True)
    ballots.take(reaction(ts[2], "UA", "fire", n=2), at_once=True)
    told = [text for user, text in core.publisher.told if user == "UA"]
    assert told and "Your vote moved from #1 to #3" in told[-1]
    assert [v.votes for v in core.services.rounds.round_view(round_id).variations] == [0, 0, 1]
    # Once per round: later moves are not announced again (a burst of moves is not a burst of notes).
    ballots.take(reaction(ts[1], "UA", "heart", n=3), at_once=True)
    ballots.take(reaction(ts[0], "UA", "star", n=4), at_once=True)
    assert len([text for user, text in core.publisher.told if user == "UA"]) == len(told)
    assert [v.votes for v in core.services.rounds.round_view(round_id).variations] == [1, 0, 0]


def test_reactions_wait_in_memory_while_the_database_refuses_them_and_land_when_it_is_back(
    core: Core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    round_id, ts = ready_round(core)
    ballots = core.services.ballots
    keeping = BallotBox._keep
    refusing, backing_off, resume = threading.Event(), threading.Event(), threading.Event()
    refusing.set()

    def flaky(self: BallotBox, reactions: list[Reaction]) -> int:
        if refusing.is_set():
            raise RuntimeError("the database is not answering")
        return keeping(self, reactions)

    def back_off(seconds: float) -> None:  # the thread waits here between tries until the test lets it go
        backing_off.set()
        resume.wait(10)

    monkeypatch.setattr(BallotBox, "_keep", flaky)
    monkeypatch.setattr("bot.ballot_box.MAX_QUEUED", 30)
    monkeypatch.setattr(BallotBox, "_back_off", staticmethod(back_off))
    with caplog.at_level(logging.WARNING, logger="bot.ballot_box"):
        ballots.take(reaction(ts[0], "U000", n=0))
        assert backing_off.wait(10), "the thread tried, was refused, and waits to try again"
        for i in range(1, 36):  # 29 more wait beside the first; the last 6 find 30 waiting and are dropped
            ballots.take(reaction(ts[i % 3], f"U{i:03d}", n=i))
        assert held(core, round_id) == set()
        refusing.clear()  # the database is back
        resume.set()
        ballots.close()
    landed = {u for _, u, _ in held(core, round_id)}
    assert landed == {f"U{i:03d}" for i in range(30)}
    assert caplog.text.count("waiting for the database; dropping one") == 6


def test_when_the_database_is_the_trouble_nothing_is_set_aside_and_the_next_drain_applies_it(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    round_id, ts = ready_round(core)
    ballots = core.services.ballots
    applying = BallotBox._apply_batch
    troubled = [True]

    def once_locked(self: BallotBox, limit: int) -> object:
        if troubled.pop() if troubled else False:
            raise OperationalError("UPDATE vote …", {}, Exception("database is locked"))
        return applying(self, limit)

    monkeypatch.setattr(BallotBox, "_apply_batch", once_locked)
    with core.store.transaction() as repo:
        repo.reactions.add_many([reaction(ts[1], "UA", n=1).row()], now=core.clock.now())
    assert ballots.drain(wait=True) == 0  # the database said no: it waits, kept
    assert held(core, round_id) == set() and kept(core)[0].applied_at is None
    assert ballots.drain(wait=True) == 1
    assert [u for _, u, _ in held(core, round_id)] == ["UA"]


def test_slack_retrying_a_reaction_to_another_replica_at_the_same_moment_counts_it_once(
    tmp_path: Path, database_url: str
) -> None:
    first = make_core(tmp_path / "a", database_url=database_url, worker_id="a")
    second = make_core(tmp_path / "b", database_url=database_url, worker_id="b")
    try:
        round_id, ts = ready_round(first)
        events = [reaction(ts[i % 3], f"U{i:03d}", n=i) for i in range(30)]
        start = threading.Barrier(2)

        def deliver(box: BallotBox) -> None:  # every event reaches both replicas, at once
            start.wait()
            for event in events:
                box.take(event, at_once=True)

        racers = [threading.Thread(target=deliver, args=(c.services.ballots,)) for c in (first, second)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert len(kept(first)) == 30 and all(r.applied_at is not None for r in kept(first))
        assert len(held(first, round_id)) == 30
        assert sum(v.votes for v in first.services.rounds.round_view(round_id).variations) == 30
    finally:
        second.close()
        first.close()

"""Storage on SQLite and, when TEST_DATABASE_URL is set, PostgreSQL: the per-aggregate query modules' idempotency,
leases, close-once, job ownership, the outbox, votes and search."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.exc import IntegrityError

from bot.channels import Channels
from bot.clock import FrozenClock
from bot.errors import InvalidInput
from bot.pricing import PriceTable
from bot.providers.registry import Providers
from bot.tuning import CoreSettings
from bot.views import ChannelDefaults
from devkit.instant import InstantProvider
from devkit.recording import RecordingPublisher
from storage.generations import JobTaken
from storage.models import Draft, Generation, Pattern, Round
from storage.store import Repo, Store

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
GAP = timedelta(seconds=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    sqlite_url = f"sqlite:///{tmp_path / 'test.db'}"
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    made = Store(url)
    made.create_schema()
    made.create_schema()  # safe to run on every start
    yield made
    made.dispose()


def seed(store: Store, *, generations: int = 3, parent_ts: str | None = "1.0") -> tuple[int, list[int]]:
    with store.transaction() as repo:
        draft = repo.drafts.save(
            Draft(
                team_id="T",
                channel_id="C",
                user_id="U",
                idea="a robot",
                aspect="16:9",
                seconds=4,
                variations=generations,
                provider="local",
                created_at=NOW,
            )
        )
        assert draft.id is not None
        round_row = repo.rounds.insert(
            Round(
                draft_id=draft.id,
                team_id="T",
                channel_id="C",
                owner_id="U",
                title="robot",
                parent_ts=parent_ts,
                closes_at=NOW + timedelta(hours=1),
                created_at=NOW,
            )
        )
        assert round_row.id is not None
        ids = []
        for _ in range(generations):
            row = repo.generations.add_to_round(
                Generation(
                    round_id=round_row.id,
                    number=0,
                    kind="create",
                    requested_by="U",
                    prompt="p",
                    seconds=4,
                    aspect="16:9",
                    provider="local",
                    created_at=NOW,
                )
            )
            assert row.id is not None
            ids.append(row.id)
        return round_row.id, ids


# --- events ---------------------------------------------------------------------------------------


def test_an_event_id_is_processed_once(store: Store) -> None:
    with store.transaction() as repo:
        assert repo.events.mark_processed("Ev1", now=NOW) is True
    with store.transaction() as repo:
        assert repo.events.mark_processed("Ev1", now=NOW) is False
        assert repo.events.mark_processed("Ev2", now=NOW) is True


def test_forgetting_old_event_ids_prunes_only_those_before_the_cutoff(store: Store) -> None:
    with store.transaction() as repo:
        repo.events.mark_processed("old", now=NOW - timedelta(days=2))
        repo.events.mark_processed("new", now=NOW)
    with store.transaction() as repo:
        assert repo.events.forget_before(NOW - timedelta(days=1)) == 1
    with store.transaction() as repo:
        assert repo.events.mark_processed("old", now=NOW) is True, "forgotten"
        assert repo.events.mark_processed("new", now=NOW) is False, "still remembered"


# --- votes ----------------------------------------------------------------------------------------


def vote(
    repo: Repo, round_id: int, generation_id: int, user: str, emoji: str, *, active: bool, ts: str
) -> bool:
    return repo.votes.record(
        round_id=round_id,
        generation_id=generation_id,
        user_id=user,
        emoji=emoji,
        active=active,
        event_ts=ts,
        now=NOW,
    )


def active(store: Store, round_id: int) -> set[tuple[int, str, str]]:
    with store.read() as repo:
        return {
            (generation_id, user, emoji)
            for generation_id, user, emoji, _ in repo.votes.active_in_round(round_id)
        }


def test_the_same_vote_twice_is_one_vote_and_a_removal_ends_it(store: Store) -> None:
    round_id, (first, *_) = seed(store)
    with store.transaction() as repo:
        assert vote(repo, round_id, first, "U1", "fire", active=True, ts="100.000001")
        assert not vote(repo, round_id, first, "U1", "fire", active=True, ts="100.000002"), "no change"
        assert vote(repo, round_id, first, "U1", "heart", active=True, ts="100.000003")
    assert active(store, round_id) == {(first, "U1", "fire"), (first, "U1", "heart")}
    with store.transaction() as repo:
        assert vote(repo, round_id, first, "U1", "fire", active=False, ts="100.000004")
        assert not vote(repo, round_id, first, "U1", "fire", active=False, ts="100.000005")
    assert active(store, round_id) == {(first, "U1", "heart")}


def test_an_add_older_than_a_removal_does_not_revive_the_vote(store: Store) -> None:
    round_id, (first, second, _) = seed(store)
    with store.transaction() as repo:
        assert vote(repo, round_id, first, "U1", "fire", active=True, ts="100.5")
        assert vote(repo, round_id, first, "U1", "fire", active=False, ts="101.0")
        assert not vote(repo, round_id, first, "U1", "fire", active=True, ts="100.9"), "a retried older add"
        # Slack delivered the removal before the add it undoes.
        assert not vote(repo, round_id, second, "U2", "heart", active=False, ts="200.2")
        assert not vote(repo, round_id, second, "U2", "heart", active=True, ts="200.1")
    assert active(store, round_id) == set()
    with store.transaction() as repo:
        assert vote(repo, round_id, second, "U2", "heart", active=True, ts="200.3"), "a newer add counts"
    assert active(store, round_id) == {(second, "U2", "heart")}


def test_reconcile_makes_a_variations_votes_exactly_what_slack_holds(store: Store) -> None:
    round_id, (first, second, _) = seed(store)
    with store.transaction() as repo:
        vote(repo, round_id, first, "U1", "fire", active=True, ts="1.1")  # gone from Slack
        vote(repo, round_id, first, "U2", "heart", active=True, ts="1.2")  # still there
        vote(repo, round_id, first, "U3", "+1", active=False, ts="1.3")  # removed here, back in Slack
        vote(repo, round_id, second, "U1", "fire", active=True, ts="1.4")  # another variation: untouched
    held = {("U2", "heart", "message"), ("U3", "+1", "message"), ("U4", "fire", "message")}
    with store.transaction() as repo:
        assert repo.votes.reconcile(round_id=round_id, generation_id=first, held=held, now=NOW) == 3
    with store.transaction() as repo:
        assert repo.votes.reconcile(round_id=round_id, generation_id=first, held=held, now=NOW) == 0
    assert active(store, round_id) == {(first, u, e) for u, e, _ in held} | {(second, "U1", "fire")}


# --- rounds ---------------------------------------------------------------------------------------


def test_a_round_closes_once_and_a_deadline_close_has_no_actor(store: Store) -> None:
    round_id, (first, *_) = seed(store)
    with store.transaction() as repo:
        assert repo.rounds.close(round_id, now=NOW, actor=None, winner_generation_id=first) is True
        assert repo.rounds.close(round_id, now=NOW, actor="U", winner_generation_id=None) is False
    with store.transaction() as repo:
        row = repo.rounds.get(round_id)
        assert row is not None
        assert (row.status, row.closed_by, row.closes, row.winner_generation_id) == ("closed", None, 1, first)


def test_a_threads_rounds_are_found_by_its_parent_and_number_their_variations_on(store: Store) -> None:
    round_id, first_ids = seed(store)
    with store.transaction() as repo:
        first = repo.rounds.get(round_id)
        assert first is not None and first.thread == "1.0", "a round that started its thread: its own message"
        second = repo.rounds.insert(
            Round(
                draft_id=first.draft_id,
                team_id="T",
                channel_id="C",
                owner_id="U",
                title="robot",
                thread_ts="1.0",
                previous_id=round_id,
                closes_at=NOW + timedelta(hours=1),
                created_at=NOW,
            )
        )
        assert second.id is not None and second.thread == "1.0"
        row = repo.generations.add_to_round(
            Generation(
                round_id=second.id,
                number=0,
                kind="remix",
                requested_by="U",
                prompt="p",
                seconds=4,
                aspect="16:9",
                provider="local",
                parent_id=first_ids[0],
                created_at=NOW,
            ),
            after=(round_id,),
        )
        assert row.number == 4, "#N goes on across the thread's rounds"
        repo.rounds.set_parent(second.id, "1.5")  # its message, a reply in the thread
    with store.read() as repo:
        assert [r.id for r in repo.rounds.in_thread("C", "1.0")] == [round_id, second.id]
        assert repo.rounds.in_thread("C", "1.5") == [], "a following round's own message is no thread"
        assert repo.rounds.in_thread("OTHER", "1.0") == []
        following = repo.rounds.following(round_id)
        assert following is not None and following.id == second.id
        assert repo.rounds.following(second.id) is None
        found = repo.rounds.by_message("C", "1.5")
        assert found is not None and found.id == second.id


def test_a_round_past_its_deadline_is_due_and_its_sheet_is_queued_once(store: Store) -> None:
    round_id, ids = seed(store)
    with store.read() as repo:
        assert [r.id for r in repo.rounds.due(NOW + timedelta(hours=2))] == [round_id]
        assert repo.rounds.due(NOW) == []
        assert repo.rounds.needing_sheet() == [], "variations are still queued"
    with store.transaction() as repo:
        for generation_id in ids:
            repo.generations.mark_failed(generation_id, error="x")
    with store.transaction() as repo:
        assert [r.id for r in repo.rounds.needing_sheet()] == [round_id]
        assert enqueue(repo, f"round-{round_id}/upload_sheet", round_id, kind="upload_sheet") is True
        assert enqueue(repo, f"round-{round_id}/upload_sheet", round_id, kind="upload_sheet") is False
        assert repo.rounds.needing_sheet() == [], "its sheet is in the outbox: asked for once"


# --- generations ----------------------------------------------------------------------------------


def test_a_lease_keeps_a_second_worker_off_the_same_rows_until_it_expires(store: Store) -> None:
    _, ids = seed(store)
    with store.transaction() as repo:
        mine = repo.generations.claim_due(statuses=["queued"], now=NOW, owner="a", lease=LEASE, limit=2)
    with store.transaction() as repo:
        theirs = repo.generations.claim_due(statuses=["queued"], now=NOW, owner="b", lease=LEASE, limit=10)
    assert [g.id for g in mine] == ids[:2] and [g.id for g in theirs] == ids[2:]
    later = NOW + timedelta(seconds=61)
    with store.transaction() as repo:
        again = repo.generations.claim_due(statuses=["queued"], now=later, owner="b", lease=LEASE, limit=10)
    assert sorted(g.id for g in again) == ids


def test_concurrent_workers_never_claim_the_same_row(store: Store) -> None:
    _, ids = seed(store, generations=40)
    claimed: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def work(owner: str) -> None:
        for _ in range(30):
            with store.transaction() as repo:
                rows = repo.generations.claim_due(
                    statuses=["queued"], now=NOW, owner=owner, lease=timedelta(minutes=5), limit=3
                )
                claimed[owner].extend(g.id for g in rows if g.id is not None)

    threads = [threading.Thread(target=work, args=(owner,)) for owner in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for rows in claimed.values() for i in rows]
    assert sorted(everything) == ids, "every row claimed exactly once"


def started(repo: Repo, generation_id: int, job_id: str) -> str:
    return repo.generations.mark_started(
        generation_id, job_id=job_id, callback_id=None, seconds=4, progress=0, next_poll_at=NOW
    )


def test_a_provider_job_has_one_owner(store: Store) -> None:
    _, (first, second, _) = seed(store)
    with store.transaction() as repo:
        assert started(repo, first, "job-1") == "in_progress"
    with store.transaction() as repo:
        assert started(repo, first, "job-1") == "in_progress", "storing its own job again is fine"
    with pytest.raises(JobTaken), store.transaction() as repo:
        started(repo, second, "job-1")
    with store.read() as repo:
        row = repo.generations.get(second)
        assert row is not None and row.provider_job_id is None and row.status == "queued"
        assert repo.generations.owned_job_ids("local", ["job-1", "job-2"]) == {"job-1"}
        assert repo.generations.owned_job_ids("other", ["job-1"]) == set(), "job ids are per provider"


def test_the_database_refuses_a_second_owner_of_one_provider_job(store: Store) -> None:
    _, (first, second, _) = seed(store)
    with store.transaction() as repo:
        started(repo, first, "job-1")
    with pytest.raises(IntegrityError), store.transaction() as repo:
        row = repo.generations.get(second)
        assert row is not None
        row.provider_job_id = "job-1"  # past the query-level check: the constraint has the last word
        repo.session.add(row)
        repo.session.flush()


def test_racing_owners_of_one_provider_job_get_job_taken(
    request: pytest.FixtureRequest, store: Store
) -> None:
    """Two replicas store the same job id at once; neither sees the other's uncommitted row."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite's write lock serialises writers: no two can race past the check")
    _, (first, second, _) = seed(store)
    outcome: list[BaseException | str] = []
    first_flushed, first_may_commit = threading.Event(), threading.Event()

    def winner() -> None:
        with store.transaction() as repo:
            started(repo, first, "job-1")
            first_flushed.set()
            first_may_commit.wait(10)

    def loser() -> None:
        first_flushed.wait(10)
        try:
            with store.transaction() as repo:
                outcome.append(started(repo, second, "job-1"))  # blocks on the index until the winner commits
        except BaseException as err:
            outcome.append(err)

    threads = [threading.Thread(target=winner), threading.Thread(target=loser)]
    for thread in threads:
        thread.start()
    first_flushed.wait(10)
    threading.Timer(0.3, first_may_commit.set).start()
    for thread in threads:
        thread.join()
    [result] = outcome
    assert isinstance(result, JobTaken), f"the second owner must be refused as JobTaken, got {result!r}"


def test_a_cancel_during_submit_wins_and_a_late_completion_does_not_overwrite_it(store: Store) -> None:
    _, (first, *_) = seed(store)
    with store.transaction() as repo:
        [row] = repo.generations.claim_due(statuses=["queued"], now=NOW, owner="a", lease=LEASE, limit=1)
        repo.generations.mark_submitting(row, now=NOW)
    with store.transaction() as repo:
        assert repo.generations.cancel(first) is True
    with store.transaction() as repo:
        assert started(repo, first, "job-1") == "cancelled", "the caller cancels the job at the provider"
        assert repo.generations.mark_completed(first, asset_path="x.mp4", cost=1.0, now=NOW) is False
        assert repo.generations.cancel(first) is False
    with store.read() as repo:
        row = repo.generations.get(first)
        assert row is not None and (row.status, row.provider_job_id) == ("cancelled", "job-1")


# --- outbox ---------------------------------------------------------------------------------------


def enqueue(repo: Repo, key: str, round_id: int, *, kind: str = "announce", now: datetime = NOW) -> bool:
    return repo.outbox.enqueue(key=key, kind=kind, round_id=round_id, generation_id=None, now=now)


def update(repo: Repo, round_id: int, *, now: datetime = NOW) -> None:
    repo.outbox.request_update(
        key=f"round-{round_id}/update_round",
        kind="update_round",
        round_id=round_id,
        generation_id=None,
        now=now,
        min_gap=GAP,
    )


def claim(store: Store, owner: str, *, now: datetime = NOW) -> list[str]:
    with store.transaction() as repo:
        return [r.key for r in repo.outbox.claim(now=now, owner=owner, lease=LEASE, rounds=8)]


def test_an_outbox_post_is_enqueued_once_by_its_key(store: Store) -> None:
    round_id, _ = seed(store)
    with store.transaction() as repo:
        assert enqueue(repo, "round-1/close-1/announce", round_id) is True
    with store.transaction() as repo:
        assert enqueue(repo, "round-1/close-1/announce", round_id) is False
        assert enqueue(repo, "round-1/close-2/announce", round_id) is True
        assert [r.key for r in repo.outbox.in_round(round_id)] == [
            "round-1/close-1/announce",
            "round-1/close-2/announce",
        ]


def test_update_requests_coalesce_into_one_pending_row(store: Store) -> None:
    round_id, _ = seed(store)
    key = f"round-{round_id}/update_round"
    with store.transaction() as repo:
        for _ in range(3):
            update(repo, round_id)
    with store.read() as repo:
        [row] = repo.outbox.in_round(round_id)
        assert (row.key, row.state, row.version) == (key, "pending", 3)
    assert claim(store, "a") == [key]
    later = NOW + timedelta(seconds=0.2)
    with store.transaction() as repo:
        update(repo, round_id, now=later)  # asked again while it is being sent
        row_id = repo.outbox.by_key(key).id  # type: ignore[union-attr]
        assert row_id is not None
    with store.transaction() as repo:
        assert repo.outbox.mark_sent(row_id, owner="a", now=later, ts=None, file_id=None, min_gap=GAP)
    with store.read() as repo:
        row = repo.outbox.by_key(key)
        assert row is not None and row.state == "pending", "it goes again, with the newest state"
        assert row.due_at == later + GAP, "no sooner than the gap"
    assert claim(store, "a", now=later) == [], "not before the gap"
    assert claim(store, "a", now=later + GAP) == [key]


def test_an_update_asked_for_after_its_send_waits_out_the_gap(store: Store) -> None:
    round_id, _ = seed(store)
    key = f"round-{round_id}/update_round"
    with store.transaction() as repo:
        update(repo, round_id)
    assert claim(store, "a") == [key]
    with store.transaction() as repo:
        row = repo.outbox.by_key(key)
        assert row is not None and row.id is not None
        assert repo.outbox.mark_sent(row.id, owner="a", now=NOW, ts=None, file_id=None, min_gap=GAP)
        assert repo.outbox.by_key(key).state == "sent"  # type: ignore[union-attr]
    with store.transaction() as repo:
        update(repo, round_id, now=NOW + timedelta(seconds=0.5))
        row = repo.outbox.by_key(key)
        assert row is not None and (row.state, row.due_at) == ("pending", NOW + GAP)


def test_a_round_is_never_claimed_by_two_workers_while_a_lease_is_live(store: Store) -> None:
    round_id, _ = seed(store)
    other_round, _ = seed(store)
    with store.transaction() as repo:
        enqueue(repo, "a/1", round_id)
        enqueue(repo, "a/2", round_id)
    assert claim(store, "a") == ["a/1", "a/2"]
    with store.transaction() as repo:
        enqueue(repo, "a/3", round_id)  # due now, but its round is being sent by "a"
        enqueue(repo, "b/1", other_round)
    assert claim(store, "b") == ["b/1"], "another round, not the busy one"
    assert claim(store, "c") == []


def test_two_open_claims_never_share_a_round(store: Store) -> None:
    """Two workers claiming at the same moment (PostgreSQL: the round's row is locked, SKIP LOCKED)."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite serialises writers with its write lock: a second claim waits for the first")
    round_id, _ = seed(store)
    with store.transaction() as repo:
        enqueue(repo, "a/1", round_id)
    with store.transaction() as first:
        mine = first.outbox.claim(now=NOW, owner="a", lease=LEASE, rounds=8)
        with store.transaction() as second:
            theirs = second.outbox.claim(now=NOW, owner="b", lease=LEASE, rounds=8)
    assert [r.key for r in mine] == ["a/1"] and theirs == []
    assert claim(store, "b") == []


def test_a_round_comes_back_uncertain_when_its_sender_dies_mid_send(store: Store) -> None:
    round_id, _ = seed(store)
    with store.transaction() as repo:
        enqueue(repo, "a/1", round_id)
    with store.transaction() as repo:
        [row] = repo.outbox.claim(now=NOW, owner="dead", lease=LEASE, rounds=8)
        assert row.uncertain is False and row.id is not None
        row_id = row.id
    assert claim(store, "b", now=NOW + LEASE) == [], "the lease is live until it ends"
    later = NOW + LEASE + timedelta(seconds=1)
    with store.transaction() as repo:
        [again] = repo.outbox.claim(now=later, owner="b", lease=LEASE, rounds=8)
        assert (again.id, again.uncertain, again.lease_owner, again.attempts) == (row_id, True, "b", 2)
    with store.transaction() as repo:
        assert not repo.outbox.mark_sent(row_id, owner="dead", now=later, ts="1.1", file_id=None, min_gap=GAP)
        assert repo.outbox.mark_sent(row_id, owner="b", now=later, ts="1.1", file_id=None, min_gap=GAP)
    with store.read() as repo:
        row = repo.outbox.by_key("a/1")
        assert row is not None and (row.state, row.uncertain, row.ts) == ("sent", False, "1.1")


def test_nothing_but_the_parent_is_claimed_before_the_round_has_its_thread(store: Store) -> None:
    round_id, (first, *_) = seed(store, parent_ts=None)
    with store.transaction() as repo:
        enqueue(repo, f"round-{round_id}/post_parent", round_id, kind="post_parent")
        repo.outbox.enqueue(
            key=f"generation-{first}/post_variation",
            kind="post_variation",
            round_id=round_id,
            generation_id=first,
            now=NOW,
        )
    assert claim(store, "a") == [f"round-{round_id}/post_parent"]


# --- patterns -------------------------------------------------------------------------------------


def add_pattern(
    store: Store,
    *,
    round_id: int,
    generation_id: int,
    prompt: str,
    team: str = "T",
    channel: str = "C",
    private: bool = False,
) -> None:
    with store.transaction() as repo:
        repo.patterns.save(
            Pattern(
                team_id=team,
                channel_id=channel,
                private=private,
                round_id=round_id,
                generation_id=generation_id,
                title=prompt.split(",")[0],
                prompt=prompt,
                tags="create 16x9",
                created_at=NOW,
            )
        )


@pytest.mark.parametrize(
    "query",
    [
        "cat -laser",
        "neo-noir",
        "sora:2",
        "c++",
        '"unbalanced',
        "robot AND OR NOT (",
        "NEAR(robot",
        "*",
        "🎬 robot",
    ],
)
def test_search_never_breaks_on_user_syntax(store: Store, query: str) -> None:
    round_id, ids = seed(store)
    add_pattern(
        store, round_id=round_id, generation_id=ids[0], prompt="A delivery robot rolls through a neon alley"
    )
    with store.transaction() as repo:
        hits = repo.patterns.search("T", query, visible_in="C")
    # Never an error; and a real word in the query still finds the pattern, whatever surrounds it.
    expected = [round_id] if "robot" in query.lower() else []
    assert [hit.pattern.round_id for hit in hits] == expected


def test_search_ranks_the_better_match_first_stems_words_and_keeps_teams_apart(store: Store) -> None:
    first, first_ids = seed(store)
    second, second_ids = seed(store)
    other, other_ids = seed(store)
    add_pattern(
        store, round_id=first, generation_id=first_ids[0], prompt="A robot dog runs on a beach at sunset"
    )
    add_pattern(
        store,
        round_id=second,
        generation_id=second_ids[0],
        prompt="A delivery robot rolls through neon alleys",
    )
    add_pattern(store, round_id=other, generation_id=other_ids[0], prompt="A neon robot alley", team="OTHER")
    with store.transaction() as repo:
        hits = repo.patterns.search("T", "neon alley robots", visible_in="C")
        assert [h.pattern.round_id for h in hits] == [second]
        either = repo.patterns.search(
            "T", "robot submarine", visible_in="C"
        )  # no pattern has both: any word matches
        assert sorted(h.pattern.round_id for h in either) == [first, second]
        assert repo.patterns.search("T", "!!! ???", visible_in="C") == []
        assert repo.patterns.for_round(second) is not None and repo.patterns.for_round(other) is not None


def test_a_private_channels_pattern_is_found_only_in_that_channel(store: Store) -> None:
    public, public_ids = seed(store)
    secret, secret_ids = seed(store)
    add_pattern(store, round_id=public, generation_id=public_ids[0], prompt="A robot in a neon alley")
    add_pattern(
        store,
        round_id=secret,
        generation_id=secret_ids[0],
        prompt="A robot unveils the unreleased phone",
        channel="GSECRET",
        private=True,
    )
    with store.read() as repo:
        assert [h.pattern.round_id for h in repo.patterns.search("T", "robot", visible_in="C")] == [public]
        assert [
            h.pattern.round_id for h in repo.patterns.search("T", "unreleased phone", visible_in="D1")
        ] == []
        here = repo.patterns.search("T", "robot", visible_in="GSECRET")
        assert sorted(h.pattern.round_id for h in here) == sorted([public, secret])
        assert repo.patterns.search("OTHER", "robot", visible_in="GSECRET") == []


# --- the ledger -----------------------------------------------------------------------------------


def charge(repo: Repo, amount: float, *, seconds: int) -> bool:
    """The core's budget rule (`Channels.charge`) on this database's ledger: True when charged."""
    channels = Channels(
        store=cast(Store, None),  # charge works inside the caller's transaction only
        providers=Providers(available={"local": InstantProvider()}, default="local"),
        prices=PriceTable.default(),
        clock=FrozenClock(NOW),
        settings=CoreSettings(),
        publisher=RecordingPublisher(),
    )
    defaults = ChannelDefaults(
        channel_id="C",
        provider="local",
        model=None,
        goal=None,
        vote_minutes=60,
        blind=False,
        daily_budget=3.0,
        spent_today=0.0,
    )
    try:
        channels.charge(
            repo,
            defaults,
            team_id="T",
            user_id="U",
            amount=amount,
            round_id=None,
            provider="openai",
            model=None,
            seconds=seconds,
        )
    except InvalidInput:
        return False
    return True


def test_simultaneous_charges_never_take_a_channel_past_its_budget(store: Store) -> None:
    """Two people clicking Generate at once: the budget is checked and spent in one atomic step."""
    results: list[bool] = []
    lock = threading.Lock()

    def click() -> None:
        with store.transaction() as repo:
            outcome = charge(repo, 1.2, seconds=12)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.read() as repo:
        spent = repo.ledger.spent_today("C", day="2026-11-02")
    assert results.count(True) == 2 and spent == pytest.approx(2.4)
    with store.transaction() as repo:
        assert charge(repo, 0.6, seconds=6), "exactly up to the budget is allowed"
        assert repo.ledger.spent_today("C", day="2026-11-03") == 0, "budgets are per day"
        assert repo.channels.settings("C") is not None, "a budgeted channel has a settings row to lock"


def test_settled_outbox_rows_are_forgotten_after_their_time_and_pending_ones_never(store: Store) -> None:
    round_id, _ = seed(store)
    with store.transaction() as repo:
        for key in ("old-sent", "old-pending", "new-sent"):
            repo.outbox.enqueue(
                key=key,
                kind="post_variation",
                round_id=round_id,
                generation_id=None,
                now=NOW - timedelta(days=40 if key.startswith("old") else 1),
            )
        for key in ("old-sent", "new-sent"):
            row = repo.outbox.by_key(key)
            assert row is not None
            row.state = "sent"
            repo.session.add(row)
    with store.transaction() as repo:
        assert repo.outbox.forget_finished_before(NOW - timedelta(days=30)) == 1
    with store.read() as repo:
        assert {r.key for r in repo.outbox.in_round(round_id)} == {"old-pending", "new-sent"}


def test_a_lease_renewed_before_each_send_is_refused_once_another_worker_took_the_row_over(
    store: Store,
) -> None:
    round_id, _ = seed(store)
    with store.transaction() as repo:
        enqueue(repo, "round-1/announce", round_id)
    with store.transaction() as repo:
        [row] = repo.outbox.claim(now=NOW, owner="A", lease=timedelta(seconds=10), rounds=1)
        assert row.id is not None
    with store.transaction() as repo:
        assert repo.outbox.renew(
            row.id, owner="A", now=NOW + timedelta(seconds=5), lease=timedelta(seconds=10)
        )
    later = NOW + timedelta(seconds=30)  # A stalled past its lease; B takes the row over
    with store.transaction() as repo:
        [taken] = repo.outbox.claim(now=later, owner="B", lease=timedelta(seconds=10), rounds=1)
        assert taken.uncertain, "B looks before sending"
    with store.transaction() as repo:
        assert not repo.outbox.renew(row.id, owner="A", now=later, lease=timedelta(seconds=10)), (
            "A must not send"
        )


def test_a_rounds_contact_sheet_row_outlives_the_outbox_pruning_so_no_second_sheet_is_queued(
    store: Store,
) -> None:
    round_id, ids = seed(store)
    with store.transaction() as repo:
        for generation_id in ids:
            repo.generations.mark_failed(generation_id, error="x")
        enqueue(
            repo,
            f"round-{round_id}/upload_sheet",
            round_id,
            kind="upload_sheet",
            now=NOW - timedelta(days=90),
        )
        row = repo.outbox.by_key(f"round-{round_id}/upload_sheet")
        assert row is not None
        row.state = "sent"
        repo.session.add(row)
    with store.transaction() as repo:
        assert repo.outbox.forget_finished_before(NOW - timedelta(days=30)) == 0
        assert repo.rounds.needing_sheet() == []

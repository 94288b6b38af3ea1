"""Nothing is lost on a crash: every step resumes from the rows, and nothing is posted or rendered twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Core, make_core

from devkit.instant import InstantProvider
from devkit.recording import RecordingPublisher
from storage.models import Generation

LEASE = timedelta(seconds=120)


def start(core: Core) -> int:
    """A round of three, its parent and variation messages posted; nothing rendered yet."""
    card = core.services.drafts.create_draft(
        team_id="T", channel_id="C", user_id="U1", idea="a fox runs through snow"
    )
    started = core.services.rounds.start_round(card.draft_id, actor="U1")
    assert started.thread_ts is not None
    assert all(g.message_ts for g in generations(core, started.round_id))
    return started.round_id


def generations(core: Core, round_id: int) -> list[Generation]:
    with core.store.read() as repo:
        return list(repo.generations.in_round(round_id))


def crash_while_submitting(core: Core, *, count: int = 1, reached_provider: bool) -> list[Generation]:
    """A worker claims rows, marks them submitting (committed before the provider call), and dies."""
    with core.store.transaction() as repo:
        claimed = repo.generations.claim_due(
            statuses=["queued"], now=core.clock.now(), owner="crashed", lease=LEASE, limit=count
        )
        for row in claimed:
            repo.generations.mark_submitting(row, now=core.clock.now())
    if reached_provider:
        for row in claimed:
            core.provider.submit(core.services.jobs._request(row))
    return claimed


def files(core: Core) -> list[str]:
    return sorted(p.filename for p in core.publisher.of_kind("file"))


def one_file_per_variation(round_id: int, count: int = 3) -> list[str]:
    names = [f"round-{round_id}-variation-{n}.mp4" for n in range(1, count + 1)]
    return sorted([*names, f"round-{round_id}-contact-sheet.png"])


def test_a_job_left_submitting_by_a_crashed_worker_is_adopted_after_its_lease_not_sent_again(
    core: Core,
) -> None:
    round_id = start(core)
    [crashed] = crash_while_submitting(core, reached_provider=True)
    core.services.sweep()
    stuck = next(g for g in generations(core, round_id) if g.id == crashed.id)
    assert stuck.status == "submitting" and stuck.lease_owner == "crashed", "a live lease is respected"
    assert stuck.provider_job_id is None
    core.clock.advance(seconds=LEASE.total_seconds() + 1)
    core.sweep_until_idle()
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed"] * 3
    assert core.provider.jobs_per_key() == {f"generation-{g.id}": 1 for g in rows}, "adopted, not resubmitted"
    assert next(g for g in rows if g.id == crashed.id).provider_job_id == f"instant-generation-{crashed.id}"
    assert files(core) == one_file_per_variation(round_id)


def test_two_crashed_creates_of_one_round_each_adopt_their_own_job(core: Core) -> None:
    round_id = start(core)
    crashed = crash_while_submitting(core, count=2, reached_provider=True)
    core.clock.advance(seconds=LEASE.total_seconds() + 1)
    core.sweep_until_idle()
    rows = {g.id: g for g in generations(core, round_id)}
    for row in crashed:  # the provider kept each create's reference: the right job goes to each row
        assert rows[row.id].status == "completed"
        assert rows[row.id].provider_job_id == f"instant-generation-{row.id}"
    assert core.provider.cancelled == [] and files(core) == one_file_per_variation(round_id)


def test_two_crashed_creates_of_one_round_are_looked_up_not_sent_again(core: Core) -> None:
    round_id = start(core)
    crash_while_submitting(core, count=2, reached_provider=True)
    core.clock.advance(seconds=LEASE.total_seconds() + 1)
    core.sweep_until_idle()
    rows = generations(core, round_id)
    assert core.provider.jobs_per_key() == {f"generation-{g.id}": 1 for g in rows}


def test_a_create_that_never_reached_the_provider_is_sent_once_after_the_lease(core: Core) -> None:
    round_id = start(core)
    [crashed] = crash_while_submitting(core, reached_provider=False)
    core.clock.advance(seconds=LEASE.total_seconds() + 1)
    core.sweep_until_idle()
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed"] * 3
    assert core.provider.jobs_per_key() == {f"generation-{g.id}": 1 for g in rows}
    assert files(core) == one_file_per_variation(round_id)
    assert crashed.id in {g.id for g in rows}


def test_a_finished_clip_whose_upload_failed_is_posted_once_later(core: Core) -> None:
    round_id = start(core)
    core.publisher.fail_next("upload_file", times=3, how="error")  # every clip's first try
    report = core.services.sweep()  # submits, completes, downloads; Slack refuses each upload
    assert report.completed == 3 and [f for f in files(core) if "variation" in f] == []
    with core.store.read() as repo:
        clips = [r for r in repo.outbox.in_round(round_id) if r.kind == "upload_clip"]
    assert [r.state for r in clips] == ["pending"] * 3 and all(r.error for r in clips)
    core.sweep_until_idle()
    assert files(core) == one_file_per_variation(round_id)


@pytest.mark.parametrize("how", ["lost", "down"])
def test_an_upload_whose_answer_never_came_ends_with_exactly_one_file_per_variation(
    core: Core, how: str
) -> None:
    """ "lost": Slack took the file and the answer was lost (found by name, not uploaded again);
    "down": nothing reached Slack (looked for, not found, uploaded)."""
    round_id = start(core)
    core.publisher.fail_next("upload_file", times=3, how=how)
    core.sweep_until_idle()
    assert files(core) == one_file_per_variation(round_id)
    with core.store.read() as repo:
        clips = [r for r in repo.outbox.in_round(round_id) if r.kind == "upload_clip"]
    assert [(r.state, r.uncertain) for r in clips] == [("sent", False)] * 3
    assert all(r.file_id for r in clips)
    assert core.publisher.calls.count("find_file") >= 3, "each uncertain upload was looked for first"
    uploads = core.publisher.calls.count("upload_file")
    assert uploads == (3 if how == "lost" else 6) + 1  # + the contact sheet


def test_a_restarted_process_finishes_the_round_from_the_database_alone(tmp_path: Path) -> None:
    slack, provider = RecordingPublisher(), InstantProvider()  # both outlive the process
    url = f"sqlite:///{tmp_path / 'core.db'}"
    first = make_core(tmp_path, database_url=url, publisher=slack, provider=provider, worker_id="first")
    try:
        round_id = start(first)  # rows written, messages posted; the process stops before any rendering
        assert {g.status for g in generations(first, round_id)} == {"queued"}
    finally:
        first.close()
    second = make_core(
        tmp_path, database_url=url, publisher=slack, provider=provider, clock=first.clock, worker_id="second"
    )
    try:
        second.clock.advance(seconds=5)
        second.sweep_until_idle()
        rows = generations(second, round_id)
        assert {g.status for g in rows} == {"completed"}
        assert provider.jobs_per_key() == {f"generation-{g.id}": 1 for g in rows}
        assert len(slack.of_kind("round")) == 1 and len(slack.of_kind("variation")) == 3, "nothing reposted"
        assert all(slack.last_update_of(g.message_ts or "").status == "completed" for g in rows)  # type: ignore[attr-defined]
        assert files(second) == one_file_per_variation(round_id)
    finally:
        second.close()


def test_a_parent_message_whose_answer_was_lost_is_found_in_slack_not_posted_twice(core: Core) -> None:
    card = core.services.drafts.create_draft(team_id="T", channel_id="C", user_id="U1", idea="a fox runs")
    core.publisher.fail_next("post_round", how="lost")  # Slack posted the parent; the answer never came
    started = core.services.rounds.start_round(card.draft_id, actor="U1")
    assert started.thread_ts is None
    core.sweep_until_idle()
    assert len(core.publisher.of_kind("round")) == 1 and len(core.publisher.of_kind("variation")) == 3
    with core.store.read() as repo:
        round_row = repo.rounds.get(started.round_id)
    assert round_row is not None and round_row.parent_ts == core.publisher.of_kind("round")[0].ts
    assert files(core) == one_file_per_variation(started.round_id)

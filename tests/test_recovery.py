"""Nothing is lost on a crash: every step resumes from the rows, and nothing is posted or rendered twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from conftest import CHANNEL, OWNER, Bot, make_bot
from sqlmodel import select
from test_slack_loop import draft, rows, variation_messages, wait_until

from devkit.slack_api import FakeSlack
from handlers import blocks
from storage.models import Generation


def start(sora: Bot) -> None:
    card = draft(sora)
    assert sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    wait_until(
        lambda: len([g for g in rows(sora, Generation) if g.message_ts]) == 3, "three variation messages"
    )


def test_a_job_left_submitting_by_a_crashed_worker_is_resumed_after_its_lease(sora: Bot) -> None:
    start(sora)
    with sora.services.store.transaction() as repo:
        claimed = repo.claim_generations(
            statuses=["queued"], now=sora.clock.now(), owner="crashed", lease=timedelta(seconds=120), limit=1
        )
        claimed[0].status = "submitting"  # written before the provider call; then the process died
        repo.add(claimed[0])
    sora.services.sweep()
    stuck = next(g for g in rows(sora, Generation) if g.id == claimed[0].id)
    assert stuck.status == "submitting" and stuck.lease_owner == "crashed", "a live lease is respected"
    sora.clock.advance(seconds=121)
    sora.sweep_until_idle()
    assert all(g.status == "completed" for g in rows(sora, Generation))
    titles = [f.title for f in sora.fake.files()]
    assert sorted(titles) == ["Contact sheet", "Variation #1", "Variation #2", "Variation #3"]
    jobs = {g.provider_job_id for g in rows(sora, Generation)}
    assert len(jobs) == 3 and None not in jobs


def test_a_finished_clip_whose_upload_failed_is_posted_once_later(sora: Bot) -> None:
    start(sora)
    sora.fake.fail_next(
        "files.getUploadURLExternal", error="internal_error", times=6
    )  # both tries this sweep
    report = sora.services.sweep()  # submits and completes; every upload fails
    assert report.completed == 3 and report.uploaded == 0
    assert [g.posted_at for g in rows(sora, Generation)] == [None, None, None]
    sora.sweep_until_idle()
    titles = sorted(f.title for f in sora.fake.files())
    assert titles == ["Contact sheet", "Variation #1", "Variation #2", "Variation #3"]


def test_a_restarted_process_finishes_the_round_from_the_database_alone(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    first = make_bot(fake_slack, tmp_path)
    try:
        start(first)  # rows written, messages posted; the process stops before any rendering
        assert {g.status for g in rows(first, Generation)} == {"queued"}
    finally:
        first.server.stop()
        first.runtime.close()
    second = make_bot(fake_slack, tmp_path)  # same data dir and database, a new worker id
    try:
        second.clock.advance(seconds=5)
        second.sweep_until_idle()
        with second.services.store.read() as repo:
            generations = repo.session.exec(select(Generation)).all()
        assert {g.status for g in generations} == {"completed"}
        parent = next(m for m in fake_slack.messages(CHANNEL) if m.text.startswith("Round:"))
        assert all("ready" in m.text for m in variation_messages(second, parent).values())
        assert len(fake_slack.files()) == 4
    finally:
        second.server.stop()
        second.runtime.close()

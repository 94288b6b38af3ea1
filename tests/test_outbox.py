"""The outbox and the job lifecycle under races, through the services: coalesced updates, webhooks racing the
sweep, a crash between Slack's answer and the saved ts, votes that Slack holds but events lost."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from conftest import Core, make_core
from sqlmodel import select
from test_workflow import ready_round, vote

from bot.jobs import JobReport
from bot.tuning import CoreSettings
from bot.views import RoundView
from storage.models import Generation


def test_a_burst_of_votes_is_one_update_per_message_per_second_and_the_last_state_is_sent(core: Core) -> None:
    _, ts = ready_round(core)
    parent = core.publisher.of_kind("round")[0].ts
    before = len([t for t, _ in core.publisher.updates if t == parent])
    for i in range(12):
        vote(core, ts[0], f"U{i:03d}", "+1")
    during = len([t for t, _ in core.publisher.updates if t == parent]) - before
    assert during <= 1, "twelve votes in one second are at most one chat.update of the round message"
    core.clock.advance(seconds=1.5)
    core.services.posting.deliver()
    last = core.publisher.last_update_of(parent)
    assert isinstance(last, RoundView) and last.voters == 12, "the last state is always sent"


def test_a_webhook_racing_the_sweep_polls_and_posts_each_job_once(tmp_path: Path) -> None:
    core = make_core(tmp_path, tuning=CoreSettings(max_concurrent=20))
    for i in range(4):
        card = core.services.drafts.create_draft(
            team_id="T", channel_id="C", user_id="U1", idea=f"a fox {i} runs"
        )
        core.services.rounds.start_round(card.draft_id, actor="U1")
    report = JobReport()
    core.services.jobs.submit_due(report)
    assert report.submitted == 12
    with core.store.read() as repo:
        jobs = [g.provider_job_id for g in repo.session.exec(select(Generation)).all()]
    start = threading.Barrier(3)

    def callbacks() -> None:
        start.wait()
        for job_id in jobs:
            assert job_id is not None
            core.services.jobs.job_event(provider="local", job_id=job_id)

    def sweeps() -> None:
        start.wait()
        for _ in range(3):
            core.services.sweep()

    racers = [
        threading.Thread(target=callbacks),
        threading.Thread(target=sweeps),
        threading.Thread(target=sweeps),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    core.sweep_until_idle()
    files = Counter(p.filename for p in core.publisher.of_kind("file") if "-variation-" in p.filename)
    assert len(files) == 12 and set(files.values()) == {1}, files
    assert set(core.provider.jobs_per_key().values()) == {1}, "one provider job per generation"
    core.close()
    core.close()


def test_a_crash_between_slacks_answer_and_the_saved_ts_posts_nothing_twice(core: Core) -> None:
    core.publisher.fail_next("post_variation", how="lost", times=3)
    core.publisher.fail_next("upload_file", how="lost", times=3)
    core.publisher.fail_next("announce_winner", how="lost")
    core.publisher.fail_next("post_record", how="lost")
    round_id, ts = ready_round(core)
    vote(core, ts[1], "UA", "fire")
    core.services.rounds.close_round(round_id, actor="U1")
    core.sweep_until_idle()
    kinds = Counter(p.kind for p in core.publisher.posts)
    # files: three clips, the contact sheet, and at the close the marked sheet and the winner's still
    assert kinds == {"round": 1, "variation": 3, "file": 6, "winner": 1, "record": 1}, kinds


def test_votes_slack_holds_but_the_bot_never_heard_of_count_at_close(core: Core) -> None:
    round_id, ts = ready_round(core)
    vote(core, ts[0], "UA", "+1")
    core.publisher.react(ts[2], "UB", "fire")  # acknowledged, then lost in a crash: no event reaches the core
    core.publisher.react(ts[2], "UC", "heart")
    core.services.ballots.remove_vote(
        channel_id="C", message_ts=ts[0], user_id="UZ", emoji="+1"
    )  # never cast
    assert core.services.rounds.close_round(round_id, actor="U1").done
    winner = core.publisher.last("winner")
    assert isinstance(winner, RoundView) and winner.winner_number == 3 and winner.voters == 3


def test_a_removal_delivered_before_its_add_leaves_no_vote(core: Core) -> None:
    round_id, ts = ready_round(core)
    rounds, ballots = core.services.rounds, core.services.ballots
    ballots.remove_vote(
        channel_id="C", message_ts=ts[0], user_id="UA", emoji="+1", event_ts="1700000002.000000"
    )
    ballots.record_vote(
        channel_id="C", message_ts=ts[0], user_id="UA", emoji="+1", event_ts="1700000001.000000"
    )
    assert [v.votes for v in rounds.round_view(round_id).variations] == [0, 0, 0]

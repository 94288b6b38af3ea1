"""kill -9 at every moment of a round, against real `sora-bot serve` processes: after each restart the round ends
with exactly one provider job and one clip per generation, one message per round and per variation, one
announcement per close, no orphaned job, and every acknowledged vote in the final tally."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from process_kit import CHANNEL, VOTERS, Deployment, on_post, wait
from provider_fakes import FakeOpenAI, make_clip

from devkit.slack_api import FakeSlack
from storage.models import Round

pytestmark = pytest.mark.faults

IDEA = "a paper boat drifts down a rain gutter at dusk, low tracking shot, soft film grain"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


def deploy(tmp_path: Path, clip: bytes, database_url: str | None = None) -> Iterator[Deployment]:
    users = {"U0OWNER": "owner", **{v: f"voter{i}" for i, v in enumerate(VOTERS)}}
    with (
        FakeSlack(users=users, channels={CHANNEL: "faults"}) as slack,
        FakeOpenAI(clip=clip, polls_to_complete=2) as videos,
    ):
        deployment = Deployment(
            slack=slack,
            videos=videos,
            database_url=database_url or f"sqlite:///{tmp_path / 'bot.db'}",
            data_dir=tmp_path / "data",
        )
        deployment.add_replica(tmp_path)
        try:
            yield deployment
        finally:
            deployment.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def team(request: pytest.FixtureRequest, tmp_path: Path, clip: bytes) -> Iterator[Deployment]:
    """The bot on SQLite, and again on PostgreSQL (skipped, saying so, without TEST_DATABASE_URL)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    yield from deploy(tmp_path, clip, url)


def killer(team: Deployment) -> Callable[..., None]:
    def kill(*_: Any) -> None:
        team.replicas[0].kill()

    return kill


def restart_after_kill(team: Deployment) -> None:
    bot = team.replicas[0]
    wait(lambda: not bot.alive, "the bot to be killed")
    bot.start()


def finish(team: Deployment, *, votes: int = 2) -> None:
    """Settle, vote, close, settle, and count."""
    team.wait_settled()
    [parent] = team.parents()
    numbers = team.variation_messages(parent.ts)
    for i in range(votes):  # two on #1, then #2…: never a tie, which would wait for the owner's pick
        assert team.vote(numbers[1 + (i // 2) % len(numbers)][0].ts, VOTERS[i])
    team.close(parent.ts)
    wait(lambda: all(r.status == "closed" for r in team.rows(Round)), "the close")
    team.wait_settled()
    team.check_exactly_once()


# Where the bot dies: (which fake, which call) — the call is carried out, then the bot is killed before it
# hears the answer, so the restarted bot must find what was done instead of doing it again.
KILL_POINTS = {
    "right after Generate, as the round is posted": (
        "slack",
        "chat.postMessage",
        on_post("Round:", in_thread=False),
    ),
    "mid-submit, as the provider creates a job": ("videos", "submit", None),
    "while rendering, as a job is polled": ("videos", "poll", None),
    "while downloading a finished clip": ("videos", "download", None),
    "while uploading a clip": ("slack", "files.completeUploadExternal", None),
    "while posting a variation's message": (
        "slack",
        "chat.postMessage",
        on_post("Variation #2", in_thread=True),
    ),
}


@pytest.mark.parametrize("moment", list(KILL_POINTS))
def test_killed_at_each_moment_of_a_round_the_restart_finishes_it_exactly_once(
    team: Deployment, moment: str
) -> None:
    fake, call, when = KILL_POINTS[moment]
    team.replicas[0].start()
    if fake == "slack":
        team.slack.after(call, killer(team), when=when)
    else:
        team.videos.after(call, killer(team))
    team.generate(idea=IDEA)
    restart_after_kill(team)
    finish(team)
    assert team.videos.jobs_created == 3, "one provider job per generation, none billed twice"


def test_killed_while_announcing_announces_once(team: Deployment) -> None:
    team.replicas[0].start()
    team.generate(idea=IDEA)
    team.wait_settled()
    [parent] = team.parents()
    numbers = team.variation_messages(parent.ts)
    assert team.vote(numbers[2][0].ts, VOTERS[0])
    team.slack.after(
        "chat.postMessage",
        killer(team),
        when=lambda p: "wins" in str(p.get("text", "")) and bool(p.get("thread_ts")),
    )
    team.close(parent.ts)
    restart_after_kill(team)
    wait(lambda: all(r.status == "closed" for r in team.rows(Round)), "the close")
    team.wait_settled()
    team.check_exactly_once()
    [round_row] = team.rows(Round)
    assert round_row.closes == 1


def test_killed_during_a_vote_burst_every_acknowledged_vote_is_counted(team: Deployment) -> None:
    team.replicas[0].start()
    team.generate(idea=IDEA)
    team.wait_settled()
    [parent] = team.parents()
    targets = [messages[0].ts for _, messages in sorted(team.variation_messages(parent.ts).items())]
    acked = threading.Semaphore(0)

    def cast(start: int) -> None:
        for i in range(start, len(VOTERS[:60]), 4):
            # #1, #2, #3, #3…: more on #3, so the close has a winner rather than a tie to settle
            if team.vote(targets[min(i % 4, len(targets) - 1)], VOTERS[i], ("+1", "fire", "heart")[i % 3]):
                acked.release()

    threads = [threading.Thread(target=cast, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(25):  # kill once 25 votes have their 200, while more are arriving
        acked.acquire(timeout=30)
    team.replicas[0].kill()
    for thread in threads:
        thread.join()
    team.replicas[0].start()
    team.close(parent.ts)
    wait(lambda: all(r.status == "closed" for r in team.rows(Round)), "the close")
    team.wait_settled()
    team.check_exactly_once()
    # The announced tally is Slack's: every reaction on the variation messages, however many events got through.
    in_slack = sum(
        len(users)
        for ts in targets
        for users in (team.slack.message(CHANNEL, ts) or parent).reactions.values()
    )
    announcement = next(m for m in team.slack.messages(CHANNEL, thread_ts=parent.ts) if "wins" in m.text)
    assert f"from {in_slack} voters" in announcement.text or in_slack == 0

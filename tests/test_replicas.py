"""Three `sora-bot serve` replicas on one PostgreSQL database and one fake Slack: 60 generations across 20 rounds,
one replica SIGKILLed midway. Every generation is submitted once and posted once; every round closes once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from process_kit import CHANNEL, VOTERS, Deployment, wait
from provider_fakes import FakeOpenAI, make_clip

from devkit.slack_api import FakeSlack
from storage.models import Generation, Round

pytestmark = pytest.mark.faults

ROUNDS = 20  # × 3 variations = 60 generations


@pytest.fixture
def three_replicas(tmp_path: Path, postgres_url: str) -> Iterator[Deployment]:
    users = {"U0OWNER": "owner", **{v: f"voter{i}" for i, v in enumerate(VOTERS)}}
    clip = make_clip(tmp_path / "clip")
    with (
        FakeSlack(users=users, channels={CHANNEL: "replicas"}) as slack,
        FakeOpenAI(clip=clip, polls_to_complete=1) as videos,
    ):
        deployment = Deployment(
            slack=slack, videos=videos, database_url=postgres_url, data_dir=tmp_path / "data"
        )
        for _ in range(3):
            replica = deployment.add_replica(tmp_path)
            replica.env["SORA_BOT_MAX_CONCURRENT"] = "30"
        try:
            for replica in deployment.replicas:
                replica.start()
            yield deployment
        finally:
            deployment.stop()


def test_three_replicas_one_killed_post_every_generation_once_and_close_every_round_once(
    three_replicas: Deployment,
) -> None:
    team = three_replicas
    for i in range(ROUNDS):
        # Clicks land on whichever replica Slack reaches; replica 1 dies halfway through.
        team.generate(
            idea=f"a paper lantern {i} floats over a harbour at dusk, slow pan",
            replica=(0, 2)[i % 2] if i >= ROUNDS // 2 else i % 3,
        )
        if i == ROUNDS // 2:
            wait(lambda: any(g.status == "completed" for g in team.rows(Generation)), "some work done")
            team.replicas[1].kill()
    team.wait_settled(timeout=180)
    parents = team.parents()
    assert len(parents) == ROUNDS
    for n, parent in enumerate(parents):
        numbers = team.variation_messages(parent.ts)
        assert team.vote(numbers[1 + n % 3][0].ts, VOTERS[n], replica=(0, 2)[n % 2])
    for n, parent in enumerate(parents):
        team.close(parent.ts, replica=(0, 2)[n % 2])
    wait(lambda: all(r.status == "closed" for r in team.rows(Round)), "every round to close", timeout=120)
    team.wait_settled(timeout=120)
    team.check_exactly_once()
    generations = team.rows(Generation)
    assert len(generations) == 3 * ROUNDS
    assert team.videos.jobs_created == 3 * ROUNDS
    assert all(r.closes == 1 for r in team.rows(Round))

"""The generation lifecycle against hosted providers' fakes, with faults: each ends with exactly one job at the
provider, at most one clip posted, and a row that tells the truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from bot.workflow import UNCERTAIN_SUBMIT, Workflow, WorkflowSettings
from provider_fakes import FakeFal, FakeOpenAI, make_clip
from sqlmodel import select
from test_workflow import RecordingPublisher

from bot.assets import LocalAssetStore
from bot.clock import FrozenClock
from bot.ports import VideoProvider
from bot.providers.fal import FalProvider
from bot.providers.openai_compat import OpenAICompatibleProvider
from bot.providers.registry import Providers
from storage.models import Generation
from storage.store import Store


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


def build(tmp_path: Path, provider: VideoProvider, **settings: object) -> Workflow:
    store = Store(f"sqlite:///{tmp_path / 'life.db'}")
    store.create_schema()
    return Workflow(
        store=store,
        providers=Providers(available={provider.name: provider}, default=provider.name),
        publisher=RecordingPublisher(),
        assets=LocalAssetStore(tmp_path / "assets"),
        clock=FrozenClock(),
        settings=WorkflowSettings(**settings),  # type: ignore[arg-type]
    )


@pytest.fixture
def openai_fake(clip: bytes) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(clip=clip, polls_to_complete=2) as fake:
        yield fake


def openai_workflow(
    tmp_path: Path, fake: FakeOpenAI, *, timeout: float = 10.0, **settings: object
) -> Workflow:
    provider = OpenAICompatibleProvider(api_key=fake.api_key, base_url=fake.base_url, timeout=timeout)
    return build(tmp_path, provider, **settings)


def start(workflow: Workflow, *, variations: int = 2) -> int:
    card = workflow.create_draft(team_id="T", channel_id="C", user_id="U1", idea="a fox runs through snow")
    with workflow.store.transaction() as repo:
        from storage.models import Draft

        row = repo.get(Draft, card.draft_id)
        assert row is not None
        row.variations = variations
        repo.add(row)
    return workflow.start_round(card.draft_id, actor="U1").round_id


def generations(workflow: Workflow) -> list[Generation]:
    with workflow.store.read() as repo:
        return list(repo.session.exec(select(Generation).order_by(Generation.id)).all())  # type: ignore[arg-type]


def run(workflow: Workflow, *, sweeps: int = 12, step: float = 40.0) -> None:
    for _ in range(sweeps):
        workflow.sweep()
        assert isinstance(workflow.clock, FrozenClock)
        workflow.clock.advance(seconds=step)


def uploads(workflow: Workflow) -> list[object]:
    assert isinstance(workflow.publisher, RecordingPublisher)
    return [title for kind, title in workflow.publisher.posts if kind == "file" and title != "Contact sheet"]


def test_a_hosted_round_completes_with_one_job_and_one_clip_per_variation(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake)
    start(workflow)
    run(workflow)
    rows = generations(workflow)
    assert [g.status for g in rows] == ["completed", "completed"]
    assert openai_fake.jobs_created == 2 and sorted(map(str, uploads(workflow))) == [
        "Variation #1",
        "Variation #2",
    ]
    assert all(g.asset_path and Path(g.asset_path).read_bytes()[4:8] == b"ftyp" for g in rows)
    assert rows[0].cost == pytest.approx(0.10 * rows[0].seconds) and rows[0].seconds in (4, 8, 12)


def test_a_429_on_create_waits_as_told_and_creates_exactly_one_job(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake)
    openai_fake.fail_next("submit", 429, retry_after=7)
    start(workflow, variations=2)
    workflow.sweep()
    [first] = [g for g in generations(workflow) if g.status == "queued"]  # the two submits race for the 429
    assert first.next_poll_at is not None
    assert first.next_poll_at - workflow.clock.now() == timedelta(seconds=7)
    run(workflow)
    assert openai_fake.jobs_created == 2 and [g.status for g in generations(workflow)] == ["completed"] * 2


def test_a_timeout_on_create_looks_the_job_up_instead_of_paying_twice(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake, timeout=0.5)
    openai_fake.delay_next("submit", 3)  # the fake creates the job, then answers too late
    start(workflow, variations=2)
    workflow.sweep()
    [first] = [g for g in generations(workflow) if g.status == "submitting"]  # whichever create was delayed
    assert first.provider_job_id is None and "checking" in (first.error or "")
    run(workflow)
    rows = generations(workflow)
    assert [g.status for g in rows] == ["completed", "completed"]
    assert openai_fake.jobs_created == 2, "the timed-out create was found, not repeated"
    assert len(uploads(workflow)) == 2


def test_a_crash_between_submitting_and_storing_the_job_id_adopts_the_job(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake)
    start(workflow, variations=2)
    with workflow.store.transaction() as repo:
        claimed = repo.claim_generations(
            statuses=["queued"], now=workflow.clock.now(), owner="dead", lease=timedelta(seconds=60), limit=1
        )
        claimed[0].status, claimed[0].submitted_at = "submitting", workflow.clock.now()
        repo.add(claimed[0])
        crashed = claimed[0]
    workflow.providers.get().submit(workflow._request(crashed))  # reached the provider; then the process died
    assert isinstance(workflow.clock, FrozenClock)
    workflow.clock.advance(seconds=61)
    run(workflow)
    assert openai_fake.jobs_created == 2
    assert [g.status for g in generations(workflow)] == ["completed", "completed"]


def test_without_a_way_to_look_a_job_up_an_unanswered_submit_fails_honestly(
    tmp_path: Path, clip: bytes
) -> None:
    with FakeFal(clip=clip, polls_to_complete=2) as fake:
        provider = FalProvider(key=fake.api_key, base_url=fake.base_url, timeout=0.5)
        workflow = build(tmp_path, provider)
        fake.delay_next("submit", 3)
        start(workflow, variations=2)
        run(workflow)
        rows = generations(workflow)
        assert sorted(g.status for g in rows) == ["completed", "failed"]
        failed = next(g for g in rows if g.status == "failed")
        assert failed.error == UNCERTAIN_SUBMIT and failed.provider_job_id is None
        assert fake.jobs_created == 2, "the unanswered one exists at the provider; it was not sent again"
        assert len(uploads(workflow)) == 1
        provider.close()


def test_moderation_after_acceptance_fails_the_variation_and_says_why(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake)
    start(workflow, variations=2)
    workflow.sweep()
    job = generations(workflow)[0].provider_job_id
    assert job is not None
    openai_fake.fail_job_after_accept(job)
    run(workflow)
    rows = generations(workflow)
    assert rows[0].status == "failed" and "moderation" in (rows[0].error or "").lower()
    assert rows[1].status == "completed" and openai_fake.jobs_created == 2 and len(uploads(workflow)) == 1


def test_an_expired_download_fails_at_once_instead_of_polling_until_timeout(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake)
    openai_fake.expire_downloads(410)
    start(workflow, variations=2)
    run(workflow, sweeps=4)
    rows = generations(workflow)
    assert [g.status for g in rows] == ["failed", "failed"] and all("expire" in (g.error or "") for g in rows)
    assert len(openai_fake.requests_to("download")) == 2, "one try each, no loop"


def test_a_stuck_job_times_out_with_a_clear_message(tmp_path: Path, openai_fake: FakeOpenAI) -> None:
    workflow = openai_workflow(tmp_path, openai_fake, job_timeout_minutes=5)
    start(workflow, variations=2)
    workflow.sweep()
    for row in generations(workflow):
        assert row.provider_job_id is not None
        openai_fake.stick(row.provider_job_id)
    run(workflow, sweeps=20, step=30)
    rows = generations(workflow)
    assert [g.status for g in rows] == ["failed", "failed"]
    assert all("did not finish within 5 minutes" in (g.error or "") for g in rows)
    polls = len(openai_fake.requests_to("poll"))
    assert polls <= 2 * 12, f"polling backs off ({polls} polls for 2 jobs over 10 minutes)"


def test_the_concurrency_limit_keeps_the_rest_queued_in_order(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake, max_concurrent=1)
    round_id = start(workflow, variations=3)
    workflow.sweep()
    assert [g.status for g in generations(workflow)] == ["in_progress", "queued", "queued"]
    positions = [v.queue_position for v in workflow.round_view(round_id).variations]
    assert positions == [None, 1, 2]
    run(workflow)
    assert [g.status for g in generations(workflow)] == ["completed"] * 3 and openai_fake.jobs_created == 3


def settled(row: Generation, polls: int, fake: FakeOpenAI) -> bool:
    """The callback's poll is done: the job is posted, or still running and let go."""
    polled = len(fake.requests_to("poll")) > polls
    return polled and (row.posted_at is not None or (row.status == "in_progress" and row.lease_owner is None))


def test_a_provider_callback_polls_the_job_at_once_and_posts_it(
    tmp_path: Path, openai_fake: FakeOpenAI
) -> None:
    workflow = openai_workflow(tmp_path, openai_fake)
    start(workflow, variations=2)
    workflow.sweep()
    job = generations(workflow)[0].provider_job_id
    assert job is not None
    for _ in range(openai_fake.polls_to_complete + 1):  # each callback is one poll, made outside the sweep
        polls = len(openai_fake.requests_to("poll"))
        assert workflow.job_event(provider="openai", job_id=job) is True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not settled(generations(workflow)[0], polls, openai_fake):
            time.sleep(0.02)
        assert len(openai_fake.requests_to("poll")) == polls + 1
        if generations(workflow)[0].posted_at is not None:
            break
    first = generations(workflow)[0]
    assert first.status == "completed" and first.posted_at is not None, first.error
    assert uploads(workflow) == ["Variation #1"], "posted by the callback, before any further sweep"
    assert workflow.job_event(provider="openai", job_id="video_unknown") is False
    workflow.close()


def test_a_fal_callback_finds_its_job_by_the_request_id_fal_sends(tmp_path: Path, clip: bytes) -> None:
    with FakeFal(clip=clip, polls_to_complete=50) as fake:
        provider = FalProvider(key=fake.api_key, base_url=fake.base_url)
        workflow = build(tmp_path, provider)
        start(workflow, variations=2)
        workflow.sweep()
        rows = generations(workflow)
        for row in rows:  # the webhook names a job by its request id; our job id is its queue path
            assert row.provider_callback_id and row.provider_job_id
            assert row.provider_callback_id != row.provider_job_id
            assert f"/requests/{row.provider_callback_id}" in row.provider_job_id
        assert len({row.provider_callback_id for row in rows}) == 2
        assert workflow.job_event(provider="fal", job_id=rows[1].provider_callback_id) is True
        assert workflow.job_event(provider="fal", job_id="not-a-request-of-ours") is False
        workflow.close()
        provider.close()

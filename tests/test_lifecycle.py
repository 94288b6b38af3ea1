"""The generation lifecycle against hosted providers' fakes, with faults: each ends with exactly one job at the
provider per variation, at most one clip posted per variation, and rows that tell the truth."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Core, make_core
from provider_fakes import FakeFal, FakeOpenAI, make_clip

from bot.jobs import UNCERTAIN_SUBMIT
from bot.ports import VideoProvider
from bot.providers.edit import EditProvider
from bot.providers.fal import FalProvider
from bot.providers.openai_compat import OpenAICompatibleProvider
from bot.providers.registry import Providers
from bot.tuning import CoreSettings
from storage.models import Generation

Build = Callable[..., Core]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def openai_fake(clip: bytes) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(clip=clip, polls_to_complete=2) as fake:
        yield fake


@pytest.fixture
def fal_fake(clip: bytes) -> Iterator[FakeFal]:
    with FakeFal(clip=clip, polls_to_complete=2) as fake:
        yield fake


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    """Services over one hosted provider (and the internal edit one); closed before the fakes stop."""
    made: list[Core] = []

    def make(provider: VideoProvider, **tuning: object) -> Core:
        providers = Providers(
            available={provider.name: provider, "edit": EditProvider(tmp_path / "edits")},
            default=provider.name,
        )
        core = make_core(
            tmp_path,
            providers=providers,
            tuning=CoreSettings(**tuning) if tuning else None,  # type: ignore[arg-type]
        )
        made.append(core)
        return core

    yield make
    for core in made:
        core.close()


def on_openai(build: Build, fake: FakeOpenAI, *, timeout: float = 10.0, **tuning: object) -> Core:
    return build(
        OpenAICompatibleProvider(api_key=fake.api_key, base_url=fake.base_url, timeout=timeout), **tuning
    )


def on_fal(build: Build, fake: FakeFal, *, timeout: float = 10.0) -> Core:
    return build(FalProvider(key=fake.api_key, base_url=fake.base_url, timeout=timeout))


def start(core: Core, *, variations: int = 2) -> int:
    card = core.services.drafts.create_draft(
        team_id="T", channel_id="C", user_id="U1", idea="a fox runs through snow"
    )
    with core.store.transaction() as repo:
        row = repo.drafts.get(card.draft_id)
        assert row is not None
        row.variations = variations
        repo.drafts.save(row)
    return core.services.rounds.start_round(card.draft_id, actor="U1").round_id


def generations(core: Core, round_id: int) -> list[Generation]:
    with core.store.read() as repo:
        return list(repo.generations.in_round(round_id))


def sweep(core: Core) -> None:
    report = core.services.sweep()
    assert not report.errors, report.errors


def run(core: Core, *, sweeps: int = 12, step: float = 40.0) -> None:
    for _ in range(sweeps):
        sweep(core)
        core.clock.advance(seconds=step)


def uploads(core: Core) -> list[str]:
    return [p.title for p in core.publisher.of_kind("file") if p.title != "Contact sheet"]


def polled_jobs(fake: FakeOpenAI) -> set[str | None]:
    """The jobs the provider was asked about, by the id in each status request's path."""
    return {r.path.rsplit("/", 1)[-1] for r in fake.requests_to("poll")}


def clip_posted(core: Core, generation_id: int | None) -> bool:
    """A clip is posted when its outbox row has been sent."""
    with core.store.read() as repo:
        row = repo.outbox.by_key(f"generation-{generation_id}/upload_clip")
    return row is not None and row.state == "sent"


def test_a_hosted_round_completes_with_one_job_and_one_clip_per_variation(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake)
    round_id = start(core)
    run(core)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed", "completed"]
    assert openai_fake.jobs_created == 2 and sorted(uploads(core)) == ["Variation #1", "Variation #2"]
    assert all(clip_posted(core, g.id) for g in rows)
    assert len({g.provider_job_id for g in rows}) == 2 and polled_jobs(openai_fake) == {
        g.provider_job_id for g in rows
    }
    assert all(
        g.asset_path and core.services.assets.fetch(g.asset_path).read_bytes()[4:8] == b"ftyp" for g in rows
    )
    assert rows[0].cost == pytest.approx(0.10 * rows[0].seconds) and rows[0].seconds in (4, 8, 12)


def test_a_429_on_create_waits_as_told_and_creates_exactly_one_job(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake)
    openai_fake.fail_next("submit", 429, retry_after=7)
    round_id = start(core, variations=2)
    sweep(core)
    [first] = [g for g in generations(core, round_id) if g.status == "queued"]  # the two race for the 429
    assert first.next_poll_at is not None and first.provider_job_id is None
    assert first.next_poll_at - core.clock.now() == timedelta(seconds=7)
    run(core)
    assert openai_fake.jobs_created == 2
    assert [g.status for g in generations(core, round_id)] == ["completed"] * 2


def test_a_timeout_on_create_looks_the_job_up_instead_of_paying_twice(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake, timeout=0.5)
    openai_fake.delay_next("submit", 3)  # the fake creates the job, then answers too late
    round_id = start(core, variations=2)
    sweep(core)
    [first] = [g for g in generations(core, round_id) if g.status == "submitting"]  # whichever was delayed
    assert first.provider_job_id is None and "checking" in (first.error or "")
    run(core)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed", "completed"]
    assert openai_fake.jobs_created == 2, "the timed-out create was adopted, not repeated"
    assert len({g.provider_job_id for g in rows}) == 2
    assert openai_fake.requests_to("cancel") == [] and len(uploads(core)) == 2


def test_two_variations_whose_creates_both_time_out_each_adopt_a_different_job(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake, timeout=0.5)
    openai_fake.delay_next("submit", 3)
    openai_fake.delay_next("submit", 3)
    round_id = start(core, variations=2)
    sweep(core)
    assert [(g.status, g.provider_job_id) for g in generations(core, round_id)] == [("submitting", None)] * 2
    assert openai_fake.jobs_created == 2  # both reached the provider; neither answer came back
    run(core)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed", "completed"]
    owned = [g.provider_job_id for g in rows]
    assert len(set(owned)) == 2, "each variation adopted its own job"
    assert polled_jobs(openai_fake) == set(owned) and openai_fake.latest_job in owned
    assert openai_fake.jobs_created == 2, "nothing was sent again"
    assert openai_fake.requests_to("cancel") == [], "no job was cancelled"
    assert sorted(uploads(core)) == ["Variation #1", "Variation #2"]


def test_a_listed_job_no_generation_owns_is_cancelled_at_the_provider_and_logged(
    build: Build, openai_fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    core = on_openai(build, openai_fake, timeout=0.5)
    openai_fake.delay_next("submit", 3)
    openai_fake.delay_next("submit", 3)
    round_id = start(core, variations=2)
    sweep(core)
    unanswered = generations(core, round_id)
    assert [g.status for g in unanswered] == ["submitting", "submitting"]
    # A third create of the same prompt reached the provider, and no row is waiting for it.
    stray = core.services.providers.get("openai").submit(core.services.jobs._request(unanswered[0]))
    assert openai_fake.jobs_created == 3
    with caplog.at_level(logging.WARNING, logger="bot.jobs"):
        run(core)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed", "completed"]
    owned = {g.provider_job_id for g in rows}
    assert len(owned) == 2 and stray.job_id not in owned
    assert [r.path for r in openai_fake.requests_to("cancel")] == [f"/v1/videos/{stray.job_id}"]
    assert openai_fake.jobs_created == 3, "nothing was sent again"
    assert any(
        stray.job_id in r.getMessage() and "belongs to no generation" in r.getMessage()
        for r in caplog.records
    )


def test_a_provider_answering_with_a_job_another_variation_owns_fails_that_variation(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake, max_concurrent=1)
    round_id = start(core, variations=2)
    sweep(core)
    first, second = generations(core, round_id)
    assert first.provider_job_id is not None and second.status == "queued"
    # The next create answers with the first variation's job (a confused gateway): the database refuses it.
    openai_fake.fail_next(
        "submit",
        200,
        body={
            "id": first.provider_job_id,
            "object": "video",
            "model": "sora-2",
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            "seconds": "4",
            "size": "1280x720",
            "prompt": first.prompt,
        },
    )
    run(core)
    first, second = generations(core, round_id)
    assert first.status == "completed" and second.status == "failed"
    assert second.provider_job_id is None and "belongs to another variation" in (second.error or "")
    assert openai_fake.jobs_created == 1 and uploads(core) == ["Variation #1"]


def test_a_crash_between_submitting_and_storing_the_job_id_adopts_the_job(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake)
    round_id = start(core, variations=2)
    with core.store.transaction() as repo:
        [crashed] = repo.generations.claim_due(
            statuses=["queued"], now=core.clock.now(), owner="dead", lease=timedelta(seconds=60), limit=1
        )
        repo.generations.mark_submitting(crashed, now=core.clock.now())
    # The create reached the provider; then the process died before the job id was stored.
    made = core.services.providers.get("openai").submit(core.services.jobs._request(crashed))
    core.clock.advance(seconds=61)
    run(core)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed", "completed"]
    assert next(g for g in rows if g.id == crashed.id).provider_job_id == made.job_id
    assert openai_fake.jobs_created == 2 and openai_fake.requests_to("cancel") == []


def test_without_a_way_to_look_a_job_up_an_unanswered_submit_fails_honestly(
    build: Build, fal_fake: FakeFal
) -> None:
    core = on_fal(build, fal_fake, timeout=0.5)
    fal_fake.delay_next("submit", 3)
    round_id = start(core, variations=2)
    run(core)
    rows = generations(core, round_id)
    assert sorted(g.status for g in rows) == ["completed", "failed"]
    failed = next(g for g in rows if g.status == "failed")
    assert failed.error == UNCERTAIN_SUBMIT and failed.provider_job_id is None
    assert fal_fake.jobs_created == 2, "the unanswered one exists at the provider; it was not sent again"
    assert len(uploads(core)) == 1


def test_moderation_after_acceptance_fails_the_variation_and_says_why(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake)
    round_id = start(core, variations=2)
    sweep(core)
    job = generations(core, round_id)[0].provider_job_id
    assert job is not None
    openai_fake.fail_job_after_accept(job)
    run(core)
    rows = generations(core, round_id)
    assert rows[0].status == "failed" and "moderation" in (rows[0].error or "").lower()
    assert (
        rows[1].status == "completed" and openai_fake.jobs_created == 2 and uploads(core) == ["Variation #2"]
    )


def test_an_expired_download_fails_at_once_instead_of_polling_until_timeout(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake)
    openai_fake.expire_downloads(410)
    round_id = start(core, variations=2)
    run(core, sweeps=4)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["failed", "failed"] and all("expire" in (g.error or "") for g in rows)
    assert len(openai_fake.requests_to("download")) == 2, "one try each, no loop"
    assert uploads(core) == []


def test_a_stuck_job_times_out_with_a_clear_message(build: Build, openai_fake: FakeOpenAI) -> None:
    core = on_openai(build, openai_fake, job_timeout_minutes=5)
    round_id = start(core, variations=2)
    sweep(core)
    for row in generations(core, round_id):
        assert row.provider_job_id is not None
        openai_fake.stick(row.provider_job_id)
    run(core, sweeps=20, step=30)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["failed", "failed"]
    assert all("did not finish within 5 minutes" in (g.error or "") for g in rows)
    polls = len(openai_fake.requests_to("poll"))
    assert polls <= 2 * 12, f"polling backs off ({polls} polls for 2 jobs over 10 minutes)"


def test_the_concurrency_limit_keeps_the_rest_queued_in_order(build: Build, openai_fake: FakeOpenAI) -> None:
    core = on_openai(build, openai_fake, max_concurrent=1)
    round_id = start(core, variations=3)
    sweep(core)
    assert [g.status for g in generations(core, round_id)] == ["in_progress", "queued", "queued"]
    positions = [v.queue_position for v in core.services.rounds.round_view(round_id).variations]
    assert positions == [None, 1, 2]
    run(core)
    assert [g.status for g in generations(core, round_id)] == ["completed"] * 3
    assert openai_fake.jobs_created == 3


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """The callback's poll runs on its own worker: wait for what it leaves in the rows (never asserting how long)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_a_provider_callback_polls_the_job_at_once_and_posts_it(
    build: Build, openai_fake: FakeOpenAI
) -> None:
    core = on_openai(build, openai_fake)
    round_id = start(core, variations=2)
    sweep(core)
    first = generations(core, round_id)[0]
    assert first.provider_job_id is not None
    for _ in range(openai_fake.polls_to_complete + 1):  # each callback is one poll, made outside the sweep
        polls = len(openai_fake.requests_to("poll"))
        assert core.services.jobs.job_event(provider="openai", job_id=first.provider_job_id) is True

        def settled(polls: int = polls) -> bool:
            row = generations(core, round_id)[0]
            polled = len(openai_fake.requests_to("poll")) > polls
            let_go = row.status == "in_progress" and row.lease_owner is None
            return polled and (clip_posted(core, row.id) or let_go)

        wait_for(settled, "the callback's poll")
        assert len(openai_fake.requests_to("poll")) == polls + 1
        if clip_posted(core, first.id):
            break
    first = generations(core, round_id)[0]
    assert first.status == "completed" and clip_posted(core, first.id), first.error
    assert uploads(core) == ["Variation #1"], "posted by the callback, before any further sweep"
    assert core.services.jobs.job_event(provider="openai", job_id="video_unknown") is False


def test_a_fal_callback_finds_its_job_by_the_request_id_fal_sends(build: Build, fal_fake: FakeFal) -> None:
    fal_fake.polls_to_complete = 50
    core = on_fal(build, fal_fake)
    round_id = start(core, variations=2)
    sweep(core)
    rows = generations(core, round_id)
    for row in rows:  # the webhook names a job by its request id; our job id is its queue path
        assert row.provider_callback_id and row.provider_job_id
        assert row.provider_callback_id != row.provider_job_id
        assert f"/requests/{row.provider_callback_id}" in row.provider_job_id
    assert len({row.provider_callback_id for row in rows}) == 2
    assert rows[1].provider_callback_id is not None
    assert core.services.jobs.job_event(provider="fal", job_id=rows[1].provider_callback_id) is True
    assert core.services.jobs.job_event(provider="fal", job_id="not-a-request-of-ours") is False


def test_a_job_a_lost_create_lands_after_settling_is_found_by_the_audit_and_cancelled(
    build: Build, openai_fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    core = on_openai(build, openai_fake, timeout=0.5)
    openai_fake.delay_next("submit", 3)  # the fake creates the job, then answers too late
    round_id = start(core, variations=2)
    sweep(core)
    run(core)
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["completed", "completed"]
    [unanswered] = [g for g in rows if g.create_unanswered]
    with core.store.transaction() as repo:  # the provider's clock and ours agree, as they do outside tests
        row = repo.generations.get(unanswered.id or 0)
        assert row is not None
        row.submitted_at = datetime.now(UTC)
        repo.session.add(row)
    provider = core.services.providers.get("openai")
    request = core.services.jobs._request(unanswered)
    late = provider.submit(request)  # a create the dead process had in flight lands only now
    elsewhere = provider.submit(request)  # the same prompt, an hour earlier: someone else's, left alone
    openai_fake.backdate(elsewhere.job_id, 3600)
    with caplog.at_level(logging.WARNING, logger="bot.jobs"):
        assert core.services.jobs.audit_orphans(window=timedelta(hours=2)) == 1
    assert [r.path for r in openai_fake.requests_to("cancel")] == [f"/v1/videos/{late.job_id}"]
    assert any(
        late.job_id in r.getMessage() and "belongs to no generation" in r.getMessage() for r in caplog.records
    )
    assert core.services.jobs.audit_orphans(window=timedelta(hours=2)) == 0, (
        "a cancelled job is not listed again"
    )

"""One contract for every video provider (local, and each hosted one over real HTTP to its fake), then faults."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types import Video
from provider_fakes import (
    FakeFal,
    FakeOpenAI,
    FakeProviderServer,
    FakeVeo,
    RecordedRequest,
    make_clip,
    make_png,
)

from bot import media
from bot.domain import (
    Aspect,
    Capability,
    Edit,
    GenerationKind,
    GenerationRequest,
    JobStatus,
    PromptSpec,
    ProviderJob,
)
from bot.errors import (
    AuthFailed,
    JobNotFound,
    Moderated,
    OutcomeUnknown,
    ProviderError,
    ProviderTimedOut,
    ProviderUnavailable,
    RateLimited,
)
from bot.ports import JobFinder, VideoProvider
from bot.providers.edit import EditProvider
from bot.providers.fal import FalJobRef, FalProvider
from bot.providers.local import LocalProvider
from bot.providers.openai_compat import OpenAICompatibleProvider
from bot.providers.veo import VeoProvider

ALL = ("local", "openai", "fal", "veo")
HOSTED = ("openai", "fal", "veo")
# Every fake completes on its third status request; a few more leave room without hiding a hang.
MAX_POLLS = 6
KEY_SETTING = {"openai": "OPENAI_API_KEY", "fal": "FAL_KEY", "veo": "GEMINI_API_KEY"}
SPEC = PromptSpec(
    subject="A small red robot waters a giant sunflower",
    action="tilts the watering can",
    camera="slow push-in",
    environment="rooftop garden at dusk",
    finish="35mm film grain",
    intent="teaser",
)


def make_request(
    *,
    seconds: int = 4,
    aspect: Aspect = Aspect.LANDSCAPE,
    reference: Path | None = None,
    variation: int = 1,
    seed: int | None = None,
) -> GenerationRequest:
    return GenerationRequest(
        prompt="A small red robot waters a giant sunflower on a rooftop at dusk.",
        spec=SPEC,
        seconds=seconds,
        aspect=aspect,
        variation=variation,
        idempotency_key=f"generation-{variation}",
        seed=seed,
        reference_image=reference,
    )


@dataclass(frozen=True)
class Rig:
    """A provider under test and, for a hosted one, the fake it talks to."""

    provider: VideoProvider
    fake: FakeProviderServer | None
    unknown_job_id: str

    @property
    def server(self) -> FakeProviderServer:
        assert self.fake is not None, "the local provider has no server"
        return self.fake


@contextlib.contextmanager
def local_rig(tmp_path: Path, clip: bytes, **_: Any) -> Iterator[Rig]:
    yield Rig(LocalProvider(tmp_path / "local"), None, "local-0000000000000000")


@contextlib.contextmanager
def openai_rig(
    tmp_path: Path, clip: bytes, *, api_key: str | None = None, http_client: httpx.Client | None = None
) -> Iterator[Rig]:
    with (
        FakeOpenAI(clip=clip) as fake,
        OpenAICompatibleProvider(
            api_key=api_key or fake.api_key, base_url=fake.base_url, http_client=http_client
        ) as provider,
    ):
        yield Rig(provider, fake, "video_doesnotexist")


@contextlib.contextmanager
def fal_rig(
    tmp_path: Path, clip: bytes, *, api_key: str | None = None, http_client: httpx.Client | None = None
) -> Iterator[Rig]:
    with (
        FakeFal(clip=clip) as fake,
        FalProvider(key=api_key or fake.api_key, base_url=fake.base_url, http_client=http_client) as provider,
    ):
        yield Rig(provider, fake, f"{fake.app_path}/requests/00000000-0000-000000000000")


@contextlib.contextmanager
def veo_rig(
    tmp_path: Path, clip: bytes, *, api_key: str | None = None, http_client: httpx.Client | None = None
) -> Iterator[Rig]:
    with (
        FakeVeo(clip=clip) as fake,
        VeoProvider(
            api_key=api_key or fake.api_key, base_url=fake.base_url, http_client=http_client
        ) as provider,
    ):
        yield Rig(provider, fake, "models/veo-3.1-fast-generate-preview/operations/doesnotexist")


RIGS: dict[str, Callable[..., contextlib.AbstractContextManager[Rig]]] = {
    "local": local_rig,
    "openai": openai_rig,
    "fal": fal_rig,
    "veo": veo_rig,
}

OpenRig = Callable[..., Rig]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def open_rig(tmp_path: Path, clip: bytes) -> Iterator[OpenRig]:
    """Opens rigs by name (optionally with a wrong key or a caller's short-timeout httpx client)."""
    opened: list[Rig] = []
    with contextlib.ExitStack() as stack:

        def open_(name: str, *, api_key: str | None = None, timeout: float | None = None) -> Rig:
            client = stack.enter_context(httpx.Client(timeout=timeout)) if timeout else None
            rig = stack.enter_context(RIGS[name](tmp_path, clip, api_key=api_key, http_client=client))
            opened.append(rig)
            return rig

        yield open_
        for rig in opened:
            assert rig.fake is None or rig.fake.errors == []


@pytest.fixture(params=ALL)
def rig(request: pytest.FixtureRequest, open_rig: OpenRig) -> Rig:
    return open_rig(request.param)


@pytest.fixture(params=HOSTED)
def hosted(request: pytest.FixtureRequest, open_rig: OpenRig) -> Rig:
    return open_rig(request.param)


def run_to_completion(provider: VideoProvider, job_id: str) -> ProviderJob:
    """Fetch until the job ends (the fakes answer at once, so no sleeping)."""
    seen = []
    for _ in range(MAX_POLLS):
        job = provider.fetch(job_id)
        seen.append(job.status)
        if job.status.is_terminal:
            return job
    raise AssertionError(f"{provider.name} job {job_id} never finished: {seen}")


def assert_real_mp4(path: Path) -> None:
    assert path.read_bytes()[4:8] == b"ftyp"
    assert media.probe(path).duration > 0


# ============================================================================================ the contract


def test_submit_returns_a_job_id_and_a_lifecycle_status(rig: Rig) -> None:
    job = rig.provider.submit(make_request())

    assert job.job_id
    assert job.status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS, JobStatus.COMPLETED)


def test_fetch_reaches_completed_within_a_few_polls(rig: Rig) -> None:
    job = rig.provider.submit(make_request())

    done = run_to_completion(rig.provider, job.job_id)

    assert done.status is JobStatus.COMPLETED, done.error
    assert done.job_id == job.job_id
    assert done.progress == 100


def test_download_writes_a_real_mp4_with_a_duration(rig: Rig, tmp_path: Path) -> None:
    job = rig.provider.submit(make_request())
    run_to_completion(rig.provider, job.job_id)

    clip = rig.provider.download(job.job_id, tmp_path / "assets" / "generation-1.mp4")

    assert clip == tmp_path / "assets" / "generation-1.mp4"
    assert_real_mp4(clip)
    assert [p.name for p in clip.parent.iterdir()] == ["generation-1.mp4"]  # no partial file left behind


def test_image_to_video_completes_and_downloads_too(rig: Rig, tmp_path: Path) -> None:
    request = make_request(reference=make_png(tmp_path), aspect=Aspect.PORTRAIT)

    job = rig.provider.submit(request)

    assert Capability.IMAGE_TO_VIDEO in rig.provider.capabilities
    assert run_to_completion(rig.provider, job.job_id).status is JobStatus.COMPLETED
    assert_real_mp4(rig.provider.download(job.job_id, tmp_path / "i2v.mp4"))


def test_cancel_does_not_raise_while_running_or_after_completion(rig: Rig) -> None:
    running = rig.provider.submit(make_request(variation=1))
    finished = rig.provider.submit(make_request(variation=2))
    run_to_completion(rig.provider, finished.job_id)

    rig.provider.cancel(running.job_id)
    rig.provider.cancel(finished.job_id)
    rig.provider.cancel(rig.unknown_job_id)


@pytest.mark.parametrize("which", ["plausible", "garbage", "dots"])
def test_an_unknown_job_id_fails_or_raises_a_provider_error(rig: Rig, which: str, tmp_path: Path) -> None:
    job_id = {
        "plausible": rig.unknown_job_id,
        "garbage": "no such job/../../etc/passwd",
        "dots": "..",
    }[which]
    rig.provider.cancel(job_id)
    with pytest.raises(JobNotFound):
        rig.provider.download(job_id, tmp_path / "never.mp4")
    try:
        job = rig.provider.fetch(job_id)
    except ProviderError:
        return
    assert job.status is JobStatus.FAILED
    assert job.error


def test_cost_per_second_is_never_negative(rig: Rig) -> None:
    assert rig.provider.cost_per_second(None) >= 0
    assert rig.provider.cost_per_second("some-other-model") >= 0


def test_capabilities_include_text_to_video(rig: Rig) -> None:
    assert Capability.TEXT_TO_VIDEO in rig.provider.capabilities
    assert rig.provider.name in ALL


# ======================================================================================= faults, per provider


def test_a_429_on_submit_is_rate_limited_with_its_retry_after_and_no_blind_retry(hosted: Rig) -> None:
    hosted.server.fail_next("submit", 429, retry_after=7)

    with pytest.raises(RateLimited) as caught:
        hosted.provider.submit(make_request())

    assert caught.value.retryable
    assert caught.value.retry_after == pytest.approx(7)
    assert len(hosted.server.requests_to("submit")) == 1  # the client did not retry behind our back
    hosted.provider.submit(make_request())  # the core's own retry, later
    assert hosted.server.jobs_created == 1


def test_a_server_error_is_provider_unavailable_on_submit_and_on_poll(hosted: Rig) -> None:
    hosted.server.fail_next("submit", 503)
    with pytest.raises(ProviderUnavailable) as on_submit:
        hosted.provider.submit(make_request())
    job = hosted.provider.submit(make_request())
    hosted.server.fail_next("poll", 500)
    with pytest.raises(ProviderUnavailable) as on_poll:
        hosted.provider.fetch(job.job_id)

    assert on_submit.value.retryable and on_poll.value.retryable
    assert len(hosted.server.requests_to("submit")) == 2 and hosted.server.jobs_created == 1
    assert run_to_completion(hosted.provider, job.job_id).status is JobStatus.COMPLETED


def test_a_connection_reset_while_polling_is_a_retryable_timeout(hosted: Rig) -> None:
    job = hosted.provider.submit(make_request())
    hosted.server.reset_connection_next("poll")

    with pytest.raises(ProviderTimedOut) as caught:
        hosted.provider.fetch(job.job_id)

    assert caught.value.retryable
    assert run_to_completion(hosted.provider, job.job_id).status is JobStatus.COMPLETED


def test_a_connection_reset_after_the_create_was_sent_is_an_unknown_outcome(hosted: Rig) -> None:
    hosted.server.reset_connection_next("submit")

    with pytest.raises(OutcomeUnknown) as caught:
        hosted.provider.submit(make_request())

    assert not caught.value.retryable
    assert len(hosted.server.requests_to("submit")) == 1


def test_a_refused_connection_on_submit_is_unavailable_because_nothing_was_sent(hosted: Rig) -> None:
    hosted.server.stop()

    with pytest.raises(ProviderUnavailable) as caught:
        hosted.provider.submit(make_request())

    assert caught.value.retryable


@pytest.mark.parametrize("name", HOSTED)
def test_a_timeout_on_create_is_an_unknown_outcome_and_not_retried(open_rig: OpenRig, name: str) -> None:
    rig = open_rig(name, timeout=0.5)
    rig.server.delay_next("submit", 5)

    with pytest.raises(OutcomeUnknown) as caught:
        rig.provider.submit(make_request())

    assert not caught.value.retryable
    assert "may or may not exist" in str(caught.value)
    # Why the core must decide: the provider did start (and would bill) the job it never heard back about.
    assert rig.server.jobs_created == 1
    assert len(rig.server.requests_to("submit")) == 1


@pytest.mark.parametrize("name", HOSTED)
def test_a_timeout_while_polling_is_a_retryable_timeout(open_rig: OpenRig, name: str) -> None:
    rig = open_rig(name, timeout=0.5)
    job = rig.provider.submit(make_request())
    rig.server.delay_next("poll", 5)

    with pytest.raises(ProviderTimedOut) as caught:
        rig.provider.fetch(job.job_id)

    assert caught.value.retryable


def test_a_stuck_job_stays_in_progress(hosted: Rig) -> None:
    job = hosted.provider.submit(make_request())
    hosted.server.stick(job.job_id)

    statuses = {hosted.provider.fetch(job.job_id).status for _ in range(MAX_POLLS)}

    assert statuses == {JobStatus.IN_PROGRESS}


def test_a_moderation_failure_after_acceptance_fails_with_a_message_naming_moderation(hosted: Rig) -> None:
    job = hosted.provider.submit(make_request())
    hosted.server.fail_job_after_accept(job.job_id, code="moderation_blocked")

    failed = run_to_completion(hosted.provider, job.job_id)

    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and "moderation" in failed.error.lower()


@pytest.mark.parametrize("status", [404, 410])
def test_an_expired_download_is_job_not_found_and_leaves_no_file(
    hosted: Rig, tmp_path: Path, status: int
) -> None:
    job = hosted.provider.submit(make_request())
    run_to_completion(hosted.provider, job.job_id)
    hosted.server.expire_downloads(status)

    with pytest.raises(JobNotFound) as caught:
        hosted.provider.download(job.job_id, tmp_path / "out" / "clip.mp4")

    assert not caught.value.retryable
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("name", HOSTED)
def test_a_rejected_key_is_auth_failed_and_names_the_setting(open_rig: OpenRig, name: str) -> None:
    rig = open_rig(name, api_key="wrong-key")

    with pytest.raises(AuthFailed) as caught:
        rig.provider.submit(make_request())

    assert not caught.value.retryable
    assert KEY_SETTING[name] in str(caught.value)


def _openai_reference(request: RecordedRequest, png: bytes) -> None:
    reference = request.form()["input_reference"]
    assert (reference.value, reference.filename, reference.content_type) == (png, "still.png", "image/png")


def _fal_reference(request: RecordedRequest, png: bytes) -> None:
    assert request.json()["image_url"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert request.path.endswith("/image-to-video")  # the sibling endpoint that takes `image_url`


def _veo_reference(request: RecordedRequest, png: bytes) -> None:
    image = request.json()["instances"][0]["image"]
    assert image == {"bytesBase64Encoded": base64.b64encode(png).decode(), "mimeType": "image/png"}


REFERENCE_FIELD: dict[str, Callable[[RecordedRequest, bytes], None]] = {
    "openai": _openai_reference,
    "fal": _fal_reference,
    "veo": _veo_reference,
}


@pytest.mark.parametrize("name", HOSTED)
def test_image_to_video_sends_the_reference_in_the_documented_field(
    open_rig: OpenRig, name: str, tmp_path: Path
) -> None:
    rig = open_rig(name)
    still = make_png(tmp_path)

    rig.provider.submit(make_request(reference=still))

    REFERENCE_FIELD[name](rig.server.requests_to("submit")[0], still.read_bytes())


# ================================================================================ seeds: distinct variations


def _fal_seed(request: RecordedRequest) -> object:
    return request.json().get("seed")


def _veo_seed(request: RecordedRequest) -> object:
    return request.json()["parameters"].get("seed")


def _openai_seed(request: RecordedRequest) -> object:
    field = request.form().get("seed")
    return None if field is None else int(field.value)


SENT_SEED: dict[str, Callable[[RecordedRequest], object]] = {
    "openai": _openai_seed,
    "fal": _fal_seed,
    "veo": _veo_seed,
}
# The OpenAI videos API takes no seed, and Veo on the Gemini API refuses one (only Vertex AI takes it).
TAKES_SEED = {"openai": False, "fal": True, "veo": False}


@pytest.mark.parametrize("name", HOSTED)
def test_the_seed_is_sent_where_the_provider_takes_one_and_never_elsewhere(
    open_rig: OpenRig, name: str
) -> None:
    rig = open_rig(name)

    rig.provider.submit(make_request(variation=1, seed=1234))
    rig.provider.submit(make_request(variation=2, seed=98765))
    rig.provider.submit(make_request(variation=3))

    sent = [SENT_SEED[name](request) for request in rig.server.requests_to("submit")]
    assert sent == ([1234, 98765, None] if TAKES_SEED[name] else [None, None, None])


def first_frame_digest(clip: Path, tmp_path: Path) -> bytes:
    frame = media.first_frame(clip, tmp_path / f"{clip.stem}-first.png")
    return hashlib.sha256(frame.read_bytes()).digest()


def test_local_clips_with_different_seeds_look_different_and_equal_seeds_alike(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path / "local")
    clips = {}
    for label, seed, key in (("a", 11, "k1"), ("b", 12, "k2"), ("a-again", 11, "k3")):
        request = replace(make_request(seconds=1, seed=seed), idempotency_key=key)
        job = provider.submit(request)
        assert run_to_completion(provider, job.job_id).status is JobStatus.COMPLETED
        clips[label] = provider.download(job.job_id, tmp_path / f"{label}.mp4")

    digests = {label: first_frame_digest(clip, tmp_path) for label, clip in clips.items()}
    assert digests["a"] != digests["b"]
    assert digests["a"] == digests["a-again"]  # the same seed and prompt: the same look


# ============================================================== submitted_jobs: finding what a lost create made


def test_the_providers_that_can_list_are_job_finders_and_the_others_are_not(
    open_rig: OpenRig, tmp_path: Path
) -> None:
    finders = {name: isinstance(open_rig(name).provider, JobFinder) for name in ALL}

    assert finders == {"local": True, "openai": True, "fal": False, "veo": False}
    assert isinstance(EditProvider(tmp_path / "edits"), JobFinder)


def test_local_submitted_jobs_finds_the_job_of_this_idempotency_key_only(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path / "local")
    request = make_request(seconds=1)
    since = time.time()
    assert provider.submitted_jobs(request, since=since) == []

    job = provider.submit(request)
    found = provider.submitted_jobs(request, since=since)

    assert [(j.job_id, j.status, j.reference) for j in found] == [
        (job.job_id, JobStatus.QUEUED, "generation-1")
    ]
    assert found[0].created_at is not None and found[0].created_at >= since - 1
    assert not (tmp_path / "local" / "clips").exists()  # looking renders nothing
    assert provider.submitted_jobs(replace(request, idempotency_key="generation-9"), since=since) == []


def make_edit(
    source: Path, *, key: str = "edit-1", kind: GenerationKind = GenerationKind.LOOP
) -> GenerationRequest:
    return replace(make_request(seconds=1), idempotency_key=key, sources=(source,), edit=Edit(kind=kind))


def test_edit_submit_makes_the_clip_at_once_and_a_repeat_does_no_new_work(
    tmp_path: Path, clip: bytes
) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(clip)
    provider = EditProvider(tmp_path / "edits")
    request = make_edit(source)

    job = provider.submit(request)
    made = tmp_path / "edits" / "clips" / f"{job.job_id}.mp4"
    made_at = made.stat().st_mtime_ns
    again = provider.submit(request)

    assert (job.status, job.progress) == (JobStatus.COMPLETED, 100)
    assert again.job_id == job.job_id and made.stat().st_mtime_ns == made_at
    assert provider.fetch(job.job_id).status is JobStatus.COMPLETED
    assert_real_mp4(provider.download(job.job_id, tmp_path / "out" / "loop.mp4"))


def test_edit_a_media_failure_is_a_provider_error_and_leaves_no_job(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    provider = EditProvider(tmp_path / "edits")
    request = make_edit(broken, kind=GenerationKind.RECUT)

    with pytest.raises(ProviderError) as caught:
        provider.submit(request)

    assert type(caught.value) is ProviderError and not caught.value.retryable
    assert provider.submitted_jobs(request, since=0) == []


def test_edit_unknown_jobs_fail_and_cannot_be_downloaded(tmp_path: Path) -> None:
    provider = EditProvider(tmp_path / "edits")

    for job_id in ("edit-0000000000000000", "../../etc/passwd", ""):
        assert provider.fetch(job_id).status is JobStatus.FAILED
        with pytest.raises(JobNotFound):
            provider.download(job_id, tmp_path / "never.mp4")


def test_edit_submitted_jobs_finds_the_finished_edit_of_this_key(tmp_path: Path, clip: bytes) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(clip)
    provider = EditProvider(tmp_path / "edits")
    request = make_edit(source)
    assert provider.submitted_jobs(request, since=0) == []

    job = provider.submit(request)
    found = provider.submitted_jobs(request, since=0)

    assert [(j.job_id, j.status, j.reference) for j in found] == [(job.job_id, JobStatus.COMPLETED, "edit-1")]
    assert found[0].created_at is not None
    assert provider.submitted_jobs(replace(request, idempotency_key="edit-2"), since=0) == []


def test_openai_submitted_jobs_lists_every_lost_create_oldest_first_and_not_older_ones(
    open_rig: OpenRig,
) -> None:
    rig = open_rig("openai", timeout=0.5)
    provider, fake = openai_parts(rig)
    request = make_request()
    provider.submit(request)  # an older video with the same prompt, from before this generation
    stale = fake.latest_job
    fake.backdate(stale, 600)
    provider.submit(replace(request, prompt="something else entirely"))
    provider.submit(replace(request, aspect=Aspect.PORTRAIT))  # same prompt, another size
    since = time.time()
    lost = []
    for _ in range(2):
        fake.delay_next("submit", 5)
        with pytest.raises(OutcomeUnknown):
            provider.submit(request)
        lost.append(fake.latest_job)
    fake.backdate(lost[0], 20)  # created a little before our clock's `since`: inside the minute of slack

    found = provider.submitted_jobs(request, since=since)

    assert [job.job_id for job in found] == lost
    assert all(job.reference is None and job.created_at is not None for job in found)
    assert found[0].created_at is not None and found[1].created_at is not None
    assert found[0].created_at < found[1].created_at
    assert {request.query["order"][0] for request in fake.requests_to("list")} == {"desc"}


def test_openai_submitted_jobs_follows_pages_until_the_cut_off(open_rig: OpenRig) -> None:
    provider, fake = openai_parts(open_rig("openai"))
    fake.list_page_size = 2
    request = make_request()
    since = time.time()
    made = [provider.submit(request).job_id for _ in range(5)]

    found = provider.submitted_jobs(request, since=since)

    assert [job.job_id for job in found] == made
    assert len(fake.requests_to("list")) == 3
    assert ["after" in r.query for r in fake.requests_to("list")] == [False, True, True]


def test_openai_submitted_jobs_stops_paging_at_the_first_video_older_than_the_cut_off(
    open_rig: OpenRig,
) -> None:
    provider, fake = openai_parts(open_rig("openai"))
    fake.list_page_size = 1
    request = make_request()
    for _ in range(3):
        provider.submit(request)
        fake.backdate(fake.latest_job, 3600)
    since = time.time()
    recent = provider.submit(request).job_id

    assert [job.job_id for job in provider.submitted_jobs(request, since=since)] == [recent]
    assert len(fake.requests_to("list")) == 2


# ================================================================================================= OpenAI


def openai_parts(rig: Rig) -> tuple[OpenAICompatibleProvider, FakeOpenAI]:
    assert isinstance(rig.provider, OpenAICompatibleProvider) and isinstance(rig.fake, FakeOpenAI)
    return rig.provider, rig.fake


def test_openai_create_is_multipart_with_snapped_seconds_the_size_and_the_model(open_rig: OpenRig) -> None:
    provider, fake = openai_parts(open_rig("openai"))

    first = provider.submit(make_request(seconds=6, aspect=Aspect.PORTRAIT))
    provider.submit(make_request(seconds=11))

    sent = [request.form() for request in fake.requests_to("submit")]
    assert str(fake.requests_to("submit")[0].header("content-type")).startswith("multipart/form-data")
    assert [(f["seconds"].value, f["size"].value, f["model"].value) for f in sent] == [
        (b"8", b"720x1280", b"sora-2"),
        (b"12", b"1280x720", b"sora-2"),
    ]
    assert first.seconds == 8
    assert fake.requests_to("submit")[0].header("authorization") == f"Bearer {fake.api_key}"


def test_openai_poll_after_header_becomes_the_poll_hint(open_rig: OpenRig) -> None:
    provider, _ = openai_parts(open_rig("openai"))

    job = provider.submit(make_request())
    running = provider.fetch(job.job_id)

    assert job.poll_after == pytest.approx(1.0)
    assert running.poll_after == pytest.approx(1.0)


def test_openai_an_unknown_gateway_status_such_as_cancelled_is_cancelled(open_rig: OpenRig) -> None:
    provider, fake = openai_parts(open_rig("openai"))
    job = provider.submit(make_request())
    fake.set_status(job.job_id, "cancelled")

    assert provider.fetch(job.job_id).status is JobStatus.CANCELLED


def test_openai_remix_posts_json_and_starts_a_new_job(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, fake = openai_parts(open_rig("openai"))
    source = provider.submit(make_request())
    run_to_completion(provider, source.job_id)

    remix = provider.remix(source.job_id, "same shot, golden hour")

    sent = fake.requests_to("remix")[0]
    assert sent.path == f"/v1/videos/{source.job_id}/remix"
    assert sent.json() == {"prompt": "same shot, golden hour"}
    assert remix.job_id != source.job_id
    assert run_to_completion(provider, remix.job_id).status is JobStatus.COMPLETED
    assert_real_mp4(provider.download(remix.job_id, tmp_path / "remix.mp4"))


def test_openai_extend_posts_json_to_extensions(open_rig: OpenRig) -> None:
    provider, fake = openai_parts(open_rig("openai"))
    source = provider.submit(make_request(seconds=4))
    run_to_completion(provider, source.job_id)

    extended = provider.extend(source.job_id, "the robot turns to camera", seconds=5)

    sent = fake.requests_to("extend")[0]
    assert sent.header("content-type") == "application/json"
    assert sent.json() == {
        "prompt": "the robot turns to camera",
        "seconds": "4",
        "video": {"id": source.job_id},
    }
    assert extended.seconds == 8  # the stitched total


def test_openai_a_moderation_block_on_create_is_a_plain_words_error(open_rig: OpenRig) -> None:
    provider, fake = openai_parts(open_rig("openai"))
    blocked = {
        "error": {
            "message": "Your request was blocked by our moderation system.",
            "type": "invalid_request_error",
            "param": None,
            "code": "moderation_blocked",
        }
    }
    fake.fail_next("submit", 400, body=blocked)

    with pytest.raises(Moderated) as caught:
        provider.submit(make_request())

    assert not caught.value.retryable
    assert "moderation" in str(caught.value) and "Rephrase" in str(caught.value)


def test_openai_calls_emit_no_sora_deprecation_warning(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, _ = openai_parts(open_rig("openai"))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = provider.submit(make_request())
        run_to_completion(provider, job.job_id)
        provider.download(job.job_id, tmp_path / "clip.mp4")
        provider.cancel(job.job_id)

    assert [w for w in caught if issubclass(w.category, DeprecationWarning)] == []


def test_openai_works_by_polling_alone_without_webhooks(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, fake = openai_parts(open_rig("openai"))

    job = provider.submit(make_request())
    run_to_completion(provider, job.job_id)
    provider.download(job.job_id, tmp_path / "clip.mp4")

    assert {request.route for request in fake.requests} == {"submit", "poll", "download"}
    assert all(request.path.startswith("/v1/videos") for request in fake.requests)
    assert "webhook" not in fake.requests_to("submit")[0].body.decode("utf-8", "replace").lower()


def test_openai_accepts_a_plain_httpx_client(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, _ = openai_parts(open_rig("openai", timeout=5.0))

    job = provider.submit(make_request())

    assert run_to_completion(provider, job.job_id).status is JobStatus.COMPLETED
    assert_real_mp4(provider.download(job.job_id, tmp_path / "clip.mp4"))


def test_the_openai_fake_takes_the_documented_json_create_and_lists_jobs(open_rig: OpenRig) -> None:
    _, fake = openai_parts(open_rig("openai"))
    body = {
        "model": "sora-2",
        "prompt": "a lighthouse at dawn",
        "seconds": "8",
        "size": "1280x720",
        "input_reference": {"image_url": "data:image/png;base64,AAAA"},
    }

    with openai.OpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0) as client:
        created = client.post("/videos", cast_to=Video, body=body)
        listed = client.videos.list()

    assert (created.status, created.seconds) == ("queued", "8")
    assert fake.requests_to("submit")[0].json() == body
    assert [video.id for video in listed.data] == [created.id]


# ==================================================================================================== fal


def fal_parts(rig: Rig) -> tuple[FalProvider, FakeFal]:
    assert isinstance(rig.provider, FalProvider) and isinstance(rig.fake, FakeFal)
    return rig.provider, rig.fake


def test_fal_follows_the_queue_urls_from_the_submit_response(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, fake = fal_parts(open_rig("fal"))
    model = "fal-ai/kling-video/v2.1/standard/text-to-video"

    job = provider.submit(make_request())
    run_to_completion(provider, job.job_id)
    provider.download(job.job_id, tmp_path / "clip.mp4")
    provider.cancel(job.job_id)

    request_id = fake.latest_job
    assert job.job_id == f"fake-owner/fake-app/requests/{request_id}"
    assert [r.path for r in fake.requests if r.route != "download"] == [
        f"/{model}",
        *[f"/fake-owner/fake-app/requests/{request_id}/status"] * 3,
        f"/fake-owner/fake-app/requests/{request_id}",  # the result, to see that it has a video
        f"/fake-owner/fake-app/requests/{request_id}",  # the result again, for its video URL
        f"/fake-owner/fake-app/requests/{request_id}/cancel",
    ]
    assert all(r.route is not None for r in fake.requests)


def test_fal_a_restarted_process_finds_the_job_from_its_id_alone(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, fake = fal_parts(open_rig("fal"))
    job_id = provider.submit(make_request()).job_id

    with FalProvider(key=fake.api_key, base_url=fake.base_url) as restarted:
        assert run_to_completion(restarted, job_id).status is JobStatus.COMPLETED
        assert_real_mp4(restarted.download(job_id, tmp_path / "clip.mp4"))


def test_fal_submit_sends_the_key_a_snapped_duration_and_the_aspect(open_rig: OpenRig) -> None:
    provider, fake = fal_parts(open_rig("fal"))

    first = provider.submit(make_request(seconds=7, aspect=Aspect.PORTRAIT))
    provider.submit(make_request(seconds=8, aspect=Aspect.SQUARE))

    sent = fake.requests_to("submit")
    assert [r.json() for r in sent] == [
        {"prompt": make_request().prompt, "duration": "5", "aspect_ratio": "9:16"},
        {"prompt": make_request().prompt, "duration": "10", "aspect_ratio": "1:1"},
    ]
    assert {r.header("authorization") for r in sent} == {f"Key {fake.api_key}"}
    assert first.seconds == 5


def test_fal_validation_errors_are_joined_into_one_message(open_rig: OpenRig) -> None:
    provider, fake = fal_parts(open_rig("fal"))
    detail = [
        {
            "loc": ["body", "prompt"],
            "msg": "String should have at most 2500 characters",
            "type": "string_too_long",
        },
        {"loc": ["body", "duration"], "msg": "Input should be '5' or '10'", "type": "literal_error"},
    ]
    fake.fail_next("submit", 422, body={"detail": detail})

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request())

    assert type(caught.value) is ProviderError  # a bad request: neither moderation nor worth a retry
    assert not caught.value.retryable
    assert "prompt: String should have at most 2500 characters; duration: Input should be" in str(
        caught.value
    )


def test_fal_a_moderation_block_on_submit_is_a_plain_words_error(open_rig: OpenRig) -> None:
    provider, fake = fal_parts(open_rig("fal"))
    detail = [
        {"loc": ["body", "prompt"], "msg": "flagged by a content checker", "type": "content_policy_violation"}
    ]
    fake.fail_next("submit", 422, body={"detail": detail})

    with pytest.raises(Moderated) as caught:
        provider.submit(make_request())

    assert "moderation" in str(caught.value)


def test_fal_job_ref_keeps_an_unusual_layout_and_refuses_foreign_paths() -> None:
    odd = FalJobRef(response_path="o/a/requests/1", status_path="o/a/status/1", cancel_path="o/a/cancel/1")
    usual = FalJobRef(
        response_path="o/a/requests/1",
        status_path="o/a/requests/1/status",
        cancel_path="o/a/requests/1/cancel",
    )

    assert FalJobRef.decode(odd.encode()) == odd
    assert usual.encode() == "o/a/requests/1"
    assert FalJobRef.decode(usual.encode()) == usual
    assert FalJobRef.decode("https://elsewhere.example/o/a/requests/1") is None
    assert FalJobRef.decode("o/../../admin") is None
    assert FalJobRef.decode("") is None


# ==================================================================================================== Veo


def veo_parts(rig: Rig) -> tuple[VeoProvider, FakeVeo]:
    assert isinstance(rig.provider, VeoProvider) and isinstance(rig.fake, FakeVeo)
    return rig.provider, rig.fake


def test_veo_download_follows_the_redirect_with_the_key(open_rig: OpenRig, tmp_path: Path) -> None:
    provider, fake = veo_parts(open_rig("veo"))
    job = provider.submit(make_request())
    run_to_completion(provider, job.job_id)

    clip = provider.download(job.job_id, tmp_path / "clip.mp4")

    assert_real_mp4(clip)
    download, blob = fake.requests_to("download"), fake.requests_to("blob")
    assert len(download) == 1 and len(blob) == 1
    assert download[0].header("x-goog-api-key") == fake.api_key
    assert download[0].query["alt"] == ["media"]


def test_veo_submit_follows_the_gemini_shape(open_rig: OpenRig, caplog: pytest.LogCaptureFixture) -> None:
    provider, fake = veo_parts(open_rig("veo"))

    with caplog.at_level(logging.INFO, logger="bot.providers.veo"):
        job = provider.submit(make_request(seconds=5, aspect=Aspect.PORTRAIT))
        provider.submit(make_request(seconds=12, aspect=Aspect.SQUARE, variation=2))

    sent = [r.json() for r in fake.requests_to("submit")]
    assert sent[0] == {
        "instances": [{"prompt": make_request().prompt}],
        "parameters": {"aspectRatio": "9:16", "resolution": "720p", "durationSeconds": 6},
    }
    assert sent[1]["parameters"] == {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8}
    assert "1:1" in caplog.text and "16:9" in caplog.text
    assert job.job_id.startswith("models/veo-3.1-fast-generate-preview/operations/")
    assert job.seconds == 6
    assert fake.requests_to("submit")[0].header("x-goog-api-key") == fake.api_key


def test_veo_asks_for_polls_ten_seconds_apart_while_running(open_rig: OpenRig) -> None:
    provider, _ = veo_parts(open_rig("veo"))
    job = provider.submit(make_request())

    running = provider.fetch(job.job_id)

    assert running.status is JobStatus.IN_PROGRESS
    assert (running.progress, running.poll_after) == (0, 10.0)


def test_veo_rate_limit_delay_can_come_from_retry_info(open_rig: OpenRig) -> None:
    provider, fake = veo_parts(open_rig("veo"))
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [retry_info],
        }
    }
    fake.fail_next("submit", 429, body=body)

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request())

    assert caught.value.retryable
    assert caught.value.retry_after == pytest.approx(12)


def test_veo_a_cancelled_operation_reads_as_cancelled(open_rig: OpenRig) -> None:
    provider, _ = veo_parts(open_rig("veo"))
    job = provider.submit(make_request())

    provider.cancel(job.job_id)

    assert run_to_completion(provider, job.job_id).status is JobStatus.CANCELLED

"""The offline renderer: real clips of the requested length and aspect, distinct per variation, repeatable."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bot import media
from bot.domain import Aspect, Beat, Capability, GenerationRequest, JobStatus, PromptSpec
from bot.errors import JobNotFound, ProviderError
from bot.ports import VideoProvider
from bot.providers.local import LocalProvider, render_size

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
    variation: int = 1,
    seconds: int = 2,
    aspect: Aspect = Aspect.LANDSCAPE,
    key: str | None = None,
    **changes: object,
) -> GenerationRequest:
    request = GenerationRequest(
        prompt="A small red robot waters a giant sunflower on a rooftop at dusk.",
        spec=SPEC,
        seconds=seconds,
        aspect=aspect,
        variation=variation,
        idempotency_key=key or f"gen-{variation}",
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def generate(provider: LocalProvider, request: GenerationRequest, into: Path) -> Path:
    job = provider.submit(request)
    done = provider.fetch(job.job_id)
    assert done.status is JobStatus.COMPLETED, done.error
    return provider.download(job.job_id, into)


def grey_thumbnail(clip: Path, *, at: float, region: str = "iw:ih:0:0") -> bytes:
    """A 32x18 greyscale thumbnail of one frame (optionally of a crop), for comparing what a viewer sees."""
    result = subprocess.run(
        [
            media.ffmpeg_exe(), "-hide_banner", "-ss", f"{at}", "-i", str(clip), "-frames:v", "1",
            "-vf", f"crop={region},scale=32:18,format=gray", "-f", "rawvideo", "-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    return result.stdout


def mean_difference(a: bytes, b: bytes) -> float:
    assert len(a) == len(b) > 0
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    return LocalProvider(tmp_path / "local")


def test_local_provider_satisfies_the_video_provider_protocol(provider: LocalProvider) -> None:
    as_port: VideoProvider = provider

    assert as_port.name == "local"
    assert as_port.capabilities == {Capability.TEXT_TO_VIDEO, Capability.IMAGE_TO_VIDEO}
    assert as_port.cost_per_second(None) == 0.0


@pytest.mark.parametrize(
    ("aspect", "seconds"), [(Aspect.LANDSCAPE, 4), (Aspect.PORTRAIT, 2), (Aspect.SQUARE, 3)]
)
def test_clip_has_the_requested_duration_and_exact_aspect(
    provider: LocalProvider, tmp_path: Path, aspect: Aspect, seconds: int
) -> None:
    clip = generate(provider, make_request(aspect=aspect, seconds=seconds), tmp_path / "clip.mp4")

    info = media.probe(clip)
    nominal_width, nominal_height = aspect.dimensions
    assert info.duration == pytest.approx(seconds, abs=0.1)
    assert info.width * nominal_height == info.height * nominal_width
    assert (info.width, info.height) == render_size(aspect)
    assert info.video_codec == "h264"


def test_two_variations_of_one_prompt_look_different(provider: LocalProvider, tmp_path: Path) -> None:
    one = generate(provider, make_request(variation=1), tmp_path / "one.mp4")
    two = generate(provider, make_request(variation=2), tmp_path / "two.mp4")

    assert one.read_bytes() != two.read_bytes()
    first_one = media.first_frame(one, tmp_path / "one.png")
    first_two = media.first_frame(two, tmp_path / "two.png")
    assert first_one.read_bytes() != first_two.read_bytes()
    assert mean_difference(grey_thumbnail(one, at=0), grey_thumbnail(two, at=0)) > 10


def test_the_same_request_renders_byte_identical_clips_anywhere(tmp_path: Path) -> None:
    request = make_request(variation=3, seconds=1)

    first = generate(LocalProvider(tmp_path / "a"), request, tmp_path / "a.mp4")
    second = generate(LocalProvider(tmp_path / "b"), request, tmp_path / "b.mp4")

    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_the_picture_moves_over_time(provider: LocalProvider, tmp_path: Path) -> None:
    clip = generate(provider, make_request(seconds=2), tmp_path / "clip.mp4")

    first = media.first_frame(clip, tmp_path / "first.png")
    last = media.last_frame(clip, tmp_path / "last.png")
    assert first.read_bytes() != last.read_bytes()
    assert mean_difference(grey_thumbnail(clip, at=0), grey_thumbnail(clip, at=1.9)) > 3


def test_a_beat_appears_only_once_its_start_time_is_reached(provider: LocalProvider, tmp_path: Path) -> None:
    plain = generate(provider, make_request(seconds=2), tmp_path / "plain.mp4")
    storyboard = replace(SPEC, beats=(Beat(text="The flower blooms", start=1.0),))
    with_beat = generate(provider, make_request(seconds=2, spec=storyboard), tmp_path / "beat.mp4")

    bottom_left = "iw/2:ih/4:0:ih*3/4"
    before = mean_difference(
        grey_thumbnail(plain, at=0.5, region=bottom_left),
        grey_thumbnail(with_beat, at=0.5, region=bottom_left),
    )
    after = mean_difference(
        grey_thumbnail(plain, at=1.5, region=bottom_left),
        grey_thumbnail(with_beat, at=1.5, region=bottom_left),
    )
    assert before < 2
    assert after > 10


def test_a_reference_image_becomes_the_background(provider: LocalProvider, tmp_path: Path) -> None:
    red = media.RgbaImage(width=64, height=36, pixels=bytes((220, 20, 20, 255)) * (64 * 36))
    reference = media.write_png(red, tmp_path / "red.png")

    clip = generate(provider, make_request(reference_image=reference), tmp_path / "clip.mp4")

    frame = media.first_frame(clip, tmp_path / "first.png")
    average = ["-vf", "scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    pixels = subprocess.run(
        [media.ffmpeg_exe(), "-i", str(frame), *average], capture_output=True, timeout=60, check=True
    ).stdout
    red_level, green_level, blue_level = pixels
    assert red_level > green_level + 80 and red_level > blue_level + 80


def test_a_missing_reference_image_fails_the_job_with_the_reason(
    provider: LocalProvider, tmp_path: Path
) -> None:
    job = provider.submit(make_request(reference_image=tmp_path / "gone.png"))

    result = provider.fetch(job.job_id)

    assert result.status is JobStatus.FAILED
    assert result.error is not None and "gone.png" in result.error


def test_submit_queues_and_fetch_completes_with_full_progress(provider: LocalProvider) -> None:
    submitted = provider.submit(make_request(seconds=1))
    fetched = provider.fetch(submitted.job_id)

    assert submitted.status is JobStatus.QUEUED
    assert submitted.job_id.startswith("local-")
    assert (fetched.status, fetched.progress, fetched.seconds) == (JobStatus.COMPLETED, 100, 1)


def test_repeated_submit_returns_the_same_job_and_renders_once(
    provider: LocalProvider, tmp_path: Path
) -> None:
    request = make_request(seconds=1)
    job_id = provider.submit(request).job_id
    provider.fetch(job_id)
    clip = tmp_path / "local" / "clips" / f"{job_id}.mp4"
    rendered_at = clip.stat().st_mtime_ns

    again = provider.submit(request)
    provider.fetch(again.job_id)

    assert again.job_id == job_id
    assert clip.stat().st_mtime_ns == rendered_at


def test_a_different_idempotency_key_is_a_different_job(provider: LocalProvider) -> None:
    first = provider.submit(make_request(key="gen-1"))
    second = provider.submit(make_request(key="gen-2"))

    assert first.job_id != second.job_id


@pytest.mark.parametrize("job_id", ["local-0000000000000000", "../../etc/passwd", ""])
def test_an_unknown_job_fetches_as_failed_with_a_reason(provider: LocalProvider, job_id: str) -> None:
    result = provider.fetch(job_id)

    assert result.status is JobStatus.FAILED
    assert result.error is not None and "never submitted" in result.error


def test_download_before_the_clip_is_rendered_is_refused_for_now(
    provider: LocalProvider, tmp_path: Path
) -> None:
    job = provider.submit(make_request())

    with pytest.raises(ProviderError, match="no finished clip") as caught:
        provider.download(job.job_id, tmp_path / "clip.mp4")

    assert caught.value.retryable


def test_download_of_an_unknown_job_is_job_not_found(provider: LocalProvider, tmp_path: Path) -> None:
    with pytest.raises(JobNotFound):
        provider.download("local-ffffffffffffffff", tmp_path / "clip.mp4")


def test_the_seed_is_kept_with_the_job_and_sets_the_look(provider: LocalProvider, tmp_path: Path) -> None:
    plain = generate(provider, make_request(seconds=1), tmp_path / "plain.mp4")
    seeded = generate(provider, make_request(seconds=1, seed=7), tmp_path / "seeded.mp4")

    assert provider.submit(make_request(seed=7)).job_id != provider.submit(make_request()).job_id
    assert mean_difference(grey_thumbnail(plain, at=0), grey_thumbnail(seeded, at=0)) > 10


def test_download_into_a_folder_names_the_file_after_the_job(provider: LocalProvider, tmp_path: Path) -> None:
    job = provider.submit(make_request(seconds=1))
    provider.fetch(job.job_id)

    path = provider.download(job.job_id, tmp_path)

    assert path == tmp_path / f"{job.job_id}.mp4"
    assert media.probe(path).duration == pytest.approx(1.0, abs=0.1)


def test_cancel_before_rendering_forgets_the_job_and_unknown_ids_are_ignored(provider: LocalProvider) -> None:
    job = provider.submit(make_request())

    provider.cancel(job.job_id)
    provider.cancel("local-ffffffffffffffff")

    assert provider.fetch(job.job_id).status is JobStatus.FAILED


def region_pixels(clip: Path, *, at: float, region: str) -> bytes:
    """The grey pixels of one frame's crop at full resolution, decoded by the real ffmpeg."""
    return subprocess.run(
        [
            media.ffmpeg_exe(), "-hide_banner", "-ss", f"{at}", "-i", str(clip), "-frames:v", "1",
            "-vf", f"crop={region},format=gray", "-f", "rawvideo", "-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout  # fmt: skip


def test_a_subject_in_any_script_is_drawn_in_its_own_glyphs(provider: LocalProvider, tmp_path: Path) -> None:
    subjects = {
        "japanese": "雨の路地を走る小さなロボット",
        "cyrillic": "Маленький робот под дождём",
        "questions": "?" * 14,
    }
    title = (
        "iw*3/4:ih/5:0:0"  # the subject's box, top left; the disc and its colours are the same in all three
    )
    pixels = {
        name: region_pixels(
            generate(provider, make_request(spec=replace(SPEC, subject=subject)), tmp_path / f"{name}.mp4"),
            at=0,
            region=title,
        )
        for name, subject in subjects.items()
    }

    assert mean_difference(pixels["japanese"], pixels["questions"]) > 5
    assert mean_difference(pixels["cyrillic"], pixels["questions"]) > 5
    assert mean_difference(pixels["japanese"], pixels["cyrillic"]) > 5


def test_a_beat_in_another_script_is_drawn_too(provider: LocalProvider, tmp_path: Path) -> None:
    beats = {"arabic": "الروبوت يتوقف عند البركة", "latin": "The robot stops at a puddle"}
    bottom = "iw*3/4:ih/5:0:ih*3/4"
    pixels = {
        name: region_pixels(
            generate(
                provider,
                make_request(seconds=1, spec=replace(SPEC, beats=(Beat(text=text, start=0.0),))),
                tmp_path / f"{name}.mp4",
            ),
            at=0.5,
            region=bottom,
        )
        for name, text in beats.items()
    }

    assert mean_difference(pixels["arabic"], pixels["latin"]) > 5

"""A clip is a clip: whatever a provider sends is posted only if it is a playable video of a sane length and size;
anything else fails the variation, saying what the provider sent."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Core, make_core
from provider_fakes import FakeFal, FakeOpenAI, make_clip
from test_lifecycle import Build, generations, on_fal, on_openai, run, start, uploads

from bot import media
from bot.assets import LocalAssetStore, verify_clip
from bot.domain import Aspect
from bot.errors import NotAClip
from bot.ports import VideoProvider
from bot.providers.edit import EditProvider
from bot.providers.openai_compat import OpenAICompatibleProvider
from bot.providers.registry import Providers
from bot.providers.transfer import write_atomically
from devkit.instant import instant_clip

HTML = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>"
    + b"x" * 2000
    + b"</body></html>"
)
MB = 1 << 20


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    """Services over one hosted provider's fake; closed before the fake stops."""
    made: list[Core] = []

    def make(provider: VideoProvider) -> Core:
        providers = Providers(
            available={provider.name: provider, "edit": EditProvider(tmp_path / "edits")},
            default=provider.name,
        )
        made.append(make_core(tmp_path, providers=providers))
        return made[-1]

    yield make
    for core in made:
        core.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


def written(tmp_path: Path, data: bytes, name: str = "download.mp4") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refusal(path: Path, *, asked: float = 4, max_bytes: int = 100 * MB) -> str:
    with pytest.raises(NotAClip) as caught:
        verify_clip(path, asked_seconds=asked, max_bytes=max_bytes)
    assert not caught.value.retryable
    return str(caught.value)


# --- the check --------------------------------------------------------------------------------------


def test_a_real_clip_of_the_asked_length_passes_and_reports_what_it_is(tmp_path: Path) -> None:
    info = verify_clip(instant_clip(Aspect.LANDSCAPE, 4), asked_seconds=4, max_bytes=100 * MB)
    assert info.duration == pytest.approx(4, abs=0.1) and info.video_codec == "h264"


def test_an_html_page_is_named_with_its_size(tmp_path: Path) -> None:
    message = refusal(written(tmp_path, HTML))
    assert message.startswith("The provider sent an HTML page (2 KB), not a video")


def test_an_empty_body_json_text_and_an_image_are_each_named(tmp_path: Path) -> None:
    assert "an empty file" in refusal(written(tmp_path, b"", "empty.mp4"))
    assert "a JSON document" in refusal(written(tmp_path, b'{"error": "nope"}', "json.mp4"))
    assert "a text file" in refusal(written(tmp_path, b"Service Unavailable\n", "text.mp4"))
    png = media.write_png(media.RgbaImage(2, 2, b"\xff" * 16), tmp_path / "frame.png").read_bytes()
    assert "a PNG image" in refusal(written(tmp_path, png, "png.mp4"))


def test_a_clip_far_longer_than_asked_or_too_large_is_refused(tmp_path: Path) -> None:
    four_seconds = instant_clip(Aspect.LANDSCAPE, 4)
    assert "a 4.0 s video for a 1 s request" in refusal(four_seconds, asked=1)
    verify_clip(four_seconds, asked_seconds=3, max_bytes=100 * MB)  # a provider rounding up is fine
    assert "more than the 1 KB allowed (SORA_BOT_MAX_CLIP_MB)" in refusal(four_seconds, max_bytes=1024)


def test_a_video_cut_short_is_refused_as_one_that_does_not_play(tmp_path: Path) -> None:
    faststart = tmp_path / "faststart.mp4"  # the index first, so the header still probes once the body is cut
    source = str(instant_clip(Aspect.LANDSCAPE, 4))
    remux = ["-c", "copy", "-movflags", "+faststart", str(faststart)]
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", source, *remux], check=True)
    data = faststart.read_bytes()
    assert "does not play" in refusal(written(tmp_path, data[: len(data) // 3]))


def test_a_download_stops_at_the_cap_and_leaves_no_file(tmp_path: Path) -> None:
    served: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            served.append(1)
            yield b"\0" * MB

    target = tmp_path / "clip.mp4"
    with pytest.raises(NotAClip, match="more than 3 MB"):
        write_atomically(endless(), target, max_bytes=3 * MB)
    assert len(served) == 4, "reading stopped at the first chunk past the cap"
    assert list(tmp_path.iterdir()) == []


# --- through the lifecycle, at every provider ----------------------------------------------------------


def failed_with(core: Core, round_id: int) -> list[str]:
    rows = generations(core, round_id)
    assert [g.status for g in rows] == ["failed"] * len(rows)
    assert all(g.asset_path is None for g in rows)
    return [g.error or "" for g in rows]


def test_an_html_page_from_the_gateway_fails_the_variation_and_nothing_is_posted(build: Build) -> None:
    with FakeOpenAI(clip=HTML, polls_to_complete=2) as fake:
        core = on_openai(build, fake)
        round_id = start(core, variations=2)
        run(core)
        errors = failed_with(core, round_id)
        assert all(e.startswith("The provider sent an HTML page (2 KB), not a video") for e in errors)
        assert uploads(core) == []
        assets = core.services.assets
        assert isinstance(assets, LocalAssetStore)
        assert list(assets.root.rglob("*.mp4")) == [], "the refused downloads are gone"
        core.close()


def test_an_empty_body_from_fal_fails_the_variation_as_an_empty_file(build: Build) -> None:
    with FakeFal(clip=b"", polls_to_complete=2) as fake:
        core = on_fal(build, fake)
        round_id = start(core, variations=2)
        run(core)
        assert all("an empty file" in e for e in failed_with(core, round_id))
        assert uploads(core) == []
        core.close()


def test_an_oversized_body_is_cut_off_at_the_cap_and_fails_the_variation(build: Build, clip: bytes) -> None:
    with FakeOpenAI(clip=clip + b"\0" * (2 * MB), polls_to_complete=2) as fake:
        provider = OpenAICompatibleProvider(
            api_key=fake.api_key, base_url=fake.base_url, timeout=10, max_clip_bytes=1 * MB
        )
        core = build(provider)
        round_id = start(core, variations=2)
        run(core)
        assert all("more than 1 MB" in e and "SORA_BOT_MAX_CLIP_MB" in e for e in failed_with(core, round_id))
        assert uploads(core) == []
        core.close()

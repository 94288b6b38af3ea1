"""ffmpeg operations on real (tiny) clips made with lavfi; each test runs the pinned ffmpeg for real."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from bot import media


def make_clip(path: Path, *, seconds: float, size: str, fps: int, audio: bool) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest"]
    return media.run_ffmpeg(args, path, what="make a test clip")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def frame_count(path: Path) -> int:
    result = subprocess.run(
        [media.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    counts = [line for line in result.stderr.decode().replace("\r", "\n").splitlines() if "frame=" in line]
    return int(counts[-1].split("frame=")[1].split()[0])


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2 s landscape clip with sound and a 1 s portrait clip without, shared by the module."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "talkie": make_clip(folder / "talkie.mp4", seconds=2, size="320x180", fps=24, audio=True),
        "silent": make_clip(folder / "silent.mp4", seconds=1, size="180x320", fps=30, audio=False),
    }


def test_probe_reads_duration_size_codec_audio_and_frame_rate(clips: dict[str, Path]) -> None:
    talkie = media.probe(clips["talkie"])
    silent = media.probe(clips["silent"])

    assert talkie.duration == pytest.approx(2.0, abs=0.05)
    assert (talkie.width, talkie.height, talkie.video_codec, talkie.has_audio, talkie.fps) == (
        320, 180, "h264", True, 24.0
    )  # fmt: skip
    assert (silent.width, silent.height, silent.has_audio, silent.fps) == (180, 320, False, 30.0)


def test_probe_on_a_text_file_raises_media_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video at all\n")

    with pytest.raises(media.MediaError, match="not a video"):
        media.probe(notes)


def test_probe_on_a_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(media.MediaError, match="no such file"):
        media.probe(tmp_path / "gone.mp4")


def test_trim_cuts_exactly_between_the_given_seconds(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.trim(clips["talkie"], tmp_path / "cut.mp4", start=0.5, end=1.75)

    info = media.probe(out)
    assert frame_count(out) == 30  # 1.25 s at 24 fps: no keyframe snapping
    assert info.duration == pytest.approx(1.25, abs=0.05)
    assert info.has_audio
    assert info.video_codec == "h264"


@pytest.mark.parametrize(
    ("start", "end", "complaint"),
    [
        (1.5, 1.0, "must end after it starts"),
        (1.0, 1.0, "must end after it starts"),
        (0.5, 3.0, "only 2.00 s long"),
        (-0.5, 1.0, "before 0 s"),
    ],
)
def test_trim_refuses_impossible_ranges_in_plain_words(
    clips: dict[str, Path], tmp_path: Path, start: float, end: float, complaint: str
) -> None:
    with pytest.raises(media.MediaError, match=complaint):
        media.trim(clips["talkie"], tmp_path / "cut.mp4", start=start, end=end)
    assert not (tmp_path / "cut.mp4").exists()


def test_concat_lasts_as_long_as_its_parts_and_fills_missing_audio(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = media.concat([clips["talkie"], clips["silent"], clips["talkie"]], tmp_path / "joined.mp4")

    info = media.probe(out)
    assert info.duration == pytest.approx(5.0, abs=0.1)
    assert (info.width, info.height, info.fps) == (320, 180, 24.0)
    assert info.has_audio


def test_concat_of_silent_clips_has_no_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.concat([clips["silent"], clips["silent"]], tmp_path / "joined.mp4")

    info = media.probe(out)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert not info.has_audio


def test_pingpong_loop_plays_forward_then_backward(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.loop(clips["talkie"], tmp_path / "loop.mp4", mode="pingpong")

    info = media.probe(out)
    assert info.duration == pytest.approx(4.0, abs=0.1)
    assert info.has_audio


def test_crossfade_loop_is_shorter_by_the_fade(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.loop(clips["talkie"], tmp_path / "loop.mp4", mode="crossfade")

    # The fade is a quarter of a 2 s clip (0.5 s), folded back into its start.
    assert media.probe(out).duration == pytest.approx(1.5, abs=0.1)


def test_crossfade_overlaps_two_clips_by_the_given_seconds(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.crossfade(clips["talkie"], clips["silent"], tmp_path / "blend.mp4", seconds=0.5)

    info = media.probe(out)
    assert info.duration == pytest.approx(2.5, abs=0.1)
    assert (info.width, info.height) == (320, 180)


def test_crossfade_longer_than_a_clip_is_refused(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(media.MediaError, match="needs both clips longer"):
        media.crossfade(clips["talkie"], clips["silent"], tmp_path / "blend.mp4", seconds=1.0)


def test_first_and_last_frames_are_different_pngs_of_the_clip_size(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    first = media.first_frame(clips["talkie"], tmp_path / "first.png")
    last = media.last_frame(clips["talkie"], tmp_path / "last.png")

    assert png_size(first) == png_size(last) == (320, 180)
    assert first.read_bytes() != last.read_bytes()


def test_contact_sheet_is_a_png_that_widens_with_each_clip_and_wraps_after_four(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    one = media.contact_sheet([clips["talkie"]], tmp_path / "one.png", labels=["#1"])
    three = media.contact_sheet([clips["talkie"], clips["silent"], clips["talkie"]], tmp_path / "three.png")
    six = media.contact_sheet(
        [clips["talkie"]] * 6, tmp_path / "six.png", labels=[f"#{i}" for i in range(1, 7)]
    )

    (one_w, one_h), (three_w, three_h), (_, six_h) = png_size(one), png_size(three), png_size(six)
    assert 2.5 * one_w < three_w < 3.5 * one_w
    assert one_h == three_h
    assert six_h > 1.8 * one_h  # two rows


def test_contact_sheet_needs_one_label_per_clip(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(media.MediaError, match="2 labels for 1 clips"):
        media.contact_sheet([clips["talkie"]], tmp_path / "sheet.png", labels=["#1", "#2"])


def test_a_failed_ffmpeg_run_says_why_and_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises(media.MediaError, match="could not make a broken clip"):
        media.run_ffmpeg(
            ["-f", "lavfi", "-i", "nosuchsource=d=1"], tmp_path / "out.mp4", what="make a broken clip"
        )

    assert list(tmp_path.iterdir()) == []


def test_printable_upper_cases_strips_accents_and_marks_unknown_characters() -> None:
    assert media.printable("Café — “déjà vu” #2 ☕") == 'CAFE - "DEJA VU" #2 ?'


def test_rendered_text_grows_with_scale_and_line_count_and_ffmpeg_reads_it(tmp_path: Path) -> None:
    small = media.render_text(["#1"], scale=1)
    big = media.render_text(["#1", "TWO LINES"], scale=3)

    png = media.write_png(big, tmp_path / "text.png")

    assert (big.width, big.height) == media.text_size(["#1", "TWO LINES"], scale=3)
    assert big.width > 3 * small.width and big.height > 3 * small.height
    assert (media.probe(png).width, media.probe(png).height) == (big.width, big.height)

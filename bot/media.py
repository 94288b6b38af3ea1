"""Owns every ffmpeg operation: probe, trim, frames, concat, loop, crossfade, contact sheet, text images."""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import struct
import subprocess
import tempfile
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import imageio_ffmpeg

from bot.errors import SoraBotError

LoopMode = Literal["pingpong", "crossfade"]

# Generous: a 20 s 1080p crossfade takes ~10 s on two cores; a hung ffmpeg must not hold a worker forever.
_TIMEOUT_SECONDS = 300.0
_STDERR_LINES = 4
# Durations printed by `ffmpeg -i` have centisecond resolution, so ranges are checked with this slack.
_DURATION_SLACK = 0.05
_SHEET_CELL_HEIGHT = 240
_SHEET_GAP = 8
_SHEET_COLUMNS = 4
_SHEET_BACKGROUND = "0x1e1e1e"

# Every video output: H.264 that plays inline in Slack and browsers (yuv420p, moov atom first).
_VIDEO_ENCODE = (
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
    "-pix_fmt", "yuv420p", "-movflags", "+faststart",
)  # fmt: skip
_AUDIO_ENCODE = ("-c:a", "aac", "-b:a", "128k")
# Same inputs → same bytes; makes outputs cacheable and tests able to compare them.
_REPRODUCIBLE = (
    "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
)  # fmt: skip
# ffmpeg's `reverse` holds every decoded frame in memory; past this a ping-pong could exhaust a small host.
_REVERSE_BUFFER_LIMIT = 1 << 30


class MediaError(SoraBotError):
    """An ffmpeg operation failed or was asked for something impossible; the message is plain words."""


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` learns about a clip (or an image, whose duration is 0)."""

    duration: float
    width: int
    height: int
    video_codec: str
    has_audio: bool
    fps: float


@dataclass(frozen=True)
class RgbaImage:
    """A small straight-alpha RGBA bitmap built in Python (text, shapes) for ffmpeg to overlay."""

    width: int
    height: int
    pixels: bytes

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or len(self.pixels) != self.width * self.height * 4:
            raise ValueError(
                f"RgbaImage {self.width}x{self.height} needs {self.width * self.height * 4} bytes"
            )


def image_kind(data: bytes) -> str | None:
    """ "png", "jpeg" or "webp" from a file's first bytes (what providers take as a first frame), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def ffmpeg_exe() -> str:
    """The pinned ffmpeg binary shipped in the imageio-ffmpeg wheel (no system ffmpeg needed)."""
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as err:
        raise MediaError(f"ffmpeg is not available: {err}") from err


# ---------------------------------------------------------------------------------------------- probing


_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (.*)$", re.MULTILINE)
# The size follows ", " — never the codec tag (`avc1 / 0x31637661`), which also looks like NxM.
_SIZE_RE = re.compile(r", (\d{1,5})x(\d{1,5})(?=[ ,]|$)")
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (fps|tbr)")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")


def probe(path: Path) -> MediaInfo:
    """Read duration, size, codec, audio presence and frame rate from `ffmpeg -i` (there is no ffprobe)."""
    path = _existing(path)
    # `ffmpeg -i` with no output always exits non-zero; the input report on stderr is what we want.
    result = _ffmpeg(["-i", str(path)], check=False)
    stderr = result.stderr.decode("utf-8", "replace")
    if "Error opening input" in stderr or "Input #0" not in stderr:
        raise MediaError(f"{path.name} is not a video or image ffmpeg can read: {_tail(stderr)}")
    video = next(
        (
            m.group(2)
            for m in _STREAM_RE.finditer(stderr)
            if m.group(1) == "Video" and "attached pic" not in m.group(2)
        ),
        None,
    )
    if video is None:
        raise MediaError(f"{path.name} has no video stream")
    size = _SIZE_RE.search(video)
    if size is None:
        raise MediaError(f"could not read the frame size of {path.name}")
    width, height = int(size.group(1)), int(size.group(2))
    rotation = _ROTATION_RE.search(stderr)
    # Phones store portrait video as landscape plus a rotation; players (and we) show it rotated.
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    duration_match = _DURATION_RE.search(stderr)
    duration = 0.0
    if duration_match:
        hours, minutes, seconds = duration_match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return MediaInfo(
        duration=duration,
        width=width,
        height=height,
        video_codec=video.split(None, 1)[0].rstrip(","),
        has_audio=any(m.group(1) == "Audio" for m in _STREAM_RE.finditer(stderr)),
        fps=_frame_rate(video),
    )


def check_decodes(path: Path) -> None:
    """Decode the video stream's keyframes to the end: a header that probes fine can front a body that does
    not play (cut short, corrupt). Keyframes only keeps it to a fraction of a full decode."""
    path = _existing(path)
    args = [
        "-v",
        "error",
        "-xerror",
        "-skip_frame",
        "nokey",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
    ]
    result = _ffmpeg(args, check=False)
    if result.returncode != 0:
        raise MediaError(f"{path.name} cannot be decoded: {_tail(result.stderr.decode('utf-8', 'replace'))}")


def _frame_rate(stream_line: str) -> float:
    rates = {
        kind: float(value) * (1000 if kilo else 1) for value, kilo, kind in _RATE_RE.findall(stream_line)
    }
    return rates.get("fps") or rates.get("tbr") or 0.0


# ---------------------------------------------------------------------------------------- clip editing


def trim(src: Path, out: Path, *, start: float, end: float) -> Path:
    """Cut `start`–`end` seconds exactly: re-encoded, as stream copy snaps to keyframes (a GOP off)."""
    info = probe(src)
    if start < 0:
        raise MediaError(f"a trim cannot start before 0 s (got {start:g} s)")
    if start >= end:
        raise MediaError(f"a trim must end after it starts (got {start:g}–{end:g} s)")
    if end > info.duration + _DURATION_SLACK:
        raise MediaError(
            f"the trim ends at {end:g} s but {Path(src).name} is only {info.duration:.2f} s long"
        )
    end = min(end, info.duration)
    args = ["-ss", _sec(start), "-i", str(src), "-t", _sec(end - start), "-map", "0:v:0"]
    if info.has_audio:
        args += ["-map", "0:a:0", *_AUDIO_ENCODE]
    return _encode(args, out, what=f"trim {Path(src).name}")


def concat(clips: Sequence[Path], out: Path) -> Path:
    """Join clips end to end; re-encoded through the concat filter so sizes, rates and audio may differ.

    Everything is fitted (letterboxed) to the first clip's size and frame rate; clips without audio get
    silence when any clip has audio.
    """
    if not clips:
        raise MediaError("concat needs at least one clip")
    infos = [probe(clip) for clip in clips]
    width, height, fps = infos[0].width, infos[0].height, _output_fps(infos[0])
    with_audio = any(info.has_audio for info in infos)
    parts: list[str] = []
    labels: list[str] = []
    for i, info in enumerate(infos):
        parts.append(f"[{i}:v:0]{_fit(width, height, fps)}[v{i}]")
        labels.append(f"[v{i}]")
        if with_audio:
            parts.append(_audio_or_silence(i, info))
            labels.append(f"[a{i}]")
    parts.append(
        f"{''.join(labels)}concat=n={len(infos)}:v=1:a={int(with_audio)}[v]" + ("[a]" if with_audio else "")
    )
    args = [arg for clip in clips for arg in ("-i", str(clip))]
    args += ["-filter_complex", ";".join(parts), "-map", "[v]"]
    if with_audio:
        args += ["-map", "[a]", *_AUDIO_ENCODE]
    return _encode(args, out, what=f"join {len(clips)} clips")


def loop(src: Path, out: Path, *, mode: LoopMode = "pingpong") -> Path:
    """Make a clip that loops without a visible jump.

    pingpong: forward then backward (about twice as long; audio is mirrored too). crossfade: the last
    second (a quarter of the clip at most) dissolves into the start, so the result is that much shorter.
    """
    info = probe(src)
    fps = _output_fps(info)
    if info.duration <= 0:
        raise MediaError(f"{Path(src).name} has no duration to loop")
    if mode == "pingpong":
        buffered = info.duration * fps * info.width * info.height * 3 // 2
        if buffered > _REVERSE_BUFFER_LIMIT:
            raise MediaError(
                f"{Path(src).name} is too long to ping-pong ({info.duration:.1f} s at {info.width}x{info.height}); "
                "use a crossfade loop or trim it first"
            )
        # Dropping the reversed copy's first frame avoids showing the turning frame twice.
        frame = 1.0 / fps
        graph = (
            f"[0:v:0]{_fit(info.width, info.height, fps)},split[f][b];"
            "[b]reverse,trim=start_frame=1,setpts=PTS-STARTPTS[r]"
        )
        if info.has_audio:
            graph += (
                f";[0:a:0]{_AUDIO_FORMAT},asplit[fa][ba];"
                f"[ba]areverse,atrim=start={_sec(frame)},asetpts=PTS-STARTPTS[ra];"
                "[f][fa][r][ra]concat=n=2:v=1:a=1[v][a]"
            )
        else:
            graph += ";[f][r]concat=n=2:v=1:a=0[v]"
    elif mode == "crossfade":
        fade = min(1.0, info.duration / 4)
        body = info.duration - fade
        graph = (
            f"[0:v:0]{_fit(info.width, info.height, fps)},split[va][vb];"
            f"[va]trim=start={_sec(body)},setpts=PTS-STARTPTS[tail];"
            f"[vb]trim=end={_sec(body)},setpts=PTS-STARTPTS[head];"
            f"[tail][head]xfade=transition=fade:duration={_sec(fade)}:offset=0[v]"
        )
        if info.has_audio:
            graph += (
                f";[0:a:0]{_AUDIO_FORMAT},asplit[aa][ab];"
                f"[aa]atrim=start={_sec(body)},asetpts=PTS-STARTPTS[atail];"
                f"[ab]atrim=end={_sec(body)},asetpts=PTS-STARTPTS[ahead];"
                f"[atail][ahead]acrossfade=d={_sec(fade)}[a]"
            )
    else:
        raise MediaError(f"unknown loop mode {mode!r}; use pingpong or crossfade")
    args = ["-i", str(src), "-filter_complex", graph, "-map", "[v]"]
    if info.has_audio:
        args += ["-map", "[a]", *_AUDIO_ENCODE]
    return _encode(args, out, what=f"loop {Path(src).name}")


def crossfade(a: Path, b: Path, out: Path, *, seconds: float = 1.0) -> Path:
    """Dissolve the end of `a` into the start of `b`; the result is `seconds` shorter than both together."""
    info_a, info_b = probe(a), probe(b)
    if seconds <= 0:
        raise MediaError(f"a crossfade needs a positive length (got {seconds:g} s)")
    if seconds >= min(info_a.duration, info_b.duration):
        raise MediaError(
            f"a {seconds:g} s crossfade needs both clips longer than that "
            f"({Path(a).name} is {info_a.duration:.2f} s, {Path(b).name} is {info_b.duration:.2f} s)"
        )
    width, height, fps = info_a.width, info_a.height, _output_fps(info_a)
    with_audio = info_a.has_audio or info_b.has_audio
    parts = [
        f"[0:v:0]{_fit(width, height, fps)}[va]",
        f"[1:v:0]{_fit(width, height, fps)}[vb]",
        f"[va][vb]xfade=transition=fade:duration={_sec(seconds)}:offset={_sec(info_a.duration - seconds)}[v]",
    ]
    if with_audio:
        parts += [
            _audio_or_silence(0, info_a),
            _audio_or_silence(1, info_b),
            f"[a0][a1]acrossfade=d={_sec(seconds)}[a]",
        ]
    args = ["-i", str(a), "-i", str(b), "-filter_complex", ";".join(parts), "-map", "[v]"]
    if with_audio:
        args += ["-map", "[a]", *_AUDIO_ENCODE]
    return _encode(args, out, what=f"crossfade {Path(a).name} into {Path(b).name}")


# ---------------------------------------------------------------------------------------------- frames


def first_frame(src: Path, out_png: Path) -> Path:
    """The clip's first frame as a PNG (the reference image for a remix or a blend's end)."""
    _existing(src)
    args = ["-i", str(src), "-map", "0:v:0", "-frames:v", "1", "-update", "1"]
    return run_ffmpeg(args, out_png, what=f"read the first frame of {Path(src).name}")


def last_frame(src: Path, out_png: Path) -> Path:
    """The clip's last frame as a PNG (the start image for an extension or a blend)."""
    _existing(src)
    # Seeking near the end decodes only the last GOP; `-update 1` keeps overwriting, so the last frame wins.
    tail = ["-sseof", "-0.5", "-i", str(src), "-map", "0:v:0", "-update", "1"]
    try:
        return run_ffmpeg(tail, out_png, what=f"read the last frame of {Path(src).name}")
    except MediaError:
        # Very low frame rates can leave no frame in the last half second; decode the whole clip instead.
        whole = ["-i", str(src), "-map", "0:v:0", "-update", "1"]
        return run_ffmpeg(whole, out_png, what=f"read the last frame of {Path(src).name}")


def contact_sheet(clips: Sequence[Path], out_png: Path, *, labels: Sequence[str] | None = None) -> Path:
    """One PNG with the middle frame of each clip in a grid (up to four per row), each labelled.

    Clips of any aspect are scaled to a common height and centred in equal cells. `labels` defaults to
    "#1", "#2", ….
    """
    if not clips:
        raise MediaError("a contact sheet needs at least one clip")
    names = list(labels) if labels is not None else [f"#{i}" for i in range(1, len(clips) + 1)]
    if len(names) != len(clips):
        raise MediaError(f"got {len(names)} labels for {len(clips)} clips")
    infos = [probe(clip) for clip in clips]
    cell_h = _SHEET_CELL_HEIGHT
    widths = [_even(info.width * cell_h / info.height) for info in infos]
    cell_w = max(widths)
    columns = min(len(clips), _SHEET_COLUMNS)
    gap = _SHEET_GAP

    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sheet-", dir=Path(out_png).parent) as tmp:
        args: list[str] = []
        for clip, info in zip(clips, infos, strict=True):
            # Input seeking decodes one GOP per clip instead of everything up to the middle.
            if info.duration > 0:
                args += ["-ss", _sec(info.duration / 2)]
            args += ["-i", str(clip)]
        for i, name in enumerate(names):
            # Near-opaque yellow on black: labels must stay readable over any frame, text included.
            label = render_text([name], scale=3, color=(255, 214, 0, 255), background=(0, 0, 0, 225))
            label_png = write_png(label, Path(tmp) / f"label{i}.png")
            args += ["-i", str(label_png)]
        parts = [
            f"[{i}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS,scale={w}:{cell_h},setsar=1,"
            f"pad={cell_w}:{cell_h}:(ow-iw)/2:0:color={_SHEET_BACKGROUND},format=rgb24[c{i}]"
            for i, w in enumerate(widths)
        ]
        positions = [
            ((i % columns) * (cell_w + gap), (i // columns) * (cell_h + gap)) for i in range(len(clips))
        ]
        if len(clips) == 1:
            parts.append("[c0]null[grid]")
        else:
            layout = "|".join(f"{x}_{y}" for x, y in positions)
            cells = "".join(f"[c{i}]" for i in range(len(clips)))
            parts.append(f"{cells}xstack=inputs={len(clips)}:layout={layout}:fill={_SHEET_BACKGROUND}[grid]")
        parts.append(f"[grid]pad=iw+{2 * gap}:ih+{2 * gap}:{gap}:{gap}:color={_SHEET_BACKGROUND}[s0]")
        for i, (x, y) in enumerate(positions):
            label_input = len(clips) + i
            # Labels sit on the picture itself, not in a narrow clip's empty margin.
            inset = (cell_w - widths[i]) // 2 + 6
            parts.append(f"[s{i}][{label_input}:v]overlay={x + gap + inset}:{y + gap + 6}[s{i + 1}]")
        args += [
            "-filter_complex",
            ";".join(parts),
            "-map",
            f"[s{len(clips)}]",
            "-frames:v",
            "1",
            "-update",
            "1",
        ]
        return run_ffmpeg(args, out_png, what=f"make a contact sheet of {len(clips)} clips")


# ------------------------------------------------------------------------------------- text and images

# A 5x7 pixel font: one row per number, the high bit (0x10) is the leftmost pixel. Drawing text ourselves
# avoids ffmpeg's drawtext, which needs fontconfig and an installed font that a fresh machine lacks.
_FONT: dict[str, tuple[int, ...]] = {
    " ": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    ".": (0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C),
    ",": (0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08),
    ":": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00),
    ";": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08),
    "!": (0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04),
    "-": (0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00),
    "+": (0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00),
    "=": (0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00),
    "_": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F),
    "#": (0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A),
    "'": (0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00),
    '"': (0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00),
    "/": (0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "&": (0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "*": (0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00),
    "@": (0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E),
    "$": (0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04),
}
_GLYPH_W, _GLYPH_H = 5, 7
_TYPOGRAPHY = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})


def printable(text: str) -> str:
    """`text` as the built-in font can draw it: upper case, accents stripped, anything else as '?'."""
    flat = unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))
    flat = "".join(ch for ch in flat if not unicodedata.combining(ch)).upper()
    return "".join(ch if ch in _FONT else " " if ch.isspace() else "?" for ch in flat)


def text_size(lines: Sequence[str], *, scale: int) -> tuple[int, int]:
    """The (width, height) `render_text` would produce, for layout before rendering."""
    pad = 2 * scale
    longest = max((len(line) for line in lines), default=0)
    width = max(longest * (_GLYPH_W + 1) * scale - scale, 0) + 2 * pad
    height = max(len(lines) * (_GLYPH_H + 2) * scale - 2 * scale, 0) + 2 * pad
    return width, height


def render_text(
    lines: Sequence[str],
    *,
    scale: int,
    color: tuple[int, int, int, int] = (255, 255, 255, 255),
    background: tuple[int, int, int, int] = (0, 0, 0, 150),
) -> RgbaImage:
    """Draw lines of text with the built-in 5x7 font, each pixel `scale`×`scale`, on a padded box."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    lines = [printable(line) for line in lines] or [""]
    width, height = text_size(lines, scale=scale)
    pixels = bytearray(bytes(background) * (width * height))
    ink = bytes(color) * scale
    pad = 2 * scale
    for row_index, line in enumerate(lines):
        top = pad + row_index * (_GLYPH_H + 2) * scale
        for col_index, char in enumerate(line):
            left = pad + col_index * (_GLYPH_W + 1) * scale
            for gy, bits in enumerate(_FONT[char]):
                for gx in range(_GLYPH_W):
                    if bits & (0x10 >> gx):
                        x = left + gx * scale
                        for y in range(top + gy * scale, top + (gy + 1) * scale):
                            start = (y * width + x) * 4
                            pixels[start : start + 4 * scale] = ink
    return RgbaImage(width=width, height=height, pixels=bytes(pixels))


def write_png(image: RgbaImage, path: Path) -> Path:
    """Encode an RGBA bitmap as PNG with the standard library alone."""
    stride = image.width * 4
    raw = b"".join(b"\x00" + image.pixels[row * stride : (row + 1) * stride] for row in range(image.height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 6, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def run_ffmpeg(args: Sequence[str], out: Path, *, what: str) -> Path:
    """Run ffmpeg with `args` into `out`, via a temporary sibling renamed into place (never half a file).

    `what` completes "ffmpeg could not …" in the error message.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _partial(out) as tmp:
        _ffmpeg([*args, str(tmp)], what=what)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise MediaError(f"ffmpeg could not {what}: it produced an empty file")
    return out


# ------------------------------------------------------------------------------------------- internals

_AUDIO_FORMAT = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo"


def _fit(width: int, height: int, fps: float) -> str:
    """Filters that bring any video stream to one size, frame rate and pixel format (for joins and fades)."""
    return (
        f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps:g},format=yuv420p"
    )


def _audio_or_silence(index: int, info: MediaInfo) -> str:
    """Input `index`'s audio, padded or cut to its duration so later parts stay in sync; silence if none."""
    if info.has_audio:
        return (
            f"[{index}:a:0]{_AUDIO_FORMAT},apad,atrim=duration={_sec(info.duration)},"
            f"asetpts=PTS-STARTPTS[a{index}]"
        )
    return f"anullsrc=r=48000:cl=stereo,atrim=duration={_sec(info.duration)}[a{index}]"


def _output_fps(info: MediaInfo) -> float:
    # Images and odd containers report no (or absurd) rates; 24 fps is what the local renderer uses.
    return info.fps if 1 <= info.fps <= 120 else 24.0


def _encode(args: list[str], out: Path, *, what: str) -> Path:
    return run_ffmpeg([*args, *_VIDEO_ENCODE, *_REPRODUCIBLE], out, what=what)


@contextlib.contextmanager
def _partial(out: Path) -> Iterator[Path]:
    # Same directory (so the rename is atomic) and same suffix (ffmpeg picks the format from it). ffmpeg
    # creates the file itself, so it gets the usual permissions rather than mkstemp's owner-only ones.
    tmp = out.with_name(f".{out.stem}.{secrets.token_hex(6)}.partial{out.suffix}")
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _ffmpeg(
    args: list[str], *, what: str = "run", check: bool = True, timeout: float = _TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[bytes]:
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise MediaError(f"ffmpeg took longer than {timeout:g} s to {what} and was stopped") from err
    except OSError as err:
        raise MediaError(f"could not start ffmpeg to {what}: {err}") from err
    if check and result.returncode != 0:
        raise MediaError(f"ffmpeg could not {what}: {_tail(result.stderr.decode('utf-8', 'replace'))}")
    return result


def _tail(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return " / ".join(lines[-_STDERR_LINES:]) or "no error output"


def _existing(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"no such file: {path}")
    return path


def _sec(value: float) -> str:
    """Seconds for an ffmpeg argument: fixed precision, so the same request always builds the same command."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _even(value: float) -> int:
    return max(2, 2 * math.floor(value / 2 + 0.5))

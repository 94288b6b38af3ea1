"""The offline video provider: renders a small, deterministic clip of the prompt with ffmpeg, offline."""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot import media, typesetting
from bot.domain import Aspect, Capability, GenerationRequest, JobStatus, PromptSpec, ProviderJob
from bot.errors import JobNotFound, ProviderError

FPS = 24
# About 640x360 worth of pixels whatever the aspect: enough to read the text, small enough to render a
# 4 s clip in a fraction of a second, so the demo and every test can use real clips.
_RENDER_AREA = 640 * 360
_JOB_ID_RE = re.compile(r"^local-[0-9a-f]{16}$")
_TITLE_LINES = 2
_BEAT_LINES = 2
# x264 output depends on its thread count; pinning it keeps renders byte-identical across machines.
_ENCODER_THREADS = "2"


class LocalProvider:
    """A `VideoProvider` that renders on `fetch`: submit records the request, fetch makes the clip once."""

    name: str = "local"
    capabilities: frozenset[Capability] = frozenset({Capability.TEXT_TO_VIDEO, Capability.IMAGE_TO_VIDEO})

    def __init__(self, work_dir: Path) -> None:
        self._jobs = Path(work_dir) / "jobs"
        self._clips = Path(work_dir) / "clips"

    def submit(self, request: GenerationRequest) -> ProviderJob:
        job_id = job_id_for(request)
        job_file = self._jobs / f"{job_id}.json"
        # A retried submit (same request, same idempotency key) lands on the same job and renders nothing new.
        if not job_file.exists():
            _write_atomically(
                job_file, json.dumps(_request_to_json(request), indent=2, sort_keys=True).encode()
            )
        return ProviderJob(job_id=job_id, status=JobStatus.QUEUED, seconds=request.seconds, poll_after=0.0)

    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        """The job an interrupted submit left behind, if it got as far as recording the request.

        The job id derives from the idempotency key, so at most this generation's own job can be found and
        `since` is not needed to tell it apart. Nothing is rendered here: the job is reported as it stands.
        """
        job_id = job_id_for(request)
        job_file = self._jobs / f"{job_id}.json"
        clip = self._clips / f"{job_id}.mp4"
        try:
            created_at = job_file.stat().st_mtime
        except FileNotFoundError:
            return []
        if clip.exists():
            job = ProviderJob(
                job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=request.seconds
            )
        else:
            job = ProviderJob(job_id=job_id, status=JobStatus.QUEUED, seconds=request.seconds, poll_after=0.0)
        return [replace(job, reference=request.idempotency_key, created_at=created_at)]

    def fetch(self, job_id: str) -> ProviderJob:
        clip = self._clip_path(job_id)
        job_file = self._jobs / f"{job_id}.json"
        if clip is None or not (clip.exists() or job_file.exists()):
            return _unknown(job_id)
        try:
            request = _read_request(job_file) if job_file.exists() else None
            if not clip.exists():
                if request is None:
                    return _unknown(job_id)  # cancelled between the check above and now
                render(request, clip)
            seconds = request.seconds if request else round(media.probe(clip).duration)
        except (media.MediaError, ValueError, KeyError, OSError) as err:
            return ProviderJob(
                job_id=job_id,
                status=JobStatus.FAILED,
                error=f"The local render failed: {err}",
            )
        return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=seconds)

    def download(self, job_id: str, into: Path) -> Path:
        clip = self._clip_path(job_id)
        if clip is None or not (clip.exists() or (self._jobs / f"{job_id}.json").exists()):
            raise JobNotFound(f"The local renderer has no job {job_id!r}.")
        if not clip.exists():
            raise ProviderError(
                f"The local renderer has no finished clip for job {job_id!r}; fetch it until it completes.",
                retryable=True,
            )
        target = Path(into)
        if target.is_dir():
            target = target / f"{job_id}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, target)
        return target

    def cancel(self, job_id: str) -> None:
        clip = self._clip_path(job_id)
        # A finished clip stays: the job is over and the file may already be referenced.
        if clip is not None and not clip.exists():
            (self._jobs / f"{job_id}.json").unlink(missing_ok=True)

    def cost_per_second(self, model: str | None) -> float:
        return 0.0

    def _clip_path(self, job_id: str) -> Path | None:
        # Job ids come back from the database and Slack; only our own shape may become a file name.
        if not _JOB_ID_RE.match(job_id):
            return None
        return self._clips / f"{job_id}.mp4"


def _unknown(job_id: str) -> ProviderJob:
    return ProviderJob(
        job_id=job_id,
        status=JobStatus.FAILED,
        error=f"The local renderer has no job {job_id!r}: it was never submitted here, or it was cancelled.",
    )


def job_id_for(request: GenerationRequest) -> str:
    """A stable id from the request's content and idempotency key: same generation, same job."""
    canonical = json.dumps(_request_to_json(request), sort_keys=True, separators=(",", ":"))
    return "local-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def render_size(aspect: Aspect) -> tuple[int, int]:
    """The reduced frame size for `aspect`: its exact ratio at about 640x360 worth of pixels, even sides."""
    width, height = aspect.dimensions
    factor = math.sqrt(_RENDER_AREA / (width * height))
    return 2 * round(width * factor / 2), 2 * round(height * factor / 2)


@dataclass(frozen=True)
class Look:
    """What makes one variation look like itself: colours and the moving disc's path."""

    background: tuple[str, str]
    accent: tuple[int, int, int]
    gradient_line: tuple[float, float, float, float]
    gradient_speed: float
    frequency: tuple[int, int]
    phase: tuple[float, float]


def look_for(request: GenerationRequest) -> Look:
    """Derive the look from the prompt's hash and the request's seed (the variation number when it has
    none): different seeds look different, repeats match."""
    # Only the prompt text and the number: a storyboard edit changes the captions, not the whole look.
    prompt_digest = hashlib.sha256(request.prompt.encode())
    if request.seed is None:
        number = request.variation
        salt = number.to_bytes(4, "big", signed=True)
    else:
        # Seeds may be any size; the variation-number form above stays as it was, so old clips re-render alike.
        number = request.seed
        salt = b"seed:" + str(number).encode()
    seed = hashlib.sha256(prompt_digest.digest() + salt).digest()
    # Golden-ratio hue steps keep neighbouring numbers (and consecutive seeds) far apart on the colour wheel.
    hue = (prompt_digest.digest()[0] / 256 + 0.618034 * (number % 1_000_003)) % 1.0
    dark = colorsys.hsv_to_rgb(hue, 0.75, 0.30)
    light = colorsys.hsv_to_rgb((hue + 0.10) % 1.0, 0.65, 0.85)
    accent = colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.45, 1.0)
    return Look(
        background=(_hex(dark), _hex(light)),
        accent=(round(accent[0] * 255), round(accent[1] * 255), round(accent[2] * 255)),
        gradient_line=(seed[0] / 255, seed[1] / 255, seed[2] / 255, seed[3] / 255),
        gradient_speed=0.01 + seed[4] / 255 * 0.03,
        frequency=(1 + seed[5] % 2, 1 + seed[6] % 3),
        phase=(seed[7] / 255 * 2 * math.pi, seed[8] / 255 * 2 * math.pi),
    )


def render(request: GenerationRequest, out: Path) -> Path:
    """Render the clip for `request` into `out` (atomically): background, moving disc, text, time bar.

    Text-to-video draws an animated gradient; image-to-video pans slowly across `reference_image`.
    """
    if request.seconds <= 0:
        raise media.MediaError(f"a clip needs a positive length (got {request.seconds} s)")
    if request.reference_image is not None and not Path(request.reference_image).is_file():
        raise media.MediaError(f"the reference image {request.reference_image} does not exist")
    layout = _Layout.for_request(request)
    look = look_for(request)
    overlays = [_moving_disc(look, layout), _title(request, layout), *_beat_cards(request.spec, layout)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out.parent) as tmp:
        inputs: list[str] = []
        if request.reference_image is not None:
            inputs += ["-i", str(request.reference_image)]
        parts = [_background(request, look, layout)]
        for i, overlay in enumerate(overlays):
            png = media.write_png(overlay.image, Path(tmp) / f"overlay{i}.png")
            inputs += ["-i", str(png)]
            enable = f":enable='{overlay.enable}'" if overlay.enable else ""
            parts.append(
                f"[{'bg' if i == 0 else f'o{i}'}][{len(inputs) // 2 - 1}:v]"
                f"overlay=x='{overlay.x}':y='{overlay.y}'{enable}[o{i + 1}]"
            )
        parts += _time_bar(f"o{len(overlays)}", layout)
        args = [
            *inputs,
            "-filter_complex", ";".join(parts),
            "-map", "[v]", "-frames:v", str(layout.frames), "-r", str(FPS),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", str(FPS),
            "-threads", _ENCODER_THREADS,
            "-pix_fmt", "yuv420p", "-movflags", "+faststart",
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        ]  # fmt: skip
        return media.run_ffmpeg(args, out, what=f"render the local clip for variation #{request.variation}")


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    seconds: int
    scale: int  # the unit of spacing: about 1/120 of the shorter side
    margin: int
    bar_height: int

    @classmethod
    def for_request(cls, request: GenerationRequest) -> _Layout:
        width, height = render_size(request.aspect)
        scale = max(2, min(width, height) // 120)
        return cls(
            width=width,
            height=height,
            seconds=request.seconds,
            scale=scale,
            margin=4 * scale,
            bar_height=2 * scale,
        )

    @property
    def text(self) -> typesetting.TextStyle:
        return typesetting.TextStyle(size=8 * self.scale)

    @property
    def text_width(self) -> int:
        """How wide a line of text may be: the frame less its margins and the text box's padding."""
        return self.width - 2 * self.margin - 2 * self.text.padding

    @property
    def frames(self) -> int:
        return self.seconds * FPS


@dataclass(frozen=True)
class _Overlay:
    image: media.RgbaImage
    x: str
    y: str
    enable: str | None = None


def _background(request: GenerationRequest, look: Look, layout: _Layout) -> str:
    """The filter chain that produces `[bg]`: a pan across the reference image, or a drifting gradient."""
    width, height, seconds = layout.width, layout.height, layout.seconds
    if request.reference_image is not None:
        # Decode and scale the still once, then repeat it; `-loop 1` would re-decode it for every frame.
        return (
            f"[0:v]scale={_even(width * 1.15)}:{_even(height * 1.15)}:force_original_aspect_ratio=increase,"
            f"loop=loop=-1:size=1,fps={FPS},trim=end_frame={layout.frames},"
            f"crop={width}:{height}:x='(iw-ow)*t/{seconds}':y='(ih-oh)/2',setsar=1,format=yuv420p[bg]"
        )
    x0, y0, x1, y1 = look.gradient_line
    return (
        f"gradients=s={width}x{height}:r={FPS}:d={seconds}:seed=1:speed={_num(look.gradient_speed)}"
        f":c0={look.background[0]}:c1={look.background[1]}"
        f":x0={round(x0 * width)}:y0={round(y0 * height)}:x1={round(x1 * width)}:y1={round(y1 * height)}"
        ",format=yuv420p[bg]"
    )


def _moving_disc(look: Look, layout: _Layout) -> _Overlay:
    """A disc on a Lissajous path across the whole frame: unmistakable motion in every variation."""
    (fx, fy), (px, py), seconds = look.frequency, look.phase, layout.seconds
    return _Overlay(
        _disc(min(layout.width, layout.height) // 4, look.accent),
        f"(W-w)/2*(1+sin(2*PI*{fx}*t/{seconds}+{_num(px)}))",
        f"(H-h)/2*(1+sin(2*PI*{fy}*t/{seconds}+{_num(py)}))",
    )


def _title(request: GenerationRequest, layout: _Layout) -> _Overlay:
    lines = [
        *_fit_lines(request.spec.subject or request.prompt, layout, _TITLE_LINES),
        f"#{request.variation}",
    ]
    image = typesetting.text_image(lines, layout.text)
    return _Overlay(image, str(layout.margin), str(layout.margin))


def _beat_cards(spec: PromptSpec, layout: _Layout) -> list[_Overlay]:
    """Each storyboard beat along the bottom, on screen from its start until the next beat (or the end)."""
    cards = []
    for text, start, end in _beat_windows(spec, float(layout.seconds)):
        image = typesetting.text_image(_fit_lines(text, layout, _BEAT_LINES), layout.text)
        y = layout.height - layout.margin - layout.bar_height - image.height
        # Half-open windows, so exactly one card is on screen at a change-over frame.
        window = f"gte(t,{_num(start)})*lt(t,{_num(end)})"
        cards.append(_Overlay(image, str(layout.margin), str(y), enable=window))
    return cards


def _time_bar(source: str, layout: _Layout) -> list[str]:
    """A bar filling up along the bottom edge, so any frame shows where in the clip it is; ends in `[v]`."""
    return [
        f"color=c=white:s={layout.width}x{layout.bar_height}:r={FPS}:d={layout.seconds}[bar]",
        f"[{source}][bar]overlay=x='-w+W*(t+{_num(1 / FPS)})/{layout.seconds}'"
        f":y={layout.height - layout.bar_height},format=yuv420p[v]",
    ]


def _beat_windows(spec: PromptSpec, duration: float) -> list[tuple[str, float, float]]:
    """Each beat's text with the time it is on screen: from its start until the next beat (or the end)."""
    beats = sorted((beat for beat in spec.beats if 0 <= beat.start < duration), key=lambda beat: beat.start)
    ends = [beat.start for beat in beats[1:]] + [duration]
    return [(beat.text, beat.start, end) for beat, end in zip(beats, ends, strict=False)]


def _fit_lines(text: str, layout: _Layout, max_lines: int) -> list[str]:
    return typesetting.wrap(
        text, width=layout.text_width, max_lines=max_lines, measure=typesetting.measure(layout.text)
    )


def _disc(diameter: int, color: tuple[int, int, int]) -> media.RgbaImage:
    """A filled circle with a one-pixel soft edge."""
    radius = diameter / 2
    pixels = bytearray(diameter * diameter * 4)
    red, green, blue = color
    for y in range(diameter):
        dy = y + 0.5 - radius
        for x in range(diameter):
            coverage = radius - math.hypot(x + 0.5 - radius, dy) + 0.5
            if coverage > 0:
                start = (y * diameter + x) * 4
                pixels[start : start + 4] = bytes((red, green, blue, round(255 * min(coverage, 1.0))))
    return media.RgbaImage(width=diameter, height=diameter, pixels=bytes(pixels))


def _request_to_json(request: GenerationRequest) -> dict[str, object]:
    return {
        "prompt": request.prompt,
        "spec": request.spec.as_dict(),
        "seconds": request.seconds,
        "aspect": request.aspect.value,
        "variation": request.variation,
        "idempotency_key": request.idempotency_key,
        "model": request.model,
        "reference_image": None if request.reference_image is None else str(request.reference_image),
        # Only when set, so requests without a seed keep the job ids they always had.
        **({} if request.seed is None else {"seed": request.seed}),
    }


def _read_request(job_file: Path) -> GenerationRequest:
    data = json.loads(job_file.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
        raise ValueError(f"the job file {job_file.name} is not a saved request")
    reference, model, seed = data.get("reference_image"), data.get("model"), data.get("seed")
    return GenerationRequest(
        prompt=str(data["prompt"]),
        spec=PromptSpec.from_dict(data["spec"]),
        seconds=int(data["seconds"]),
        aspect=Aspect(str(data["aspect"])),
        variation=int(data["variation"]),
        idempotency_key=str(data["idempotency_key"]),
        model=None if model is None else str(model),
        seed=None if seed is None else int(seed),
        reference_image=None if reference is None else Path(str(reference)),
    )


def _write_atomically(path: Path, content: bytes) -> None:
    """Write via a temporary sibling and a rename, so a crash never leaves half a job file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.partial")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _hex(rgb: Sequence[float]) -> str:
    return "0x" + "".join(f"{round(channel * 255):02x}" for channel in rgb)


def _num(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def _even(value: float) -> int:
    return 2 * math.ceil(value / 2)

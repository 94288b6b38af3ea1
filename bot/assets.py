"""The asset store: our own copies of clips and sheets, because provider URLs expire within the hour; and what a
download must be before it counts as a finished clip."""

from __future__ import annotations

from pathlib import Path

from bot import media
from bot.errors import NotAClip
from storage.models import Generation

# How much longer than asked a clip may be: providers round up (fal makes 5 s for 4), joins add a little.
_LONGER_BY = 2.0
_LONGER_BY_SHARE = 0.5
_SNIFF_BYTES = 4096


def finished_clip(generation: Generation) -> Path | None:
    """The generation's clip in the asset store, if it has one and the file is still there."""
    path = Path(generation.asset_path) if generation.asset_path else None
    return path if path is not None and path.exists() else None


def verify_clip(path: Path, *, asked_seconds: float, max_bytes: int) -> media.MediaInfo:
    """Raise `NotAClip` unless `path` is a video that plays, no larger than `max_bytes`, longer than nothing and
    not much longer than `asked_seconds`. Every provider's download passes here before it is marked ready: a
    provider that answers with an error page, an empty body or a huge file must not be posted as a clip.
    The message says what the provider sent, in plain words."""
    size = path.stat().st_size
    if size > max_bytes:
        raise NotAClip(
            f"The provider sent {_size(size)} for this clip, more than the {_size(max_bytes)} allowed "
            "(SORA_BOT_MAX_CLIP_MB); reply `again` to try once more."
        )
    if size == 0:
        raise NotAClip("The provider sent an empty file, not a video; reply `again` to try once more.")
    # Named first: ffmpeg reads some of these (an image is a one-frame "video"), but none is a clip.
    kind = _what_it_is(path)
    if kind is None:
        try:
            info = media.probe(path)
        except media.MediaError:
            kind = "a file that is not a video"
    if kind is not None:
        raise NotAClip(
            f"The provider sent {kind} ({_size(size)}), not a video; reply `again` to try once more."
        )
    try:
        media.check_decodes(path)
    except media.MediaError:
        raise NotAClip(
            f"The provider sent a video that does not play ({_size(size)}, cut short or corrupt); reply `again` "
            "to try once more."
        ) from None
    longest = asked_seconds + max(_LONGER_BY, asked_seconds * _LONGER_BY_SHARE)
    if info.duration <= 0:
        raise NotAClip("The provider sent a video with no length; reply `again` to try once more.")
    if info.duration > longest:
        raise NotAClip(
            f"The provider sent a {info.duration:.1f} s video for a {asked_seconds:g} s request, far longer "
            "than asked, so it was not posted; reply `again` to try once more."
        )
    return info


def discard(path: Path | None) -> None:
    """Remove a download that was refused, so it neither fills the disk nor looks like a clip later."""
    if path is not None:
        path.unlink(missing_ok=True)


def _what_it_is(path: Path) -> str | None:
    """A plain description of a file that is plainly not a video, from its first bytes; None when it may be."""
    with path.open("rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text or b"<body" in text:
        return "an HTML page"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "an XML document"
    if text.startswith((b"{", b"[")):
        return "a JSON document"
    kind = media.image_kind(head)
    if kind is not None:
        return f"a {kind.upper()} image"
    decoded = head.decode("utf-8", "replace")[:-2]  # the sniffed bytes may end inside a character
    if all((ch.isprintable() or ch.isspace()) and ch != "\ufffd" for ch in decoded):
        return "a text file"
    return None


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1 << 20:
        return f"{count / 1024:.0f} KB"
    return f"{count / (1 << 20):.0f} MB"


class LocalAssetStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

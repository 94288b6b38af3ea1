"""The asset store: our own copies of clips, sheets and reference images, because provider URLs expire within the
hour; the keys they are stored under; and what a download must be before it counts as a finished clip."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bot import media
from bot.errors import AssetMissing, ConfigError, NotAClip
from storage.models import Generation

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.ports import AssetStore

# How much longer than asked a clip may be: providers round up (fal makes 5 s for 4), joins add a little.
_LONGER_BY = 2.0
_LONGER_BY_SHARE = 0.5
_SNIFF_BYTES = 4096


_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


# --- keys: what the database keeps (`generation.asset_path`, `*.reference_path`, `source_paths`) -------------


def clip_key(round_id: int, number: int) -> str:
    return f"round-{round_id}/variation-{number}.mp4"


def sheet_key(round_id: int) -> str:
    return f"round-{round_id}/contact-sheet.png"


def last_frame_key(round_id: int, number: int) -> str:
    return f"round-{round_id}/variation-{number}-last-frame.png"


def reference_key(draft_id: int, data: bytes, kind: str) -> str:
    """Named by its content: a draft's second image is a new key, so no replica's cached copy of the first is
    ever taken for it (a key's content never changes once a row names it)."""
    return f"drafts/draft-{draft_id}/reference-{hashlib.sha256(data).hexdigest()[:12]}.{kind}"


def legacy_path(value: str) -> Path | None:
    """Rows written before assets had keys hold an absolute path to a local file: it is read where it is."""
    path = Path(value)
    return path if path.is_absolute() else None


def checked_key(key: str) -> str:
    """`key` when it is one of ours: relative, plain names, no `..`. Raises AssetMissing otherwise (a key read
    back from the database is never allowed to name a file outside the store)."""
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise AssetMissing(f"{key[:80]!r} is not an asset key")
    return key


def finished_clip(assets: AssetStore, generation: Generation) -> Path | None:
    """A local copy of the generation's clip, if it has one and the store still holds it. Raises AssetError when
    the store cannot be read just now (the caller retries)."""
    if not generation.asset_path:
        return None
    try:
        return assets.fetch(generation.asset_path)
    except AssetMissing:
        return None


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
    """Assets as files in a folder (SORA_BOT_DATA_DIR/assets): a key is a path relative to it. Replicas share
    it only when the folder is a shared volume; set SORA_BOT_ASSET_BUCKET otherwise."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._scratch = root / ".scratch"

    @property
    def where(self) -> str:
        return f"folder {self.root}"

    def scratch(self, name: str) -> Path:
        # Inside the store's folder, so `put` is a rename on the same file system.
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch / f"{secrets.token_hex(6)}-{Path(name).name}"

    def put(self, key: str, source: Path) -> Path:
        target = self.root / checked_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        move_into_place(source, target)
        return target

    def fetch(self, key: str) -> Path:
        path = legacy_path(key) or self.root / checked_key(key)
        if not path.is_file():
            raise AssetMissing(f"the asset {key[:120]} is not in {self.root}")
        return path

    def exists(self, key: str) -> bool:
        try:
            self.fetch(key)
        except AssetMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        (legacy_path(key) or self.root / checked_key(key)).unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release: the folder is the store."""


def move_into_place(source: Path, target: Path) -> None:
    """Move a finished file to `target` so that a reader sees all of it or nothing: a rename, or across file
    systems a copy beside the target renamed over it."""
    try:
        os.replace(source, target)
        return
    except OSError:
        if not source.is_file():
            raise
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    source.unlink(missing_ok=True)


def open_asset_store(settings: Settings) -> AssetStore:
    """The bucket when SORA_BOT_ASSET_BUCKET is set (shared by every replica), else the data dir's folder."""
    if settings.asset_bucket is None:
        return LocalAssetStore(settings.data_dir / "assets")
    from bot.bucket import S3AssetStore  # boto3 is imported only by deployments that use a bucket

    # Each process downloads into its own cache: no replica ever reads another's half-written file.
    cache = settings.data_dir / "asset-cache" / f"{os.getpid()}-{secrets.token_hex(4)}"
    try:
        return S3AssetStore(
            bucket=settings.asset_bucket,
            prefix=settings.asset_prefix,
            endpoint_url=settings.s3_endpoint_url,
            cache_dir=cache,
        )
    except Exception as err:  # a malformed endpoint or region is a setting to fix, not a traceback
        raise ConfigError(
            [f"the asset bucket {settings.asset_bucket} cannot be used ({type(err).__name__}: {err})"]
        ) from None

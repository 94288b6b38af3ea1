"""The asset store: our own copies of clips and sheets, because provider URLs expire within the hour."""

from __future__ import annotations

from pathlib import Path

from storage.models import Generation


def finished_clip(generation: Generation) -> Path | None:
    """The generation's clip in the asset store, if it has one and the file is still there."""
    path = Path(generation.asset_path) if generation.asset_path else None
    return path if path is not None and path.exists() else None


class LocalAssetStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

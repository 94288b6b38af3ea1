"""The asset store: our own copies of clips and sheets, because provider URLs expire within the hour."""

from __future__ import annotations

from pathlib import Path


class LocalAssetStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

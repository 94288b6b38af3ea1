"""Builds the configured video providers and picks one by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.errors import InvalidInput
from bot.ports import VideoProvider


@dataclass(frozen=True)
class Providers:
    """The providers this deployment can use; `default` names the one drafts start with."""

    available: Mapping[str, VideoProvider]
    default: str

    def get(self, name: str | None = None) -> VideoProvider:
        key = name or self.default
        provider = self.available.get(key)
        if provider is None:
            configured = ", ".join(sorted(self.available)) or "none"
            raise InvalidInput(
                f"The video provider {key!r} is not configured here.", hint=f"Configured: {configured}."
            )
        return provider

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.available))

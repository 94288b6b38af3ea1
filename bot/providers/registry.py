"""Builds the configured video providers from Settings and picks one by name."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.config import Settings
from bot.errors import ConfigError, InvalidInput
from bot.ports import AssetStore, VideoProvider
from bot.pricing import PriceTable, UnknownPrice

log = logging.getLogger(__name__)


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

    def pick(self, name: str | None = None) -> VideoProvider:
        """A provider a person may choose for a draft or a channel (not an internal one such as `edit`)."""
        key = name or self.default
        if key not in self.names():
            raise InvalidInput(
                f"The video provider {key!r} is not configured here.",
                hint=f"Configured: {', '.join(self.names())}.",
            )
        return self.get(key)

    def names(self) -> tuple[str, ...]:
        """The providers people can choose, for menus, settings and `/sora status`."""
        return tuple(sorted(n for n, p in self.available.items() if not getattr(p, "internal", False)))

    def close(self) -> None:
        for provider in self.available.values():
            close = getattr(provider, "close", None)
            if callable(close):
                close()


def build_providers(settings: Settings, *, prices: PriceTable, assets: AssetStore | None = None) -> Providers:
    """`local` always; each hosted provider whose key is set. VIDEO_MODEL applies to the default one.

    `assets` is the deployment's asset store, where edits keep their clips (so every replica sees them); without
    it they stay in the data dir."""
    from bot.providers.edit import EditProvider
    from bot.providers.fal import FalProvider
    from bot.providers.local import LocalProvider
    from bot.providers.openai_compat import OpenAICompatibleProvider
    from bot.providers.veo import VeoProvider

    def model(name: str, fallback: str) -> str:
        return settings.video_model if settings.video_model and settings.video_provider == name else fallback

    def rate(name: str, chosen: str) -> float:
        try:
            return prices.rate(name, chosen)
        except UnknownPrice:
            return prices.rate(name)

    max_clip_bytes = settings.max_clip_mb << 20
    available: dict[str, VideoProvider] = {
        "local": LocalProvider(settings.data_dir / "local-renderer"),
        "edit": EditProvider(settings.data_dir / "edits", assets=assets),
    }
    openai_key = settings.secret("openai_api_key")
    # OpenAI's own Videos API is gone; an OpenAI key alone means drafting and moderation. Video goes through
    # a gateway (OPENAI_BASE_URL) or when asked for explicitly.
    if openai_key and (settings.openai_base_url or settings.video_provider == "openai"):
        chosen = model("openai", "sora-2")
        available["openai"] = OpenAICompatibleProvider(
            api_key=openai_key,
            base_url=settings.openai_base_url,
            model=chosen,
            price_per_second=rate("openai", chosen),
            max_clip_bytes=max_clip_bytes,
        )
    fal_key = settings.secret("fal_key")
    if fal_key:
        chosen = model("fal", "fal-ai/kling-video/v2.1/standard/text-to-video")
        webhook = f"{settings.public_url.rstrip('/')}/webhooks/fal" if settings.public_url else None
        available["fal"] = FalProvider(
            key=fal_key,
            base_url=settings.fal_base_url,
            model=chosen,
            price_per_second=rate("fal", chosen),
            max_clip_bytes=max_clip_bytes,
            webhook_url=webhook,
        )
    gemini_key = settings.secret("gemini_api_key")
    if gemini_key:
        chosen = model("veo", "veo-3.1-fast-generate-preview")
        available["veo"] = VeoProvider(
            api_key=gemini_key,
            base_url=settings.gemini_base_url,
            model=chosen,
            price_per_second=rate("veo", chosen),
            max_clip_bytes=max_clip_bytes,
        )
    if settings.video_provider not in available:
        problems = settings.provider_problems() or [
            f"VIDEO_PROVIDER is {settings.video_provider}, which is not configured; "
            f"configured: {', '.join(sorted(available))}."
        ]
        raise ConfigError(problems)
    log.info("video providers: %s (default %s)", ", ".join(sorted(available)), settings.video_provider)
    return Providers(available=available, default=settings.video_provider)

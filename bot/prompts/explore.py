"""Exploring rounds: one layer of the prompt varied on purpose across a round's variations, the rest kept."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from types import MappingProxyType

from bot.domain import PromptSpec
from bot.prompts.vocabulary import camera_moves, style_cues


class Explore(StrEnum):
    """The layers a round can explore; a draft without one re-rolls the same prompt."""

    CAMERA = "camera"
    FINISH = "finish"


def parse_explore(text: str) -> Explore | None:
    """`camera` or `finish` (any case); None for anything else."""
    try:
        return Explore(text.strip().lower())
    except ValueError:
        return None


# fmt: off
_ALTERNATIVES: Mapping[Explore, tuple[str, ...]] = MappingProxyType(
    {
        Explore.CAMERA: (
            "slow dolly-in at subject height", "low-angle tracking shot", "overhead crane down",
            "handheld push-in", "slow orbit around the subject", "locked-off wide shot",
            "slow pull-back to reveal the setting", "slow pan across the scene",
        ),
        Explore.FINISH: (
            "soft film grain, warm tones", "high-contrast noir", "pastel, soft light",
            "teal and orange colour grade", "moody low key light", "vibrant, saturated colour",
            "dreamy soft focus, hazy light", "desaturated documentary look",
        ),
    }
)
# fmt: on

# What makes two values "the same idea" for a layer: the same camera move, the same look. (The environment and
# the action are not explored: replacing them would change what the clip is of, not how it is shot.)
_KINDS: Mapping[Explore, Callable[[str], tuple[str, ...]]] = MappingProxyType(
    {Explore.CAMERA: camera_moves, Explore.FINISH: style_cues}
)


def alternatives(spec: PromptSpec, layer: Explore) -> tuple[str, ...]:
    """Every value the layer could take instead of the drafted one, in this draft's own order.

    Never the drafted value, nor one of the same kind (a second push-in, a second noir): a vote between them
    would say nothing. The order depends on the idea only, so the same draft always explores the same way."""
    original = getattr(spec, layer.value)
    kinds = set(_KINDS[layer](original))
    candidates = [
        value
        for value in _ALTERNATIVES[layer]
        if value.lower() != original.strip().lower() and not kinds & set(_KINDS[layer](value))
    ]
    if not candidates:
        return ()
    start = zlib.crc32(f"{spec.subject}\n{spec.action}".encode()) % len(candidates)
    return tuple(candidates[start:] + candidates[:start])


def explore(spec: PromptSpec, layer: Explore, count: int) -> tuple[PromptSpec, ...]:
    """`count` specs: the first as drafted, the others with `layer` replaced by distinct alternatives."""
    others = alternatives(spec, layer)[: max(0, count - 1)]
    specs = (spec, *(_with(spec, layer, value) for value in others))
    return specs + (spec,) * (count - len(specs))


def _with(spec: PromptSpec, layer: Explore, value: str) -> PromptSpec:
    if layer is Explore.CAMERA:
        return replace(spec, camera=value)
    return replace(spec, finish=value)


def explored_layer(specs: Sequence[PromptSpec]) -> str | None:
    """The one layer a round's variations differ on from its first, when they differ on exactly one."""
    if len(specs) < 2:
        return None
    first = specs[0]
    layers = {
        name for s in specs[1:] for name in PromptSpec.LAYERS if getattr(s, name) != getattr(first, name)
    }
    if len(layers) != 1 or any(s.beats != first.beats for s in specs):
        return None
    return layers.pop()

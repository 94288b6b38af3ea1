"""Goals and their presets: output shape, variation count, and the defaults for layers an idea leaves open."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from bot.domain import Aspect

# --- goals and presets -----------------------------------------------------------------------------


class Goal(StrEnum):
    AD_CONCEPT = "ad_concept"
    SOCIAL_TEASER = "social_teaser"
    PRODUCT_HERO = "product_hero"
    AMBIENT_LOOP = "ambient_loop"
    STORYBOARD = "storyboard"
    STYLE_STUDY = "style_study"


@dataclass(frozen=True)
class GoalPreset:
    """What a goal implies: output shape, how many variations to vote on, and defaults for missing layers."""

    goal: Goal
    label: str
    aspect: Aspect
    seconds: int
    variations: int
    guidance: str
    camera: str
    environment: str
    finish: str

    @property
    def intent(self) -> str:
        return f"{self.seconds}-second {self.label.lower()}, {self.aspect.value}"


PRESETS: Mapping[Goal, GoalPreset] = MappingProxyType(
    {
        Goal.AD_CONCEPT: GoalPreset(
            goal=Goal.AD_CONCEPT,
            label="Ad concept",
            aspect=Aspect.LANDSCAPE,
            seconds=8,
            variations=3,
            guidance="One product or character, one clear action; end on a hero beat a logo can sit on.",
            camera="slow push-in at subject height",
            environment="a clean, uncluttered setting",
            finish="clean commercial light, crisp colour",
        ),
        Goal.SOCIAL_TEASER: GoalPreset(
            goal=Goal.SOCIAL_TEASER,
            label="Social teaser",
            aspect=Aspect.PORTRAIT,
            seconds=6,
            variations=3,
            guidance="Hook in the first second; keep the subject centred so the vertical crop holds.",
            camera="handheld at eye level, subject centred",
            environment="a simple setting that reads on a phone screen",
            finish="bright natural light, punchy colour",
        ),
        Goal.PRODUCT_HERO: GoalPreset(
            goal=Goal.PRODUCT_HERO,
            label="Product hero",
            aspect=Aspect.LANDSCAPE,
            seconds=6,
            variations=2,
            guidance="The product is the only subject; light it like a catalogue and let it turn or open.",
            camera="slow orbit around the product",
            environment="a seamless studio backdrop",
            finish="soft studio light, clean reflections",
        ),
        Goal.AMBIENT_LOOP: GoalPreset(
            goal=Goal.AMBIENT_LOOP,
            label="Ambient loop",
            aspect=Aspect.LANDSCAPE,
            seconds=8,
            variations=2,
            guidance="Gentle, continuous motion that can repeat; no cuts, no big reveals.",
            camera="locked-off static frame",
            environment="a calm, spacious setting",
            finish="soft natural light, gentle colour grade",
        ),
        Goal.STORYBOARD: GoalPreset(
            goal=Goal.STORYBOARD,
            label="Storyboard",
            aspect=Aspect.LANDSCAPE,
            seconds=12,
            variations=2,
            guidance="2–4 beats at least 2 seconds apart; one camera behaviour across the whole clip.",
            camera="slow push-in at subject height",
            environment="a simple, readable setting",
            finish="natural light, clean colour",
        ),
        Goal.STYLE_STUDY: GoalPreset(
            goal=Goal.STYLE_STUDY,
            label="Style study",
            aspect=Aspect.SQUARE,
            seconds=4,
            variations=4,
            guidance="Keep subject and camera fixed and vary only the finish, so the vote is about style.",
            camera="locked-off medium shot",
            environment="a plain backdrop",
            finish="natural light, clean colour",
        ),
    }
)

DEFAULT_CAMERA = "slow push-in at subject height"
DEFAULT_ENVIRONMENT = "a simple, uncluttered setting"
DEFAULT_FINISH = "natural light, clean colour"
DEFAULT_INTENT = "short clip, 16:9"

# Defaults are recognisable on purpose: a spec saved without its `filled` notes still lints as "no camera".
DEFAULT_CAMERAS = frozenset({DEFAULT_CAMERA} | {p.camera for p in PRESETS.values()})

_GOAL_ALIASES: Mapping[str, Goal] = MappingProxyType(
    {
        **{g.value: g for g in Goal},
        **{g.value.replace("_", ""): g for g in Goal},
        "ad": Goal.AD_CONCEPT,
        "ads": Goal.AD_CONCEPT,
        "advert": Goal.AD_CONCEPT,
        "commercial": Goal.AD_CONCEPT,
        "concept": Goal.AD_CONCEPT,
        "social": Goal.SOCIAL_TEASER,
        "teaser": Goal.SOCIAL_TEASER,
        "reel": Goal.SOCIAL_TEASER,
        "vertical": Goal.SOCIAL_TEASER,
        "tiktok": Goal.SOCIAL_TEASER,
        "product": Goal.PRODUCT_HERO,
        "hero": Goal.PRODUCT_HERO,
        "packshot": Goal.PRODUCT_HERO,
        "loop": Goal.AMBIENT_LOOP,
        "ambient": Goal.AMBIENT_LOOP,
        "background": Goal.AMBIENT_LOOP,
        "story": Goal.STORYBOARD,
        "board": Goal.STORYBOARD,
        "beats": Goal.STORYBOARD,
        "style": Goal.STYLE_STUDY,
        "study": Goal.STYLE_STUDY,
        "look": Goal.STYLE_STUDY,
    }
)


def parse_goal(text: str) -> Goal | None:
    """A goal from its name or a common alias ("social", "hero", "loop"…); None when nothing matches."""
    key = re.sub(r"[\s\-_]+", "_", text.strip().lower()).strip("_")
    return _GOAL_ALIASES.get(key) or _GOAL_ALIASES.get(key.replace("_", ""))

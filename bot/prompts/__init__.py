"""Prompts in the Sora grammar, one module per concern; this package re-exports what the rest of the bot uses.

presets (goals and their defaults) · vocabulary (the grammar's words) · drafter (an idea read into layers and
beats) · checklist (lint and score) · render (the provider prompt) · remix (one change to one layer) ·
explore (one layer varied across a round).
"""

from bot.domain import PromptSpec
from bot.prompts.checklist import MAX_PROMPT_CHARS, MAX_PROMPT_WORDS, RULES, lint, score
from bot.prompts.drafter import Draft, draft, draft_with_notes
from bot.prompts.explore import Explore, alternatives, explore, explored_layer, parse_explore
from bot.prompts.presets import (
    DEFAULT_CAMERA,
    DEFAULT_CAMERAS,
    DEFAULT_ENVIRONMENT,
    DEFAULT_FINISH,
    DEFAULT_INTENT,
    PRESETS,
    Goal,
    GoalPreset,
    parse_goal,
)
from bot.prompts.remix import LayerChange, apply_change, changed_layers, layer_diff, split_change
from bot.prompts.render import render
from bot.prompts.vocabulary import LAYERS, camera_moves, hype_words, motion_verbs, style_cues

__all__ = [
    "DEFAULT_CAMERA",
    "DEFAULT_CAMERAS",
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_FINISH",
    "DEFAULT_INTENT",
    "LAYERS",
    "MAX_PROMPT_CHARS",
    "MAX_PROMPT_WORDS",
    "PRESETS",
    "RULES",
    "Draft",
    "Explore",
    "Goal",
    "GoalPreset",
    "LayerChange",
    "PromptSpec",
    "alternatives",
    "apply_change",
    "camera_moves",
    "changed_layers",
    "draft",
    "draft_with_notes",
    "explore",
    "explored_layer",
    "hype_words",
    "layer_diff",
    "lint",
    "motion_verbs",
    "parse_explore",
    "parse_goal",
    "render",
    "score",
    "split_change",
    "style_cues",
]

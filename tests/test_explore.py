"""Exploring rounds, pure: the alternatives a layer gets, and the `--explore` flag."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot import prompts
from bot.commands import CommandError, DraftCommand, parse_command
from bot.prompts import Explore

IDEA = (
    "a small delivery robot rolls through a rain-soaked neon alley at night, slow dolly-in, soft film grain"
)


def spec() -> prompts.PromptSpec:
    return prompts.draft(IDEA)


@pytest.mark.parametrize("layer", list(Explore))
def test_exploring_keeps_the_drafted_layer_first_and_gives_the_others_distinct_new_values(
    layer: Explore,
) -> None:
    base = spec()
    specs = prompts.explore(base, layer, 4)
    values = [getattr(s, layer.value) for s in specs]
    assert specs[0] == base
    assert len(set(values)) == 4, values
    assert getattr(base, layer.value) not in values[1:]
    for other in specs[1:]:
        assert prompts.changed_layers(base, other) == (layer.value,), "the rest of the prompt is kept"


def test_the_same_draft_always_explores_the_same_way() -> None:
    assert prompts.explore(spec(), Explore.CAMERA, 3) == prompts.explore(spec(), Explore.CAMERA, 3)


def test_an_alternative_never_repeats_the_drafted_move_or_look_in_other_words() -> None:
    base = replace(spec(), camera="slow push-in at subject height", finish="film noir, hard light")
    cameras = prompts.alternatives(base, Explore.CAMERA)
    finishes = prompts.alternatives(base, Explore.FINISH)
    assert cameras and not any("push-in" in prompts.camera_moves(c) for c in cameras)
    assert "slow dolly-in at subject height" not in cameras and "handheld push-in" not in cameras
    assert finishes and "high-contrast noir" not in finishes


def test_a_round_of_re_rolls_or_one_remixed_layer_and_another_is_no_exploration() -> None:
    base = spec()
    assert prompts.explored_layer([base, base, base]) is None
    two = replace(base, camera="overhead crane down", finish="pastel, soft light")
    assert prompts.explored_layer([base, two]) is None
    assert prompts.explored_layer(list(prompts.explore(base, Explore.FINISH, 3))) == "finish"


def test_the_explore_flag_takes_a_layer_anywhere_in_the_idea() -> None:
    assert parse_command("draft --explore camera a cat naps") == DraftCommand(
        idea="a cat naps", explore=Explore.CAMERA
    )
    assert parse_command("draft a cat naps —explore=Finish") == DraftCommand(
        idea="a cat naps", explore=Explore.FINISH
    )


@pytest.mark.parametrize("text", ["draft --explore lens a cat naps", "draft a cat naps --explore"])
def test_the_explore_flag_refuses_an_unknown_or_missing_layer_and_lists_the_choices(text: str) -> None:
    refused = parse_command(text)
    assert isinstance(refused, CommandError)
    assert "`camera`, `finish`" in refused.hint
    assert "lens" in refused.message or "needs a layer" in refused.message

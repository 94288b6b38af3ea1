"""Rounds that explore one layer, through signed HTTP into the real Bolt app and the fake Slack."""

from __future__ import annotations

from conftest import CHANNEL, OWNER, Bot
from test_slack_drafting import latest_card
from test_slack_loop import IDEA, _all_text, draft, rows, variation_messages

from bot.domain import PromptSpec
from devkit.slack_api import Ephemeral, Message
from handlers import blocks
from storage.models import Draft, Generation, Round, Spend


def _generate(sora: Bot, card: Ephemeral) -> dict[int, Message]:
    assert sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    parent = sora.fake.wait_for(
        lambda: next((m for m in sora.fake.messages(CHANNEL) if m.text.startswith("Round:")), None),
        what="the round message",
    )
    return sora.fake.wait_for(
        lambda: len(variation_messages(sora, parent)) == 3 and variation_messages(sora, parent),
        what="three variation messages",
    )


def test_explore_camera_gives_three_cameras_each_message_saying_what_it_varied(sora: Bot) -> None:
    card = draft(sora, f"--explore camera {IDEA}")
    assert "each variation tries another camera" in _all_text(card)
    messages = _generate(sora, card)
    generations = sorted(rows(sora, Generation), key=lambda g: g.number)
    specs = [PromptSpec.from_dict(g.spec) for g in generations]
    cameras = [s.camera for s in specs]
    assert len(set(cameras)) == 3 and cameras[0] == "slow dolly-in"
    assert len({g.prompt for g in generations}) == 3, "each variation renders its own prompt"
    for s in specs[1:]:
        assert s.subject == specs[0].subject and s.action == specs[0].action
        assert s.environment == specs[0].environment and s.finish == specs[0].finish
    assert "keeps the drafted camera: slow dolly-in" in _all_text(messages[1])
    for number in (2, 3):
        assert f"varies the camera: {cameras[number - 1]}" in _all_text(messages[number])
    [round_row] = rows(sora, Round)
    assert round_row.estimated_cost == sum(g.charged for g in generations)
    assert sum(s.seconds for s in rows(sora, Spend)) == 3 * generations[0].seconds


def test_a_round_of_re_rolls_says_nothing_about_variation(sora: Bot) -> None:
    messages = _generate(sora, draft(sora))
    assert len({g.prompt for g in rows(sora, Generation)}) == 1
    assert not any("varies the" in _all_text(m) for m in messages.values())


def test_the_variations_picker_switches_the_draft_to_explore_the_finish(sora: Bot) -> None:
    card = draft(sora)
    block = next(b for b in card.blocks if b["type"] == "actions")
    choice = blocks.explore_option(blocks.prompts.Explore.FINISH)
    assert choice["text"]["text"] == "Variations: explore finish"
    response = sora.sim.select(
        OWNER, action_id=blocks.EXPLORE, block_id=block["block_id"], message=card, option=choice
    )
    assert response.status == 200
    updated = sora.fake.wait_for(
        lambda: "tries another finish" in _all_text(latest_card(sora)) and latest_card(sora), what="the card"
    )
    [row] = rows(sora, Draft)
    assert row.explore == "finish"
    messages = _generate(sora, updated)
    finishes = [
        PromptSpec.from_dict(g.spec).finish for g in sorted(rows(sora, Generation), key=lambda g: g.number)
    ]
    assert len(set(finishes)) == 3
    assert f"varies the finish: {finishes[2]}" in _all_text(messages[3])


def test_an_unknown_layer_is_refused_by_name_and_nothing_is_drafted(sora: Bot) -> None:
    assert sora.sim.command(OWNER, CHANNEL, f"draft --explore lens {IDEA}").status == 200
    reply = sora.fake.wait_for(
        lambda: sora.fake.ephemerals(CHANNEL, OWNER) and sora.fake.ephemerals(CHANNEL, OWNER)[-1],
        what="the refusal",
    )
    assert "Unknown layer `lens`" in reply.text and "`camera`, `finish`" in reply.text
    assert rows(sora, Draft) == []

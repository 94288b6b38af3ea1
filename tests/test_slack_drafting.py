"""Drafting through Slack: the edit modal, the storyboard, the goal picker, settings, budget, safety, the LLM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BOB, CHANNEL, OWNER, Bot, make_bot
from openai_fake import FakeOpenAI, tiny_png
from slack_sdk import WebClient
from test_slack_loop import _all_text, draft, rows, wait_until

from bot import storyboard
from bot.domain import PromptSpec
from devkit.slack_api import Ephemeral, FakeSlack
from handlers import blocks, modals
from storage.models import Draft, Generation, Round, Spend


def latest_card(sora: Bot, user: str = OWNER) -> Ephemeral:
    return sora.fake.ephemerals(CHANNEL, user)[-1]


def open_edit(sora: Bot, card: Ephemeral) -> dict[str, Any]:
    seen = len(sora.fake.views())
    assert sora.sim.click_button(OWNER, message=card, action_id=blocks.EDIT).status == 200
    return sora.fake.wait_for(
        lambda: sora.fake.views()[seen:] and sora.fake.views()[-1].view, what="the modal"
    )


def values_of(view: dict[str, Any], **changes: str) -> dict[str, dict[str, Any]]:
    """The modal's state as Slack would submit it: initial values, with `changes` typed over them."""
    state: dict[str, dict[str, Any]] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        if element["type"] == "static_select":
            value = changes.get(block_id) or (element.get("initial_option") or {}).get("value")
            option = {"text": {"type": "plain_text", "text": value}, "value": value} if value else None
            state[block_id] = {"value": {"type": "static_select", "selected_option": option}}
        elif element["type"] == "file_input":
            state[block_id] = {"value": {"type": "file_input", "files": []}}
        else:
            state[block_id] = {"value": changes.get(block_id, element.get("initial_value", ""))}
    return state


def test_edit_opens_a_modal_with_every_field_and_reports_bad_values_inline(sora: Bot) -> None:
    card = draft(sora)
    view = open_edit(sora, card)
    ids = {b.get("block_id") for b in view["blocks"]}
    assert {"subject", "action", "camera", "environment", "finish", "intent", "aspect", "seconds"} <= ids
    assert {"variations", "provider", "goal", "reference"} <= ids
    response = sora.sim.submit_view(OWNER, view=view, values=values_of(view, subject="", seconds="99"))
    assert response.status == 200 and response.json is not None
    assert response.json["response_action"] == "errors"
    assert set(response.json["errors"]) == {"subject", "seconds"}
    assert "2 to 20" in response.json["errors"]["seconds"]


def test_a_valid_edit_replaces_the_private_card_with_the_checked_draft(sora: Bot) -> None:
    card = draft(sora)
    view = open_edit(sora, card)
    changed = values_of(view, camera="slow orbit around the robot", seconds="8", variations="4")
    assert sora.sim.submit_view(OWNER, view=view, values=changed).status == 200
    updated = sora.fake.wait_for(
        lambda: "slow orbit" in _all_text(latest_card(sora)) and latest_card(sora), what="the edited card"
    )
    assert "8 s" in _all_text(updated) and "4 variations" in _all_text(updated)
    [row] = rows(sora, Draft)
    assert row.seconds == 8 and row.variations == 4 and row.spec["camera"] == "slow orbit around the robot"


def test_a_reference_image_makes_the_draft_image_to_video_and_a_non_image_is_refused(sora: Bot) -> None:
    client = WebClient(token="xoxb-test", base_url=sora.fake.api_url)
    image = client.files_upload_v2(content=tiny_png(), filename="frame.png", channel=CHANNEL)["files"][0]
    text = client.files_upload_v2(content=b"not an image at all", filename="notes.png", channel=CHANNEL)[
        "files"
    ][0]
    card = draft(sora)
    for upload, expected in ((text, "not a PNG, JPEG or WebP"), (image, "Image-to-video")):
        view = open_edit(sora, card)
        state = values_of(view)
        file = next(f for f in sora.fake.files() if f.id == upload["id"]).to_slack()
        file["mimetype"] = "image/png"  # the extension lies; only the bytes tell
        state["reference"] = {"value": {"type": "file_input", "files": [file]}}
        assert sora.sim.submit_view(OWNER, view=view, values=state).status == 200
        sora.fake.wait_for(
            lambda e=expected: any(e in _all_text(m) for m in sora.fake.ephemerals(CHANNEL, OWNER)),
            what=expected,
        )
    [row] = rows(sora, Draft)
    assert row.reference_path and sora.services.assets.fetch(row.reference_path).read_bytes() == tiny_png()


def test_the_goal_picker_with_a_choice_changes_aspect_length_and_count(sora: Bot) -> None:
    card = draft(sora)
    block = next(b for b in card.blocks if b["type"] == "actions")
    payload_choice = {"text": {"type": "plain_text", "text": "Social teaser"}, "value": "social_teaser"}
    response = sora.sim.select(
        OWNER, action_id=blocks.GOAL, block_id=block["block_id"], message=card, option=payload_choice
    )
    assert response.status == 200
    updated = sora.fake.wait_for(
        lambda: "Goal: Social teaser" in _all_text(latest_card(sora)) and latest_card(sora),
        what="the re-draft",
    )
    assert "9:16" in _all_text(updated) and "6 s" in _all_text(updated)


def test_the_storyboard_modal_reports_bad_cards_inline_and_drafts_good_ones_with_their_rhythm(
    sora: Bot,
) -> None:
    assert sora.sim.command(OWNER, CHANNEL, "storyboard a small robot in a neon alley").status == 200
    view = sora.fake.wait_for(lambda: sora.fake.views() and sora.fake.views()[-1].view, what="the storyboard")
    assert view["callback_id"] == modals.STORYBOARD_CALLBACK
    bad = values_of(view, **{"beat-0": "the robot rolls in", "beat-1": "", "beat-1-start": "abc"})
    response = sora.sim.submit_view(OWNER, view=view, values=bad)
    assert response.json is not None and response.json["response_action"] == "errors"
    assert any(key.startswith("beat-1") for key in response.json["errors"])
    good = values_of(
        view,
        **{
            "beat-0": "the robot rolls into the alley",
            "beat-1": "it stops at a puddle",
            "beat-1-start": "1",
            "beat-2": "it looks up at the neon sign",
            "beat-2-start": "5",
        },
    )
    assert sora.sim.submit_view(OWNER, view=view, values=good).status == 200
    card = sora.fake.wait_for(
        lambda: next((e for e in sora.fake.ephemerals(CHANNEL, OWNER) if "Storyboard" in _all_text(e)), None),
        what="the storyboard draft",
    )
    text = _all_text(card)
    assert "it stops at a puddle" in text and "hard cuts" in text, "0 s → 1 s is closer than the minimum gap"
    [row] = rows(sora, Draft)
    assert row.seconds == 8
    assert storyboard.rhythm(PromptSpec.from_dict(row.spec).beats, seconds=row.seconds) == (0.0, 0.125, 0.625)


# --- settings, budget, safety -----------------------------------------------------------------


@pytest.fixture
def priced(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    made = make_bot(fake_slack, tmp_path, env={"SORA_BOT_PRICES": "local=0.10"})
    yield made
    made.server.stop()
    made.runtime.close()


def test_settings_show_and_change_the_channel_defaults(sora: Bot) -> None:
    sora.sim.command(OWNER, CHANNEL, "settings")
    sora.sim.command(OWNER, CHANNEL, "settings vote=30 blind=on budget=12.5 goal=social")
    sora.sim.command(OWNER, CHANNEL, "settings provider=runway")
    replies = sora.fake.wait_for(
        lambda: len(sora.fake.ephemerals(CHANNEL, OWNER)) >= 3 and sora.fake.ephemerals(CHANNEL, OWNER),
        what="three replies",
    )
    texts = [_all_text(r) for r in replies]
    assert any("no limit" in t for t in texts)
    assert any(
        "30 minutes" in t and "blind: on" in t and "$12.50 a day" in t and "Social teaser" in t for t in texts
    )
    assert any("not configured" in t for t in texts)
    card = draft(sora)
    assert "Goal: Social teaser" in _all_text(card) and "9:16" in _all_text(card)


def test_a_spent_budget_refuses_generate_and_submits_nothing(priced: Bot) -> None:
    priced.sim.command(OWNER, CHANNEL, "settings budget=1.00")
    wait_until(lambda: priced.fake.ephemerals(CHANNEL, OWNER), "the settings reply")
    card = draft(priced)  # 3 × 4 s at $0.10/s = $1.20
    assert "$1.20" in _all_text(card)
    priced.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    refusal = priced.fake.wait_for(
        lambda: next(
            (e for e in priced.fake.ephemerals(CHANNEL, OWNER) if "Nothing was submitted" in e.text), None
        ),
        what="the budget refusal",
    )
    assert "$1.00" in refusal.text and "Nothing was submitted" in refusal.text
    assert rows(priced, Round) == [] and rows(priced, Generation) == [] and rows(priced, Spend) == []
    assert rows(priced, Draft)[0].status == "open", "the draft can still be edited and generated"


def test_a_blocked_draft_says_which_rule_offers_safer_words_and_cannot_be_generated(sora: Bot) -> None:
    card = draft(sora, "Mickey Mouse dances on a rooftop at night, slow push-in")
    text = _all_text(card)
    assert "Blocked" in text and "copyrighted character" in text and "Safer" in text
    assert blocks.GENERATE not in json.dumps(card.blocks)
    [row] = rows(sora, Draft)
    sora.sim.click(OWNER, action_id=blocks.GENERATE, value=str(row.id), message=card, channel_id=CHANNEL)
    refusal = sora.fake.wait_for(
        lambda: next((e for e in sora.fake.ephemerals(CHANNEL, OWNER) if "safety" in e.text), None),
        what="the safety refusal",
    )
    assert "copyrighted_character" in refusal.text
    assert rows(sora, Generation) == []


def test_cancel_by_reaction_works_only_for_the_person_who_asked(sora: Bot) -> None:
    card = draft(sora)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    wait_until(
        lambda: len([g for g in rows(sora, Generation) if g.message_ts]) == 3, "the variation messages"
    )
    first = next(g for g in rows(sora, Generation) if g.number == 1)
    assert first.message_ts
    sora.sim.react(BOB, CHANNEL, first.message_ts, "x")
    refusal = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, BOB), what="the refusal")
    assert "Only the person who asked for #1" in refusal[0].text
    sora.sim.react(OWNER, CHANNEL, first.message_ts, "x")
    wait_until(
        lambda: next(g for g in rows(sora, Generation) if g.number == 1).status == "cancelled", "cancel"
    )
    sora.sweep_until_idle()
    statuses = sorted(g.status for g in rows(sora, Generation))
    assert statuses == ["cancelled", "completed", "completed"]
    assert sorted(f.title for f in sora.fake.files()) == ["Contact sheet", "Variation #2", "Variation #3"]


# --- the LLM drafter --------------------------------------------------------------------------


def test_with_an_openai_key_the_card_comes_from_the_model_and_falls_back_with_a_note(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    with FakeOpenAI(
        draft={
            "subject": "a small delivery robot",
            "action": "rolls through puddles",
            "camera": "low tracking shot",
            "environment": "a neon alley at night",
            "finish": "soft film grain",
            "intent": "8-second teaser",
            "beats": [],
        }
    ) as openai_fake:
        made = make_bot(
            fake_slack, tmp_path, env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_fake.base_url}
        )
        try:
            card = draft(made, "robot in the rain")
            assert "low tracking shot" in _all_text(card)
            assert openai_fake.requests("/v1/responses") and openai_fake.requests("/v1/moderations")
            openai_fake.fail_next("/v1/responses", 500, times=3)
            card = draft(made, "robot in the rain, slow dolly-in")
            assert "offline" in _all_text(card)
        finally:
            made.server.stop()
            made.runtime.close()


def test_a_drafting_server_that_only_speaks_chat_drafts_the_card_in_the_ideas_language(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    japanese = {
        "subject": "小さな配達ロボット",
        "action": "雨の路地を進む",
        "camera": "ロボットの高さでゆっくりドリーイン",
        "environment": "ピンクのネオンが映る水たまり",
        "finish": "柔らかいフィルムグレイン",
        "intent": "8秒のティーザー、16:9",
        "beats": [],
    }
    with FakeOpenAI(draft=japanese, responses=False) as local_llm:
        # Ollama-style: a base URL and a model, no key at all; moderation and keyframes stay off.
        env = {"OPENAI_DRAFT_BASE_URL": local_llm.base_url, "OPENAI_DRAFT_MODEL": "llama3.2"}
        made = make_bot(fake_slack, tmp_path, env=env)
        try:
            card = draft(made, "雨の路地を走る小さな配達ロボット")
            assert "小さな配達ロボット" in _all_text(card) and "offline" not in _all_text(card)
            card = draft(made, "ネオンの路地でゆっくり止まるロボット")
            assert "小さな配達ロボット" in _all_text(card)
            assert [r.status for r in local_llm.requests("/v1/responses")] == [404]
            chats = local_llm.requests("/v1/chat/completions")
            assert [r.body["model"] for r in chats] == ["llama3.2", "llama3.2"]
            assert "write every field and beat in Japanese" in chats[0].body["messages"][0]["content"]
            assert local_llm.requests("/v1/moderations") == []
        finally:
            made.server.stop()
            made.runtime.close()


def test_a_keyframe_from_the_image_model_makes_the_draft_image_to_video_and_a_failure_leaves_a_note(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    with FakeOpenAI() as openai_fake:
        made = make_bot(
            fake_slack, tmp_path, env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_fake.base_url}
        )
        try:
            card = draft(made)
            openai_fake.fail_next("/v1/images/generations", 500, times=2)
            for expected in ("image model refused or failed", "Image-to-video"):
                view = open_edit(made, card)
                assert any(b.get("block_id") == "keyframe" for b in view["blocks"])
                state = values_of(view)
                state["keyframe"] = {
                    "value": {"type": "checkboxes", "selected_options": [{"value": modals.KEYFRAME}]}
                }
                assert made.sim.submit_view(OWNER, view=view, values=state).status == 200
                made.fake.wait_for(lambda e=expected: e in _all_text(latest_card(made)), what=expected)
            request = openai_fake.requests("/v1/images/generations")[-1]
            assert request.body["size"] == "1280x720"
            [row] = rows(made, Draft)
            assert (
                row.reference_path
                and made.services.assets.fetch(row.reference_path).read_bytes() == tiny_png()
            )
        finally:
            made.server.stop()
            made.runtime.close()


def test_the_minimum_gap_between_storyboard_cards_is_configurable(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    made = make_bot(fake_slack, tmp_path, env={"SORA_BOT_MIN_BEAT_GAP": "3"})
    try:
        card = made.services.drafts.create_storyboard_draft(
            team_id="T",
            channel_id=CHANNEL,
            user_id=OWNER,
            idea="a robot in an alley",
            seconds="8",
            goal=None,
            rows=[("the robot rolls in", "0"), ("it stops at a puddle", "2"), ("", ""), ("", "")],
        )
        assert any(f.rule == "beats_too_close" for f in card.findings), "2 s apart is under the 3 s minimum"
    finally:
        made.server.stop()
        made.runtime.close()

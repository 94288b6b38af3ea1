"""A variation in Slack: its message and its clip are one votable thing, its buttons and modals, its labels.

Everything goes through signed HTTP into the real Bolt app, whose real WebClient talks to the fake Slack."""

from __future__ import annotations

import json

from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, Bot
from test_slack_loop import _all_text, ready_round, rows, settle, variation_messages, votes, wait_until

from bot import replies
from devkit.slack_api import Message, View
from handlers import blocks
from storage.models import Generation, Pattern, Round


def clip_message(sora: Bot, parent: Message, number: int) -> Message:
    """The message Slack shared variation #`number`'s clip as (a message of its own in the thread)."""
    round_id = rows(sora, Round)[0].id
    name = f"round-{round_id}-variation-{number}.mp4"
    return next(
        m
        for m in sora.fake.messages(CHANNEL, thread_ts=parent.ts)
        if any(f.filename == name for f in m.files)
    )


def generation(sora: Bot, number: int) -> Generation:
    return next(g for g in rows(sora, Generation) if g.number == number)


# --- a reaction on the clip is a vote -----------------------------------------------------------


def test_each_clip_is_mapped_to_its_variation_when_it_is_uploaded(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    for number in (1, 2, 3):
        clip = clip_message(sora, parent, number)
        row = generation(sora, number)
        assert row.clip_ts == clip.ts and row.clip_file_id == clip.files[0].id
        assert row.clip_ts != row.message_ts


def test_a_reaction_on_the_clip_counts_as_a_vote_for_its_variation(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, clip_message(sora, parent, 2).ts, "+1")
    wait_until(lambda: len(votes(sora)) == 1, "the vote")
    assert votes(sora)[0].generation_id == generation(sora, 2).id
    settle(sora)
    wait_until(lambda: "*#2* ▇▇▇▇▇ 1" in _all_text(sora.fake.message(CHANNEL, parent.ts)), "the tally")


def test_one_person_reacting_on_both_the_message_and_the_clip_is_one_vote(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    clip = clip_message(sora, parent, 2)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(BOB, CHANNEL, clip.ts, "thumbsup")  # the same emoji, spelt Slack's other way
    sora.sim.react(BOB, CHANNEL, clip.ts, "fire")  # another emoji from the same person: still one voter
    # A row per reaction held, on the message that holds it; counted, they are one person's one vote.
    wait_until(lambda: len(votes(sora)) == 3, "three vote rows")
    assert sorted((v.emoji, v.source) for v in votes(sora)) == [
        ("+1", "clip"),
        ("+1", "message"),
        ("fire", "clip"),
    ]
    settle(sora)
    wait_until(lambda: "(1 voter)" in _all_text(sora.fake.message(CHANNEL, parent.ts)), "one voter")
    assert "*#2* ▇▇▇▇▇ 1" in _all_text(sora.fake.message(CHANNEL, parent.ts))
    # Taking the :+1: off the clip leaves the one on the message: the vote stands.
    sora.sim.unreact(BOB, CHANNEL, clip.ts, "thumbsup")
    sora.sim.unreact(BOB, CHANNEL, clip.ts, "fire")
    wait_until(lambda: len(votes(sora)) == 1, "the fire vote to go")
    assert votes(sora)[0].emoji == "+1"
    sora.sim.unreact(BOB, CHANNEL, messages[2].ts, "+1")
    wait_until(lambda: not votes(sora), "the vote to go once it is gone from both")


def test_a_clip_slack_had_not_shared_yet_is_found_when_someone_reacts_on_it(sora: Bot) -> None:
    sora.fake.share_slowly(times=100)  # every files.info right after an upload: not shared yet
    parent, _ = ready_round(sora)
    assert all(g.clip_file_id and g.clip_ts is None for g in rows(sora, Generation))
    sora.fake.share_slowly(times=0)
    clip = clip_message(sora, parent, 3)
    sora.sim.react(CAROL, CHANNEL, clip.ts, "heart")
    wait_until(lambda: len(votes(sora)) == 1, "the vote")
    assert votes(sora)[0].generation_id == generation(sora, 3).id
    assert generation(sora, 3).clip_ts == clip.ts


def test_reactions_on_clips_that_no_event_reported_count_when_the_round_closes(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    # Slack holds these, but the bot never heard of them (a lost event, a crash after the 200).
    sora.fake.record_reaction(CHANNEL, clip_message(sora, parent, 1).ts, "+1", BOB)
    sora.fake.record_reaction(CHANNEL, clip_message(sora, parent, 1).ts, "+1", CAROL)
    sora.fake.record_reaction(CHANNEL, messages[1].ts, "+1", CAROL)  # Carol on both: one vote
    sora.fake.record_reaction(CHANNEL, messages[3].ts, "fire", OWNER)
    sora.sim.click_button(OWNER, message=sora.fake.message(CHANNEL, parent.ts), action_id="round_close")
    announcement = sora.fake.wait_for(
        lambda: next((m for m in sora.fake.messages(CHANNEL, thread_ts=parent.ts) if "wins" in m.text), None),
        what="the announcement",
    )
    assert "#1 wins" in announcement.text and "2 votes from 3 voters" in announcement.text
    held = [v for v in votes(sora) if v.generation_id == generation(sora, 1).id]
    assert sorted((v.user_id, v.source) for v in held) == [(BOB, "clip"), (CAROL, "clip"), (CAROL, "message")]
    assert set(variation_messages(sora, parent)) == {1, 2, 3}


# --- buttons ------------------------------------------------------------------------------------

BUTTONS = {
    blocks.REMIX,
    blocks.RECUT,
    blocks.EXTEND,
    blocks.LOOP,
    blocks.AGAIN,
    blocks.PICK,
    blocks.SAVE,
}


def buttons(message: Message) -> set[str]:
    return {e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def fresh(sora: Bot, message: Message) -> Message:
    found = sora.fake.message(CHANNEL, message.ts)
    assert found is not None
    return found


def press(sora: Bot, user: str, message: Message, action_id: str) -> None:
    assert sora.sim.click_button(user, message=fresh(sora, message), action_id=action_id).status == 200


def new_variation(sora: Bot, parent: Message, number: int) -> tuple[Generation, Message]:
    wait_until(lambda: any(g.number == number for g in rows(sora, Generation)), f"variation #{number}")
    sora.sweep_until_idle()
    settle(sora)
    message = sora.fake.wait_for(
        lambda: variation_messages(sora, parent).get(number), what=f"the message of #{number}"
    )
    return generation(sora, number), message


def test_every_finished_variation_has_its_buttons(sora: Bot) -> None:
    parent, _messages = ready_round(sora)
    settle(sora)
    for message in variation_messages(sora, parent).values():
        assert buttons(message) == BUTTONS, _all_text(message)
    assert "react on it or here to vote" in _all_text(variation_messages(sora, parent)[1])


def test_loop_button_adds_a_loop_of_that_variation_labelled_with_its_real_length(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    press(sora, BOB, messages[1], blocks.LOOP)
    row, message = new_variation(sora, parent, 4)
    assert row.kind == "loop" and row.parent_id == generation(sora, 1).id and row.requested_by == BOB
    assert row.clip_seconds is not None and row.clip_seconds > 0
    text = _all_text(message)
    assert "loop of #1" in text and f"→ {blocks.seconds(row.clip_seconds)} s" in text


def test_again_button_re_rolls_that_variation_and_shows_its_lineage(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    press(sora, CAROL, messages[2], blocks.AGAIN)
    row, message = new_variation(sora, parent, 4)
    assert row.kind == "again" and row.parent_id == generation(sora, 2).id
    assert row.prompt == generation(sora, 2).prompt
    assert "again of #2" in _all_text(message)


def test_a_bare_again_reply_says_it_re_rolls_the_rounds_prompt(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "again")
    _, message = new_variation(sora, parent, 4)
    assert "again of the round's prompt" in _all_text(message)


def test_pick_by_someone_else_is_refused_privately_and_by_the_owner_closes_the_round(sora: Bot) -> None:
    _parent, messages = ready_round(sora)
    press(sora, BOB, messages[3], blocks.PICK)
    note = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, BOB), what="the refusal")
    assert "Only the person who started this round" in note[0].text
    assert rows(sora, Round)[0].status == "open"
    press(sora, OWNER, messages[3], blocks.PICK)
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the close")
    assert rows(sora, Round)[0].winner_generation_id == generation(sora, 3).id
    settle(sora)
    wait_until(lambda: blocks.PICK not in buttons(fresh(sora, messages[3])), "Pick to go once it is closed")


def test_save_keeps_a_variation_as_a_pattern_without_closing_the_round(sora: Bot) -> None:
    _parent, messages = ready_round(sora)
    press(sora, BOB, messages[2], blocks.SAVE)
    note = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, BOB), what="the confirmation")
    assert "Saved #2" in note[0].text and "stays open" in note[0].text
    [pattern] = rows(sora, Pattern)
    assert (pattern.generation_id, pattern.saved_by) == (generation(sora, 2).id, BOB)
    assert pattern.prompt == generation(sora, 2).prompt
    assert rows(sora, Round)[0].status == "open"
    press(sora, CAROL, messages[2], blocks.SAVE)
    again = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, CAROL), what="the second save")
    assert "already saved" in again[0].text and len(rows(sora, Pattern)) == 1
    # The round's winner is a row of its own, next to the saved one.
    press(sora, OWNER, messages[2], blocks.PICK)
    wait_until(lambda: len(rows(sora, Pattern)) == 2, "the winner's row")
    sora.sim.command(DAN, CHANNEL, "recall neon robot")
    reply = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, DAN), what="the recall")[0]
    assert f"<@{BOB}> #2 saved" in _all_text(reply) and "#2 won" in _all_text(reply)


# --- modals -------------------------------------------------------------------------------------


def open_modal(sora: Bot, user: str, message: Message, action_id: str) -> View:
    seen = len(sora.fake.views())
    press(sora, user, message, action_id)
    view = sora.fake.wait_for(lambda: sora.fake.views()[seen:], what="the modal")[0]
    for block in view.view["blocks"]:
        if block["type"] == "input" and block["element"]["type"] == "plain_text_input":
            assert block["element"]["max_length"] <= replies.MAX_CHANGE_CHARS, block
    return view


def submit(sora: Bot, view: View, **values: str) -> dict[str, str] | None:
    response = sora.sim.submit_view(BOB, view=view, values={k: {"value": v} for k, v in values.items()})
    assert response.status == 200
    if response.json and response.json.get("response_action") == "errors":
        return dict(response.json["errors"])
    return None


def test_remix_modal_checks_its_one_field_inline_then_remixes_that_variation(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    view = open_modal(sora, BOB, messages[2], blocks.REMIX)
    assert "One change per remix" in json.dumps(view.view)
    assert submit(sora, view, change="   ") == {"change": "Say what should change, e.g. make it golden hour."}
    too_long = submit(sora, view, change="x" * (replies.MAX_CHANGE_CHARS + 1))
    assert too_long is not None and "under 400 characters" in too_long["change"]
    assert len(rows(sora, Generation)) == 3
    assert submit(sora, view, change="make it golden hour") is None
    row, message = new_variation(sora, parent, 4)
    assert row.kind == "remix" and row.parent_id == generation(sora, 2).id and "golden hour" in row.prompt
    assert "remix of #2" in _all_text(message)


def test_recut_modal_checks_its_times_inline_and_the_label_says_the_new_length(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    view = open_modal(sora, BOB, messages[1], blocks.RECUT)
    assert "#1 is 4 s long" in json.dumps(view.view)
    problems = submit(sora, view, start="²", end="9")
    assert problems is not None and set(problems) == {"start", "end"}
    assert "only 4.0 s long" in problems["end"]
    later = submit(sora, view, start="3", end="2")
    assert later is not None and "after the start" in later["end"]
    assert submit(sora, view, start="1.5", end="4") is None
    row, message = new_variation(sora, parent, 4)
    assert (row.kind, row.edit_start, row.edit_end) == ("recut", 1.5, 4.0)
    text = _all_text(message)
    assert "recut of #1" in text and "1.5–4 s" in text and "→ 2.5 s" in text
    assert "2.5 s · " in text


def test_extend_modal_checks_its_fields_inline_and_the_label_says_the_joined_length(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    view = open_modal(sora, BOB, messages[3], blocks.EXTEND)
    assert "last frame" in json.dumps(view.view)
    problems = submit(sora, view, seconds="٣", direction="x" * (replies.MAX_CHANGE_CHARS + 1))
    assert problems is not None and set(problems) == {"seconds", "direction"}
    assert submit(sora, view, seconds="25", direction="") == {"seconds": "1–20 whole seconds, like 4."}
    assert submit(sora, view, seconds="2", direction="the robot turns to camera") is None
    row, message = new_variation(sora, parent, 4)
    assert row.kind == "extend" and row.parent_id == generation(sora, 3).id
    assert row.clip_seconds is not None
    text = _all_text(message)
    assert "extend of #3" in text and "the robot turns to camera" in text
    assert f"→ {blocks.seconds(row.clip_seconds)} s in all" in text
    assert row.clip_seconds > generation(sora, 3).clip_seconds  # type: ignore[operator]

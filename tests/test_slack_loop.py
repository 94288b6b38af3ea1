"""The whole loop through signed HTTP into the real Bolt app, whose real WebClient talks to the fake Slack."""

from __future__ import annotations

import json
import time
from typing import TypeVar

from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, Bot
from sqlmodel import select

from devkit.slack_api import Ephemeral, Message
from handlers import blocks
from storage.models import Generation, Pattern, Round, Vote

T = TypeVar("T")

IDEA = (
    "a small delivery robot rolls through a rain-soaked neon alley at night, slow dolly-in, soft film grain"
)


def _all_text(message: Message | Ephemeral) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def draft(sora: Bot, text: str = IDEA, *, user: str = OWNER) -> Ephemeral:
    seen = len(sora.fake.ephemerals(CHANNEL, user))
    response = sora.sim.command(user, CHANNEL, f"draft {text}")
    assert response.status == 200
    return sora.fake.wait_for(
        lambda: sora.fake.ephemerals(CHANNEL, user)[seen:] and sora.fake.ephemerals(CHANNEL, user)[-1],
        what="the draft card",
    )


def generate(sora: Bot) -> Message:
    card = draft(sora)
    assert sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    parent = sora.fake.wait_for(
        lambda: next((m for m in sora.fake.messages(CHANNEL) if m.text.startswith("Round:")), None),
        what="the round message",
    )
    sora.fake.wait_for(lambda: len(variation_messages(sora, parent)) == 3, what="three variation messages")
    return parent


def variation_messages(sora: Bot, parent: Message) -> dict[int, Message]:
    found = {}
    for message in sora.fake.messages(CHANNEL, thread_ts=parent.ts):
        if message.text.startswith("Variation #"):
            found[int(message.text.split("#")[1].split(":")[0])] = message
    return found


def rows(sora: Bot, model: type[T]) -> list[T]:
    with sora.services.store.read() as repo:
        return list(repo.session.exec(select(model)).all())


def ready_round(sora: Bot) -> tuple[Message, dict[int, Message]]:
    parent = generate(sora)
    sora.sweep_until_idle()
    return parent, variation_messages(sora, parent)


def votes(sora: Bot) -> list[Vote]:
    """The votes that count now (a removed vote stays as an inactive row, so a late add cannot revive it)."""
    return [v for v in rows(sora, Vote) if v.active]


def settle(sora: Bot) -> None:
    """Let the outbox send the updates it coalesced (at most one chat.update per message per second)."""
    sora.clock.advance(seconds=2)
    sora.services.posting.deliver()


def wait_until(predicate, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- draft ------------------------------------------------------------------------------------


def test_draft_command_shows_an_ephemeral_card_with_layers_checklist_cost_and_buttons(sora: Bot) -> None:
    card = draft(sora)
    text = _all_text(card)
    for label in ("Subject", "Action", "Camera", "Environment", "Finish", "Output intent"):
        assert label in text
    assert "Checklist" in text and "estimated cost" in text and "3 variations" in text
    assert {
        b["action_id"] for block in card.blocks if block["type"] == "actions" for b in block["elements"]
    } == {blocks.GENERATE, blocks.EDIT, blocks.GOAL, blocks.EXPLORE, blocks.CANCEL}
    assert sora.fake.messages(CHANNEL) == [], "a draft is private until Generate"


def test_empty_draft_and_unknown_subcommand_get_specific_ephemeral_replies(sora: Bot) -> None:
    sora.sim.command(OWNER, CHANNEL, "draft")
    sora.sim.command(OWNER, CHANNEL, "drafft a cat")
    replies = sora.fake.wait_for(
        lambda: len(sora.fake.ephemerals(CHANNEL, OWNER)) >= 2 and sora.fake.ephemerals(CHANNEL, OWNER),
        what="two replies",
    )
    texts = sorted(r.text for r in replies)
    assert any("needs an idea" in t for t in texts), texts
    assert any(("draft" in t and "Unknown" in t) or "unknown" in t for t in texts), texts
    assert rows(sora, Generation) == []


def test_mentions_in_an_idea_are_escaped_so_they_cannot_ping_anyone(sora: Bot) -> None:
    card = draft(sora, "a cat <!channel> dances with <@U999> near <https://evil.example|a link>")
    text = _all_text(card)
    assert "<!channel>" not in text and "<@U999>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


def test_cancel_removes_the_draft_and_generate_then_refuses_it(sora: Bot) -> None:
    card = draft(sora)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.CANCEL)
    sora.fake.wait_for(lambda: not sora.fake.ephemerals(CHANNEL, OWNER), what="the card to be deleted")
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    refusal = sora.fake.wait_for(
        lambda: next((e for e in sora.fake.ephemerals(CHANNEL, OWNER) if "already" in e.text), None),
        what="a refusal",
    )
    assert "cancelled" in refusal.text
    assert rows(sora, Round) == []


# --- generate ---------------------------------------------------------------------------------


def test_generate_posts_a_round_and_one_message_per_variation_then_uploads_each_clip(sora: Bot) -> None:
    parent = generate(sora)
    messages = variation_messages(sora, parent)
    assert all("queued" in m.text for m in messages.values())
    sora.sweep_until_idle()
    messages = variation_messages(sora, parent)
    assert all("ready" in m.text for m in messages.values()), [m.text for m in messages.values()]
    files = sora.fake.files()
    titles = sorted(f.title for f in files)
    assert titles == ["Contact sheet", "Variation #1", "Variation #2", "Variation #3"]
    clip = next(f for f in files if f.title == "Variation #1")
    assert clip.content[4:8] == b"ftyp" and clip.thread_ts == parent.ts
    assert all(g.status == "completed" and g.message_ts for g in rows(sora, Generation))


def test_a_second_generate_click_on_the_same_draft_starts_no_second_round(sora: Bot) -> None:
    card = draft(sora)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    sora.fake.wait_for(
        lambda: any("already" in e.text for e in sora.fake.ephemerals(CHANNEL, OWNER)), what="the refusal"
    )
    assert len(rows(sora, Round)) == 1 and len(rows(sora, Generation)) == 3


def test_a_failed_slack_post_is_repaired_by_the_next_sweep(sora: Bot) -> None:
    card = draft(sora)
    sora.fake.fail_next("chat.postMessage", error="internal_error", times=2)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    wait_until(lambda: rows(sora, Generation), "the generation rows")
    sora.sweep_until_idle()
    parent = next(m for m in sora.fake.messages(CHANNEL) if m.text.startswith("Round:"))
    assert sorted(variation_messages(sora, parent)) == [1, 2, 3]
    assert len([m for m in sora.fake.messages(CHANNEL) if m.text.startswith("Round:")]) == 1


# --- votes ------------------------------------------------------------------------------------


def test_reactions_are_votes_counted_once_per_person_and_shown_on_the_parent(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "thumbsup::skin-tone-3")  # same vote, another spelling
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "fire")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "heart")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "eyes")  # not a vote emoji: ignored on purpose
    wait_until(lambda: len(votes(sora)) == 3, "three votes")
    settle(sora)
    wait_until(lambda: "(3 voters)" in _all_text(sora.fake.message(CHANNEL, parent.ts)), "three voters")
    text = _all_text(sora.fake.message(CHANNEL, parent.ts))
    assert "*#2* ▇▇▇▇▇ 2 ◀ leads" in text and "#1 ▇▇▁▁▁ 1" in text and "#3 ▁▁▁▁▁ 0" in text
    assert len(votes(sora)) == 3


def test_removing_a_reaction_removes_the_vote(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[3].ts, "heart")
    wait_until(lambda: len(votes(sora)) == 1, "the vote")
    sora.sim.unreact(BOB, CHANNEL, messages[3].ts, "heart")
    wait_until(lambda: not votes(sora), "the vote to go")
    settle(sora)
    wait_until(lambda: "(0 voters)" in _all_text(sora.fake.message(CHANNEL, parent.ts)), "the tally to drop")


def test_a_retried_event_id_is_answered_and_skipped(sora: Bot) -> None:
    _, messages = ready_round(sora)
    first = sora.sim.react(BOB, CHANNEL, messages[1].ts, "fire", event_id="EvSAME")
    wait_until(lambda: len(votes(sora)) == 1, "the vote")
    sora.sim.unreact(BOB, CHANNEL, messages[1].ts, "fire")
    wait_until(lambda: not votes(sora), "the removal")
    retry = sora.sim.react(BOB, CHANNEL, messages[1].ts, "fire", event_id="EvSAME", retry_num=1)
    assert first.status == retry.status == 200
    assert votes(sora) == [], "the retry of an already handled event must not vote again"


def test_reactions_on_other_messages_and_by_the_bot_are_ignored(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    assert sora.sim.react(BOB, CHANNEL, parent.ts, "+1").status == 200  # the round message itself
    assert sora.sim.react(BOB, CHANNEL, "1234.5678", "+1").status == 200  # some other message
    assert sora.sim.react(sora.fake.bot_user_id, CHANNEL, messages[1].ts, "+1").status == 200
    assert votes(sora) == []
    assert not sora.fake.ephemerals(CHANNEL, BOB)


# --- close ------------------------------------------------------------------------------------


def close(sora: Bot, parent: Message, user: str = OWNER) -> None:
    fresh = sora.fake.message(CHANNEL, parent.ts)
    assert fresh is not None
    assert sora.sim.click_button(user, message=fresh, action_id=blocks.CLOSE).status == 200


def test_only_the_owner_can_close_and_the_winner_is_announced_and_saved(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "fire")
    wait_until(lambda: len(votes(sora)) == 2, "two votes")
    close(sora, parent, user=BOB)
    refusal = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, BOB), what="the refusal")
    assert "Only the person who started this round" in refusal[0].text
    assert rows(sora, Round)[0].status == "open"
    close(sora, parent)
    announcement = sora.fake.wait_for(
        lambda: next((m for m in sora.fake.messages(CHANNEL, thread_ts=parent.ts) if "wins" in m.text), None),
        what="the winner announcement",
    )
    assert "#2 wins" in announcement.text and "2 votes from 2 voters" in announcement.text
    [pattern] = rows(sora, Pattern)
    assert pattern.outcome["winner_number"] == 2 and pattern.outcome["votes"] == 2
    settle(sora)
    parent_text = wait_until(
        lambda: (t := _all_text(sora.fake.message(CHANNEL, parent.ts))) and "#2 won" in t and t,
        "the parent to show the result",
    )
    assert blocks.CLOSE not in parent_text
    assert "winner" in variation_messages(sora, parent)[2].text or "winner" in _all_text(
        variation_messages(sora, parent)[2]
    )


def test_a_vote_after_close_is_refused_with_a_private_note(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    close(sora, parent)
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the close")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "heart")
    note = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, DAN), what="the note")
    assert "closed" in note[0].text
    assert votes(sora) == []


def test_a_round_closes_by_itself_at_its_deadline(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[3].ts, "star")
    wait_until(lambda: votes(sora), "the vote")
    sora.clock.advance(minutes=61)
    report = sora.services.sweep()
    assert report.closed == 1
    assert rows(sora, Round)[0].closed_by is None  # nobody: the deadline
    assert any("#3 wins" in m.text for m in sora.fake.messages(CHANNEL, thread_ts=parent.ts))


def test_two_close_clicks_close_the_round_once(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    snapshot = sora.fake.message(CHANNEL, parent.ts)
    assert snapshot is not None
    for _ in range(2):  # both clicks on the message as it was, before the first one removed the button
        assert sora.sim.click_button(OWNER, message=snapshot, action_id=blocks.CLOSE).status == 200
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the close")
    sora.sweep_until_idle()
    announcements = [m for m in sora.fake.messages(CHANNEL, thread_ts=parent.ts) if "Voting closed" in m.text]
    assert len(announcements) == 1


# --- replies ----------------------------------------------------------------------------------


def test_remix_reply_adds_a_linked_votable_variation_in_the_same_thread(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #2 make it golden hour")
    wait_until(lambda: len(rows(sora, Generation)) == 4, "the remix row")
    sora.fake.wait_for(lambda: 4 in variation_messages(sora, parent), what="the remix message")
    sora.sweep_until_idle()
    remix = next(g for g in rows(sora, Generation) if g.number == 4)
    two = next(g for g in rows(sora, Generation) if g.number == 2)
    assert remix.kind == "remix" and remix.parent_id == two.id and remix.change == "make it golden hour"
    assert "golden hour" in remix.prompt
    message = variation_messages(sora, parent)[4]
    assert "remix of #2" in message.text or "remix of #2" in _all_text(message)
    sora.sim.react(CAROL, CHANNEL, message.ts, "+1")
    wait_until(lambda: votes(sora), "a vote on the remix")


def test_remix_of_a_missing_variation_gets_a_specific_private_reply(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #7 make it blue")
    note = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, BOB), what="the note")
    assert "#7" in note[0].text and "#1, #2, #3" in note[0].text
    assert len(rows(sora, Generation)) == 3


def test_ordinary_conversation_in_the_thread_is_left_alone(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "I like #2, the light is great")
    sora.sim.post(BOB, CHANNEL, "remix #1 at the top level is not a thread reply")
    assert len(rows(sora, Generation)) == 3
    assert not sora.fake.ephemerals(CHANNEL, BOB)


# --- recall -----------------------------------------------------------------------------------


def test_recall_finds_the_saved_winner_and_survives_query_syntax(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    wait_until(lambda: votes(sora), "the vote")
    close(sora, parent)
    wait_until(lambda: rows(sora, Pattern), "the pattern")
    for query in ("neon robot", 'robot -laser "unbalanced', "robots AND OR NOT ("):
        seen = len(sora.fake.ephemerals(CHANNEL, CAROL))
        sora.sim.command(CAROL, CHANNEL, f"recall {query}")
        reply = sora.fake.wait_for(
            lambda s=seen: sora.fake.ephemerals(CHANNEL, CAROL)[s:], what=f"the recall of {query!r}"
        )[0]
        assert "robot" in _all_text(reply).lower() and "#1 won" in _all_text(reply), query
    seen = len(sora.fake.ephemerals(CHANNEL, CAROL))
    sora.sim.command(CAROL, CHANNEL, "recall submarine")
    reply = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, CAROL)[seen:], what="no match")[0]
    assert "No saved patterns" in reply.text


# --- the edge ---------------------------------------------------------------------------------


def test_a_bad_signature_gets_401_and_touches_nothing(sora: Bot) -> None:
    body = b"command=%2Fsora&text=draft+a+cat&user_id=U1&channel_id=C1&team_id=T1&response_url=http%3A%2F%2Fx"
    response = sora.sim.post_raw(body, content_type="application/x-www-form-urlencoded", signature="v0=bad")
    assert response.status == 401
    assert [c for c in sora.fake.calls() if c.method != "auth.test"] == []
    with sora.services.store.transaction() as repo:
        assert repo.session.exec(select(Round)).all() == []


def test_healthz_reports_the_database(sora: Bot) -> None:
    import urllib.request

    with urllib.request.urlopen(sora.server.url + "/healthz") as response:
        assert response.status == 200
        assert json.loads(response.read())["database"] == "ok"


def test_help_and_status_answer_privately(sora: Bot) -> None:
    sora.sim.command(OWNER, CHANNEL, "help")
    sora.sim.command(OWNER, CHANNEL, "status")
    replies = sora.fake.wait_for(
        lambda: len(sora.fake.ephemerals(CHANNEL, OWNER)) >= 2 and sora.fake.ephemerals(CHANNEL, OWNER),
        what="help and status",
    )
    text = " ".join(_all_text(r) for r in replies)
    assert "/sora draft" in text and "Providers configured" in text and "local" in text


def test_recut_and_loop_replies_post_new_clips_linked_to_their_source(sora: Bot) -> None:
    parent, _ = ready_round(sora)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "recut #2 0.5-2.5")
    sora.sim.reply(CAROL, CHANNEL, parent.ts, "loop #1")
    wait_until(lambda: len(rows(sora, Generation)) == 5, "two edits")
    sora.fake.wait_for(lambda: {4, 5} <= set(variation_messages(sora, parent)), what="their messages")
    sora.sweep_until_idle()
    titles = sorted(f.title for f in sora.fake.files())
    assert "Variation #4" in titles and "Variation #5" in titles
    recut = next(g for g in rows(sora, Generation) if g.kind == "recut")  # the two replies race for #4
    text = _all_text(variation_messages(sora, parent)[recut.number])
    assert "recut of #2" in text and "0.5–2.5 s" in text
    sora.sim.reply(BOB, CHANNEL, parent.ts, "recut #1 2-30")
    note = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, BOB), what="the range refusal")
    assert "only 4.0 s long" in note[0].text

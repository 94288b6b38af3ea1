"""A variation in Slack: its message and its clip are one votable thing, its buttons and modals, its labels.

Everything goes through signed HTTP into the real Bolt app, whose real WebClient talks to the fake Slack."""

from __future__ import annotations

from conftest import BOB, CAROL, CHANNEL, OWNER, Bot
from test_slack_loop import _all_text, ready_round, rows, settle, variation_messages, votes, wait_until

from devkit.slack_api import Message
from storage.models import Generation, Round


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
    wait_until(lambda: "#2 ▇ 1" in _all_text(sora.fake.message(CHANNEL, parent.ts)), "the tally")


def test_one_person_reacting_on_both_the_message_and_the_clip_is_one_vote(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    clip = clip_message(sora, parent, 2)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(BOB, CHANNEL, clip.ts, "thumbsup")  # the same emoji, spelt Slack's other way
    sora.sim.react(BOB, CHANNEL, clip.ts, "fire")  # another emoji from the same person: still one voter
    wait_until(lambda: len(votes(sora)) == 2, "two vote rows")
    settle(sora)
    wait_until(lambda: "(1 voter)" in _all_text(sora.fake.message(CHANNEL, parent.ts)), "one voter")
    assert "#2 ▇ 1" in _all_text(sora.fake.message(CHANNEL, parent.ts))
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
    assert len([v for v in votes(sora) if v.generation_id == generation(sora, 1).id]) == 2
    assert set(variation_messages(sora, parent)) == {1, 2, 3}

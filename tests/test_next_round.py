"""Rounds follow each other in one thread, through the signed real app against the fake Slack: work after a close
(or a tie) opens the next round as a reply in the thread, the announced winner and its pattern stay as they
were, each round counts its own votes and closes on its own, and `#N` names a variation of any round there.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, Bot, make_bot
from test_slack_loop import _all_text, close, ready_round, rows, settle, variation_messages, votes, wait_until
from test_vote_rules import announcements, ballot, notes, settings, thread, tie_round

from bot.domain import CloseReason
from devkit.slack_api import FakeSlack, Message
from handlers import blocks
from storage.models import Generation, Outbox, Pattern, Round


@pytest.fixture(params=["sqlite", "postgresql"])
def sora(request: pytest.FixtureRequest, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    made = make_bot(fake_slack, tmp_path, database_url=url)
    yield made
    made.server.stop()
    made.runtime.close()


def the_rounds(sora: Bot) -> list[Round]:
    return sorted(rows(sora, Round), key=lambda r: r.id or 0)


def round_message(sora: Bot, parent: Message, place: int) -> Message:
    """A following round's message: a reply in the thread."""
    return sora.fake.wait_for(
        lambda: next((m for m in thread(sora, parent) if m.text.startswith(f"Round {place}:")), None),
        what=f"round {place}'s message",
    )


def text_of(sora: Bot, ts: str) -> str:
    message = sora.fake.message(CHANNEL, ts)
    assert message is not None
    return _all_text(message)


def closed_round_one(sora: Bot) -> tuple[Message, dict[int, Message]]:
    """Round 1, closed by its owner with #2 the winner (Bob's vote)."""
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    wait_until(lambda: len(votes(sora)) == 1, "Bob's vote")
    close(sora, parent)
    wait_until(lambda: the_rounds(sora)[0].status == "closed", "round 1's close")
    sora.sweep_until_idle()
    return parent, messages


def open_round_two(sora: Bot, parent: Message, text: str = "remix #2 make it golden hour") -> Round:
    sora.sim.reply(CAROL, CHANNEL, parent.ts, text)
    wait_until(lambda: len(the_rounds(sora)) == 2, "round 2")
    sora.sweep_until_idle()
    settle(sora)
    return the_rounds(sora)[1]


def test_a_remix_after_a_close_opens_round_2_in_the_thread_and_round_1_keeps_its_winner(sora: Bot) -> None:
    parent, _ = closed_round_one(sora)
    first = the_rounds(sora)[0]
    [announced] = announcements(sora, parent)
    [kept] = rows(sora, Pattern)

    second = open_round_two(sora, parent)

    assert len(the_rounds(sora)) == 2, "one new round"
    assert (second.status, second.previous_id, second.thread_ts) == ("open", first.id, parent.ts)
    assert second.owner_id == OWNER and second.draft_id == first.draft_id and second.rules == first.rules
    assert any("#4 opens round 2 in this thread" in n for n in notes(sora, CAROL))
    # Its own message, a reply in the thread, with its place, what it follows, its bars and its deadline.
    message = round_message(sora, parent, 2)
    assert message.thread_ts == parent.ts and message.ts == second.parent_ts
    text = text_of(sora, message.ts)
    assert "Round 2 · " in text and "Follows round 1, won by #2" in text
    assert "#4 ▁▁▁▁▁ 0" in text and "Closes <!date^" in text and blocks.CLOSE in text
    # #N goes on across the thread; the remix is in round 2, linked to round 1's #2.
    remix = next(g for g in rows(sora, Generation) if g.number == 4)
    two = next(g for g in rows(sora, Generation) if g.number == 2)
    assert remix.round_id == second.id and remix.parent_id == two.id
    assert "remix of #2" in _all_text(variation_messages(sora, parent)[4])
    # Round 1 as it was announced: closed, #2 the winner, one announcement, its pattern untouched.
    first_now = the_rounds(sora)[0]
    assert (first_now.status, first_now.winner_generation_id, first_now.closes) == ("closed", two.id, 1)
    assert announcements(sora, parent) == [announced]
    assert [(p.id, p.outcome) for p in rows(sora, Pattern)] == [(kept.id, kept.outcome)]
    first_text = text_of(sora, parent.ts)
    assert "#2 won" in first_text and blocks.CLOSE not in first_text
    assert "Round 2 follows in the thread" in first_text
    # Round 2's contact sheet shows its own variations only.
    sheets = [f for f in sora.fake.files() if f.filename == f"round-{second.id}-contact-sheet.png"]
    assert len(sheets) == 1 and sheets[0].thread_ts == parent.ts
    assert sheets[0].alt_txt is not None and "(#4)" in sheets[0].alt_txt


def test_each_round_counts_only_its_own_votes(sora: Bot) -> None:
    parent, messages = closed_round_one(sora)
    second = open_round_two(sora, parent)
    four = variation_messages(sora, parent)[4]
    sora.sim.react(CAROL, CHANNEL, four.ts, "+1")
    sora.sim.react(DAN, CHANNEL, four.ts, "fire")
    wait_until(lambda: len(votes(sora)) == 3, "round 2's votes")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "heart")  # on round 1, closed
    assert any("Voting on this round has closed" in n and "#2 won" in n for n in notes(sora, DAN))
    assert {(v.round_id, v.user_id) for v in votes(sora)} == {
        (the_rounds(sora)[0].id, BOB),
        (second.id, CAROL),
        (second.id, DAN),
    }
    settle(sora)
    wait_until(lambda: "(2 voters)" in text_of(sora, round_message(sora, parent, 2).ts), "round 2's bars")
    assert "*#4* ▇▇▇▇▇ 2" in text_of(sora, round_message(sora, parent, 2).ts)
    assert "(1 voter)" in text_of(sora, parent.ts), "round 1's tally as it closed"
    close(sora, round_message(sora, parent, 2))
    sora.sweep_until_idle()
    [_, second_win] = announcements(sora, parent)
    assert "#4 wins" in second_win.text and "2 votes from 2 voters" in second_win.text


@pytest.mark.parametrize("how", ["button", "deadline", "pick"])
def test_round_2_closes_on_its_own_and_saves_a_second_version(sora: Bot, how: str) -> None:
    parent, _ = closed_round_one(sora)
    settings(sora, "vote=90")  # a change after round 1 started: round 2 keeps round 1's rules
    second = open_round_two(sora, parent)
    assert second.rules is not None and second.rules["minutes"] == 30
    sora.sim.react(DAN, CHANNEL, variation_messages(sora, parent)[4].ts, "+1")
    wait_until(lambda: len(votes(sora)) == 2, "Dan's vote")
    if how == "button":
        close(sora, round_message(sora, parent, 2))
    elif how == "deadline":
        sora.clock.advance(minutes=31)
        assert sora.services.sweep().closed == 1, "round 2 only: round 1 closed long ago"
    else:
        sora.sim.reply(OWNER, CHANNEL, parent.ts, "pick #4 warmer light")
    wait_until(lambda: the_rounds(sora)[1].status == "closed", "round 2's close")
    sora.sweep_until_idle()
    settle(sora)
    first, second = the_rounds(sora)
    assert second.close_reason == {"button": "owner", "deadline": "deadline", "pick": "pick"}[how]
    assert (first.closes, second.closes) == (1, 1)
    patterns = sorted(rows(sora, Pattern), key=lambda p: p.id or 0)
    assert [(p.round_id, p.outcome["winner_number"], p.outcome["round"]) for p in patterns] == [
        (first.id, 2, 1),
        (second.id, 4, 2),
    ]
    assert patterns[1].lineage == [4, 2], "the remix, then what it remixed in round 1"
    keys = sorted(o.key for o in rows(sora, Outbox) if o.kind == "announce")
    assert keys == [f"round-{first.id}/close-1/announce", f"round-{second.id}/close-1/announce"]
    assert "#2 won" in text_of(sora, parent.ts), "round 1's message still shows its winner"
    assert "#4 won" in text_of(sora, round_message(sora, parent, 2).ts)
    # recall finds both versions, the later one saying which round of its thread it won
    assert sora.sim.command(BOB, CHANNEL, "recall delivery robot").status == 200
    recall = sora.fake.wait_for(
        lambda: next(
            (e for e in sora.fake.ephemerals(CHANNEL, BOB) if "Patterns matching" in _all_text(e)), None
        ),
        what="the recall",
    )
    assert "#4 won" in _all_text(recall) and "round 2 of its thread" in _all_text(recall)
    assert "#2 won" in _all_text(recall)


def test_several_works_after_a_close_go_into_the_one_round_2(sora: Bot) -> None:
    parent, messages = closed_round_one(sora)
    start = threading.Barrier(2)

    def reply(text: str) -> None:
        start.wait()
        sora.sim.reply(CAROL, CHANNEL, parent.ts, text)

    works = [threading.Thread(target=reply, args=(t,)) for t in ("remix #2 at dusk", "again")]
    for work in works:
        work.start()
    for work in works:
        work.join()
    fresh = sora.fake.message(CHANNEL, messages[1].ts)
    assert fresh is not None
    assert sora.sim.click_button(BOB, message=fresh, action_id=blocks.AGAIN).status == 200
    sora.sweep_until_idle()
    settle(sora)
    first, second = the_rounds(sora)  # one round 2, however the works arrived
    later = sorted((g.number, g.round_id) for g in rows(sora, Generation) if g.number > 3)
    assert later == [(4, second.id), (5, second.id), (6, second.id)]
    assert len([m for m in thread(sora, parent) if m.text.startswith("Round 2:")]) == 1
    assert "3 variations in the thread" in text_of(sora, round_message(sora, parent, 2).ts)
    assert first.status == "closed"


def test_a_reply_naming_a_round_1_variation_after_round_2_opened_still_works(sora: Bot) -> None:
    parent, _ = closed_round_one(sora)
    second = open_round_two(sora, parent)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #2 a slower camera")  # #2 is round 1's
    wait_until(lambda: any(g.number == 5 for g in rows(sora, Generation)), "#5")
    sora.sweep_until_idle()
    five = next(g for g in rows(sora, Generation) if g.number == 5)
    two = next(g for g in rows(sora, Generation) if g.number == 2)
    assert five.round_id == second.id and five.parent_id == two.id and len(the_rounds(sora)) == 2
    assert "remix of #2" in _all_text(variation_messages(sora, parent)[5])
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #9 brighter")
    assert any(
        "There is no variation #9 in this thread" in n and "#1, #2, #3, #4, #5" in n for n in notes(sora, BOB)
    )
    sora.sim.reply(OWNER, CHANNEL, parent.ts, "pick #1")  # round 1's: that round is closed
    assert any("already closed" in n for n in notes(sora, OWNER))
    assert the_rounds(sora)[1].status == "open"
    # `/sora export` takes the channel's latest round; `/sora export <id>` any of them.
    assert sora.sim.command(OWNER, CHANNEL, "export json").status == 200
    assert sora.sim.command(OWNER, CHANNEL, f"export {the_rounds(sora)[0].id} json").status == 200
    sent = [f.filename for f in sora.fake.files() if f.channel_id == sora.fake.dm_of(OWNER)]
    assert sent == [f"round-{second.id}-decision.json", f"round-{the_rounds(sora)[0].id}-decision.json"]


def test_work_after_a_tie_opens_round_2_and_the_tie_stays_the_owners_to_break(sora: Bot) -> None:
    parent, _ = tie_round(sora)
    wait_until(lambda: the_rounds(sora)[0].status == "tied", "the tie")
    sora.sweep_until_idle()
    second = open_round_two(sora, parent, "remix #3 slower")
    first = the_rounds(sora)[0]
    assert first.status == "tied" and second.previous_id == first.id
    assert "Follows round 1, a tie its owner is picking" in text_of(sora, round_message(sora, parent, 2).ts)
    [tie] = [m for m in thread(sora, parent) if m.text.startswith("It's a tie")]
    assert sora.sim.click_button(OWNER, message=tie, action_id=blocks.TIE_PICK).status == 200  # Pick #2
    sora.sweep_until_idle()
    settle(sora)
    first, second = the_rounds(sora)
    assert first.status == "closed" and first.close_reason == CloseReason.TIE_PICK
    assert second.status == "open" and [
        g.number for g in rows(sora, Generation) if g.round_id == second.id
    ] == [4]
    wait_until(
        lambda: "Follows round 1, won by #2" in text_of(sora, round_message(sora, parent, 2).ts),
        "round 2's message to say how round 1 ended",
    )


def test_a_reaction_on_a_round_2_clip_slack_had_not_shared_yet_is_its_vote(sora: Bot) -> None:
    parent, _ = closed_round_one(sora)
    sora.fake.share_slowly(times=100)  # files.info right after round 2's upload: not shared yet
    second = open_round_two(sora, parent)
    four = next(g for g in rows(sora, Generation) if g.number == 4)
    assert four.clip_file_id and four.clip_ts is None
    sora.fake.share_slowly(times=0)
    name = f"round-{second.id}-variation-4.mp4"
    clip = next(m for m in thread(sora, parent) if any(f.filename == name for f in m.files))
    sora.sim.react(CAROL, CHANNEL, clip.ts, "heart")
    wait_until(lambda: any(v.user_id == CAROL for v in votes(sora)), "the vote on round 2's clip")
    assert next(g for g in rows(sora, Generation) if g.number == 4).clip_ts == clip.ts
    assert {(v.round_id, v.generation_id) for v in votes(sora) if v.user_id == CAROL} == {
        (second.id, four.id)
    }


def test_round_2s_message_whose_post_answer_was_lost_is_found_in_the_thread_not_posted_again(
    sora: Bot,
) -> None:
    parent, _ = closed_round_one(sora)
    sora.fake.fail_next("chat.postMessage", lose_answer=True)  # round 2's message reaches the thread
    sora.sim.reply(CAROL, CHANNEL, parent.ts, "remix #2 make it golden hour")
    wait_until(lambda: len(the_rounds(sora)) == 2, "round 2")
    sora.sweep_until_idle()
    second = the_rounds(sora)[1]
    [message] = [m for m in thread(sora, parent) if m.text.startswith("Round 2:")]
    assert second.parent_ts == message.ts, "adopted from the thread by its key"
    assert sora.fake.calls("conversations.replies"), "the bot looked in the thread before posting again"
    assert 4 in variation_messages(sora, parent)


def test_a_blind_thread_runs_three_rounds_each_blind_and_each_with_its_own_winner(sora: Bot) -> None:
    settings(sora, "blind=on")
    parent, messages = ready_round(sora)
    ballot(sora, BOB, messages[2])
    close(sora, parent)
    wait_until(lambda: the_rounds(sora)[0].status == "closed", "round 1's close")
    sora.sweep_until_idle()
    settings(sora, "blind=off")  # round 2 keeps round 1's rules: still blind
    second = open_round_two(sora, parent)
    assert second.blind and second.rules is not None and second.rules["blind"] is True
    four = sora.fake.wait_for(
        lambda: (m := variation_messages(sora, parent).get(4)) and blocks.VOTE in _all_text(m) and m,
        what="#4's vote button",
    )
    assert "Your vote is on #4" in ballot(sora, CAROL, four)
    assert "Votes are hidden until the round closes" in text_of(sora, round_message(sora, parent, 2).ts)
    close(sora, round_message(sora, parent, 2))
    wait_until(lambda: the_rounds(sora)[1].status == "closed", "round 2's close")
    sora.sweep_until_idle()
    sora.sim.reply(DAN, CHANNEL, parent.ts, "loop #4")  # after round 2's close: round 3
    wait_until(lambda: len(the_rounds(sora)) == 3, "round 3")
    sora.sweep_until_idle()
    settle(sora)
    first, second, third = the_rounds(sora)
    assert third.previous_id == second.id and third.thread_ts == parent.ts and third.blind
    assert [g.number for g in rows(sora, Generation) if g.round_id == third.id] == [5]
    third_text = text_of(sora, round_message(sora, parent, 3).ts)
    assert "Round 3 · " in third_text and "Follows round 2, won by #4" in third_text
    assert "Round 3 follows in the thread" in text_of(sora, round_message(sora, parent, 2).ts)
    assert "#2 won" in text_of(sora, parent.ts) and "#4 won" in text_of(
        sora, round_message(sora, parent, 2).ts
    )
    patterns = sorted(rows(sora, Pattern), key=lambda p: p.id or 0)
    assert [(p.round_id, p.outcome["winner_number"]) for p in patterns] == [(first.id, 2), (second.id, 4)]

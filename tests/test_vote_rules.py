"""Voting rules through the signed real app: each channel rule, blind rounds with buttons, each way a round
closes (deadline, quorum, the owner's button, `pick #N why`), ties with and without a pick, Slack's delivery
(retries, out of order, lost events), and the races between voters and replicas on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, Bot, Core, make_bot, make_core
from sqlmodel import select
from test_slack_loop import _all_text, close, ready_round, rows, settle, votes

from bot.domain import CloseReason
from devkit.recording import RecordingPublisher
from devkit.slack_api import Ephemeral, FakeSlack, Message
from handlers import blocks
from storage.models import ChannelSettings, Outbox, Pattern, Round

VOTERS = (BOB, CAROL, DAN)


def settings(sora: Bot, text: str, *, user: str = OWNER) -> Ephemeral:
    seen = len(sora.fake.ephemerals(CHANNEL, user))
    assert sora.sim.command(user, CHANNEL, f"settings {text}").status == 200
    return sora.fake.wait_for(
        lambda: sora.fake.ephemerals(CHANNEL, user)[seen:] and sora.fake.ephemerals(CHANNEL, user)[-1],
        what="the settings reply",
    )


def notes(sora: Bot, user: str) -> list[str]:
    return [_all_text(e) for e in sora.fake.ephemerals(CHANNEL, user)]


def thread(sora: Bot, parent: Message) -> list[Message]:
    return sora.fake.messages(CHANNEL, thread_ts=parent.ts)


def announcements(sora: Bot, parent: Message, word: str = "wins") -> list[Message]:
    return [m for m in thread(sora, parent) if word in m.text]


def the_round(sora: Bot) -> Round:
    [round_row] = rows(sora, Round)
    return round_row


def tally(sora: Bot, parent: Message) -> str:
    settle(sora)
    message = sora.fake.message(CHANNEL, parent.ts)
    assert message is not None
    return _all_text(message)


# --- settings --------------------------------------------------------------------------------


def test_settings_set_every_voting_rule_and_show_them(sora: Bot) -> None:
    reply = settings(sora, "emoji=:tada: :+1: multi=on owner_votes=off quorum=3 blind=on vote=45 tie=5")
    text = _all_text(reply)
    assert "Channel settings updated" in text
    assert ":tada:" in text and ":+1:" in text and "3 voters" in text and "45 minutes" in text
    assert "owner_votes: off" in text and "5 minutes to pick" in text
    [row] = rows(sora, ChannelSettings)
    assert (row.vote_emoji, row.multi_vote, row.owner_votes, row.quorum, row.blind) == (
        ["+1", "tada"],
        True,
        False,
        3,
        True,
    )
    assert (row.vote_minutes, row.tie_minutes) == (45, 5)
    notice = next(m for m in sora.fake.messages(CHANNEL) if "changed this channel's settings" in m.text)
    assert "quorum off → 3 voters" in notice.text and "multi off → on" in notice.text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("quorum=0", "`quorum=0` is not valid"),
        ("quorum=1e3", "`quorum=1e3` is not valid"),
        ("tie=1441", "`tie=1441` is not valid"),
        ("multi=maybe", "`multi=maybe` is not valid"),
        ("emoji=:x:", "cancels a variation"),
        ("emoji=a b c d e f g h i j k", "At most 10 emoji"),
        ("emoji=<!channel>", "is not an emoji name"),
        ("owner_votes", "`owner_votes` needs a value"),
        ("quorum=" + "9" * 80, "a setting takes 64 at most"),
    ],
)
def test_a_malformed_rule_is_refused_clearly_and_changes_nothing(sora: Bot, text: str, says: str) -> None:
    reply = settings(sora, text)
    assert says in reply.text, reply.text
    assert rows(sora, ChannelSettings) == []
    assert "<!channel>" not in reply.text


def test_the_deadline_is_thirty_minutes_by_default_and_a_round_keeps_the_rules_it_started_with(
    sora: Bot,
) -> None:
    parent, messages = ready_round(sora)
    round_row = the_round(sora)
    assert (round_row.closes_at - round_row.created_at).total_seconds() == 30 * 60
    settings(sora, "multi=on quorum=1 emoji=:tada: vote=5")  # after the round started: not its rules
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    assert the_round(sora).status == "open", "the new quorum of 1 is not this round's"
    assert "#1 ▁▁▁▁▁ 0 · *#2* ▇▇▇▇▇ 1 ◀ leads" in tally(sora, parent), (
        "one vote per person: the second moved it"
    )
    sora.clock.advance(minutes=29)
    assert sora.services.sweep().closed == 0
    sora.clock.advance(minutes=2)
    assert sora.services.sweep().closed == 1
    assert the_round(sora).close_reason == CloseReason.DEADLINE
    assert "#2 wins" in announcements(sora, parent)[0].text


# --- each rule -------------------------------------------------------------------------------


def test_one_vote_per_person_moves_with_a_new_reaction_and_says_so_privately(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    sora.sim.react(BOB, CHANNEL, messages[3].ts, "fire")
    assert any("moved from #1 to #3" in n for n in notes(sora, BOB))
    assert "#1 ▁▁▁▁▁ 0 · #2 ▁▁▁▁▁ 0 · *#3* ▇▇▇▇▇ 1 ◀ leads  (1 voter)" in tally(sora, parent)
    sora.sim.unreact(BOB, CHANNEL, messages[3].ts, "fire")  # the newest taken back: the one before counts
    assert "*#1* ▇▇▇▇▇ 1 ◀ leads · #2 ▁▁▁▁▁ 0 · #3 ▁▁▁▁▁ 0  (1 voter)" in tally(sora, parent)


def test_one_vote_per_variation_when_multi_is_on(sora: Bot) -> None:
    settings(sora, "multi=on")
    parent, messages = ready_round(sora)
    for number in (1, 2):
        sora.sim.react(BOB, CHANNEL, messages[number].ts, "heart")
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")  # a second emoji on one variation is still one vote
    assert "*#1* ▇▇▇▇▇ 1 ◀ tied · *#2* ▇▇▇▇▇ 1 ◀ tied · #3 ▁▁▁▁▁ 0  (1 voter)" in tally(sora, parent)
    assert not notes(sora, BOB)


def test_the_owner_vote_does_not_count_when_the_channel_says_so(sora: Bot) -> None:
    settings(sora, "owner_votes=off")
    parent, messages = ready_round(sora)
    sora.sim.react(OWNER, CHANNEL, messages[1].ts, "+1")
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    assert any("owner's vote" in n for n in notes(sora, OWNER))
    assert "#1 ▁▁▁▁▁ 0 · *#2* ▇▇▇▇▇ 1 ◀ leads · #3 ▁▁▁▁▁ 0  (1 voter)" in tally(sora, parent)
    close(sora, parent)  # the close reconciles with Slack, where the owner's reaction still is
    assert "#2 wins* with 1 vote from 1 voter" in announcements(sora, parent)[0].text


def test_only_the_channels_emoji_are_votes(sora: Bot) -> None:
    settings(sora, "emoji=:tada:")
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "tada")
    assert [v.emoji for v in votes(sora)] == ["tada"]
    text = tally(sora, parent)
    assert ":tada:" in text and ":+1:" not in text and "*#2* ▇▇▇▇▇ 1" in text


def test_a_quorum_closes_the_round_as_soon_as_enough_people_have_voted(sora: Bot) -> None:
    settings(sora, "quorum=2")
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    assert the_round(sora).status == "open"
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "heart")
    round_row = the_round(sora)
    assert round_row.status == "closed" and round_row.close_reason == CloseReason.QUORUM
    assert round_row.closed_by is None
    [announcement] = announcements(sora, parent)
    assert "#2 wins" in announcement.text and "quorum of 2" in announcement.text
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "+1")
    assert any("closed" in n for n in notes(sora, DAN)), "a vote after the quorum closed gets a private note"


# --- closing: the owner's button, pick with a reason -----------------------------------------


def test_pick_keeps_its_reason_and_shows_it(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    sora.sim.reply(OWNER, CHANNEL, parent.ts, "pick #3 the <!channel> light on the robot is better")
    round_row = the_round(sora)
    assert round_row.close_reason == CloseReason.PICK and round_row.pick_reason is not None
    assert "light on the robot" in round_row.pick_reason
    [announcement] = announcements(sora, parent)
    text = _all_text(announcement)
    assert "#3 wins*, picked by" in text and "light on the robot is better" in text
    assert "<!channel>" not in text, "the reason is the owner's text: escaped"
    [pattern] = rows(sora, Pattern)
    assert pattern.outcome["winner_number"] == 3 and "light" in pattern.outcome["reason"]
    assert "light on the robot" in tally(sora, parent)


# --- ties ------------------------------------------------------------------------------------


def tie_round(sora: Bot) -> tuple[Message, dict[int, Message]]:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[3].ts, "+1")
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "eyes")
    close(sora, parent)
    return parent, messages


def tie_message(sora: Bot, parent: Message) -> Message:
    [tie] = [m for m in thread(sora, parent) if m.text.startswith("It's a tie")]
    return tie


def test_a_tie_is_announced_as_a_tie_with_a_button_per_tied_variation(sora: Bot) -> None:
    parent, messages = tie_round(sora)
    assert the_round(sora).status == "tied"
    tie = tie_message(sora, parent)
    text = _all_text(tie)
    assert "#2 and #3 (1 vote each)" in text and "#2 wins: the earliest tied variation" in text
    assert announcements(sora, parent) == [], "no winner is announced while the owner may pick"
    buttons = [e for b in tie.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["text"]["text"]) for b in buttons] == [
        (blocks.TIE_PICK, "Pick #2"),
        (blocks.TIE_PICK, "Pick #3"),
    ]
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "+1")
    assert any("tie" in n for n in notes(sora, DAN)), "voting has ended: a late vote is told so"
    assert "tie" in tally(sora, parent).lower()


def test_the_owner_breaks_a_tie_with_its_button_and_nobody_else_can(sora: Bot) -> None:
    parent, _ = tie_round(sora)
    tie = tie_message(sora, parent)
    sora.sim.click(
        BOB, action_id=blocks.TIE_PICK, value=f"{the_round(sora).id}:3", message=tie, channel_id=CHANNEL
    )
    assert any("Only the person who started this round can pick" in n for n in notes(sora, BOB))
    assert the_round(sora).status == "tied"
    assert sora.sim.click_button(OWNER, message=tie, action_id=blocks.TIE_PICK).status == 200  # Pick #2
    round_row = the_round(sora)
    assert round_row.status == "closed" and round_row.close_reason == CloseReason.TIE_PICK
    [announcement] = announcements(sora, parent)
    assert "#2 wins*, picked by" in announcement.text and "break a tie (#2 and #3" in announcement.text
    sora.sim.click_button(OWNER, message=tie, action_id=blocks.TIE_PICK)  # the old message's button again
    assert len(announcements(sora, parent)) == 1 and the_round(sora).closes == 1
    assert any("That tie is over" in n for n in notes(sora, OWNER))
    assert blocks.TIE_PICK not in tally(sora, parent), "the round message drops the buttons once settled"


def test_the_owner_breaks_a_tie_with_a_pick_reply_and_its_reason(sora: Bot) -> None:
    parent, _ = tie_round(sora)
    sora.sim.reply(OWNER, CHANNEL, parent.ts, "pick #3 — calmer camera")
    [announcement] = announcements(sora, parent)
    assert "#3 wins*, picked by" in announcement.text and "calmer camera" in announcement.text
    assert the_round(sora).close_reason == CloseReason.TIE_PICK


def test_a_tie_nobody_breaks_goes_to_the_earliest_variation_when_the_grace_ends(sora: Bot) -> None:
    parent, _ = tie_round(sora)
    sora.clock.advance(minutes=9, seconds=50)
    assert sora.services.sweep().closed == 0
    assert the_round(sora).status == "tied"
    sora.clock.advance(seconds=20)
    assert sora.services.sweep().closed == 1
    round_row = the_round(sora)
    assert round_row.status == "closed" and round_row.close_reason == CloseReason.TIE_RULE
    assert round_row.closed_by is None
    [announcement] = announcements(sora, parent)
    assert "#2 wins.* It was a tie (#2 and #3" in announcement.text
    assert "nobody picked in time, so the stated rule decided" in announcement.text
    [pattern] = rows(sora, Pattern)
    assert pattern.outcome["winner_number"] == 2 and pattern.outcome["tie"] is True


def test_a_channel_without_grace_settles_a_tie_at_once_by_the_rule(sora: Bot) -> None:
    settings(sora, "tie=0")
    parent, _ = tie_round(sora)
    assert the_round(sora).close_reason == CloseReason.TIE_RULE
    assert [m for m in thread(sora, parent) if m.text.startswith("It's a tie")] == []
    assert "stated rule decided" in announcements(sora, parent)[0].text


# --- blind rounds ----------------------------------------------------------------------------


def public_payloads(sora: Bot) -> list[str]:
    """Every version of every message the channel has seen: posts and their updates (not private notes)."""
    return [
        json.dumps(call.params, ensure_ascii=False)
        for call in sora.fake.calls()
        if call.method in ("chat.postMessage", "chat.update")
    ]


def ballot(sora: Bot, user: str, message: Message) -> str:
    seen = len(sora.fake.ephemerals(CHANNEL, user))
    assert sora.sim.click_button(user, message=message, action_id=blocks.VOTE).status == 200
    return sora.fake.wait_for(
        lambda: sora.fake.ephemerals(CHANNEL, user)[seen:] and sora.fake.ephemerals(CHANNEL, user)[-1].text,
        what="the voter's private confirmation",
    )


def test_a_blind_round_takes_votes_by_button_and_shows_nobody_who_voted_for_what(sora: Bot) -> None:
    settings(sora, "blind=on")
    parent, messages = ready_round(sora)
    assert all(blocks.VOTE in _all_text(m) for m in messages.values())
    assert "Blind vote" in _all_text(sora.fake.message(CHANNEL, parent.ts))  # type: ignore[arg-type]

    assert "Your vote is on #1" in ballot(sora, BOB, messages[1])
    assert "Your vote is on #2" in ballot(sora, CAROL, messages[2])
    assert "Your vote is on #2 (moved from #1)" in ballot(sora, BOB, messages[2])
    assert "Your vote is on #3" in ballot(sora, DAN, messages[3])
    assert "taken back" in ballot(sora, DAN, messages[3])  # clicked again
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "+1")  # a reaction shows everyone: not a vote here
    assert any("blind" in n and "Vote" in n for n in notes(sora, DAN))

    parent_text = tally(sora, parent)
    assert "2 people have voted" in parent_text
    for payload in public_payloads(sora):
        for voter in VOTERS:
            assert voter not in payload, "no message shows a voter while the round is open"
        assert "Votes:" not in payload and "▇" not in payload, "no per-variation count while open"
    assert [v.emoji for v in votes(sora)] == ["(ballot)", "(ballot)"]

    close(sora, parent)
    [announcement] = announcements(sora, parent)
    assert "#2 wins* with 2 votes from 2 voters" in announcement.text
    assert "#1 ▁▁▁▁▁ 0 · *#2* ▇▇▇▇▇ 2 ◀ won · #3 ▁▁▁▁▁ 0" in tally(sora, parent)
    assert all(voter not in payload for payload in public_payloads(sora) for voter in VOTERS)
    late = ballot(sora, DAN, messages[1])
    assert "closed" in late


def test_a_blind_vote_click_delivered_twice_counts_once(sora: Bot) -> None:
    settings(sora, "blind=on multi=on")
    parent, messages = ready_round(sora)
    [value] = [
        e["value"]
        for b in messages[1].blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == blocks.VOTE
    ]
    # The same click (one action_ts) handled twice: a toggle must not undo itself.
    outcomes = [
        sora.services.ballots.cast_ballot(int(value), user_id=BOB, action_ts="1800000000.000100")
        for _ in range(2)
    ]
    assert [o.done for o in outcomes] == [True, False]
    assert all("Your vote is on #1" in (o.message or "") for o in outcomes)
    assert len(votes(sora)) == 1
    assert "1 person has voted" in tally(sora, parent)


# --- Slack's delivery ------------------------------------------------------------------------


def test_out_of_order_reactions_end_with_the_latest_vote(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    # BOB voted #1 then #2; Slack delivers the second first.
    sora.fake.record_reaction(CHANNEL, messages[1].ts, "+1", BOB)
    sora.fake.record_reaction(CHANNEL, messages[2].ts, "+1", BOB)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1", event_ts="1800000002.000100", record=False)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1", event_ts="1800000001.000100", record=False)
    assert "#1 ▁▁▁▁▁ 0 · *#2* ▇▇▇▇▇ 1 ◀ leads" in tally(sora, parent)
    # CAROL's removal arrives before her add: no vote.
    sora.sim.unreact(CAROL, CHANNEL, messages[3].ts, "fire", event_ts="1800000004.000100", record=False)
    sora.sim.react(CAROL, CHANNEL, messages[3].ts, "fire", event_ts="1800000003.000100", record=False)
    assert "(1 voter)" in tally(sora, parent)
    # A retried event (same event_id) counts once.
    first = sora.sim.react(DAN, CHANNEL, messages[3].ts, "heart", event_id="EvDAN")
    again = sora.sim.react(DAN, CHANNEL, messages[3].ts, "heart", event_id="EvDAN", retry_num=1, record=False)
    assert first.status == again.status == 200
    assert "*#3* ▇▇▇▇▇ 1 ◀ tied" in tally(sora, parent) and "(2 voters)" in tally(sora, parent)
    close(sora, parent)
    assert the_round(sora).status == "tied", "#2 and #3 have one vote each, after reconciling with Slack"


def test_lost_events_are_reconciled_under_the_rounds_rules(sora: Bot) -> None:
    settings(sora, "owner_votes=off")
    parent, messages = ready_round(sora)
    # Reactions Slack holds whose events never came: BOB on two variations, the owner, the bot itself.
    sora.fake.record_reaction(CHANNEL, messages[1].ts, "+1", BOB)
    sora.fake.record_reaction(CHANNEL, messages[3].ts, "heart", BOB)
    sora.fake.record_reaction(CHANNEL, messages[1].ts, "+1", OWNER)
    sora.fake.record_reaction(CHANNEL, messages[1].ts, "+1", sora.fake.bot_user_id)
    sora.fake.record_reaction(CHANNEL, messages[2].ts, "fire", CAROL)
    sora.fake.record_reaction(CHANNEL, messages[2].ts, "eyes", DAN)
    assert votes(sora) == []
    close(sora, parent)
    # BOB counts once (which of his two is unknowable from Slack: the later variation), the owner and the
    # bot never, DAN's eyes are no vote. #2 and #3 tie.
    assert the_round(sora).status == "tied"
    assert "#2 and #3 (1 vote each), from 2 voters" in _all_text(tie_message(sora, parent))


def test_a_reaction_by_the_bot_and_votes_on_a_closed_round_never_count(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(sora.fake.bot_user_id, CHANNEL, messages[1].ts, "+1")
    assert votes(sora) == []
    close(sora, parent)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    assert any("closed" in n for n in notes(sora, BOB)) and votes(sora) == []


# --- races on PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def pg_sora(fake_slack: FakeSlack, tmp_path: Path, postgres_url: str) -> Iterator[Bot]:
    made = make_bot(fake_slack, tmp_path, database_url=postgres_url)
    yield made
    made.server.stop()
    made.runtime.close()


def test_two_voters_reaching_the_quorum_at_once_close_the_round_once(pg_sora: Bot) -> None:
    sora = pg_sora
    settings(sora, "quorum=2")
    parent, messages = ready_round(sora)
    start = threading.Barrier(2)

    def vote(user: str) -> None:
        start.wait()
        sora.sim.react(user, CHANNEL, messages[2].ts, "+1")

    voters = [threading.Thread(target=vote, args=(user,)) for user in (BOB, CAROL)]
    for voter in voters:
        voter.start()
    for voter in voters:
        voter.join()
    sora.sweep_until_idle()
    round_row = the_round(sora)
    assert round_row.status == "closed" and round_row.closes == 1
    assert round_row.close_reason == CloseReason.QUORUM
    assert len(announcements(sora, parent)) == 1
    assert len(rows(sora, Pattern)) == 1


def two_replicas(tmp_path: Path, postgres_url: str) -> tuple[Core, Core]:
    """Two replicas of the services on one PostgreSQL database, one Slack (a shared recording), one clock."""
    slack = RecordingPublisher()
    first = make_core(tmp_path / "a", database_url=postgres_url, publisher=slack, worker_id="a")
    second = make_core(
        tmp_path / "b", database_url=postgres_url, publisher=slack, worker_id="b", clock=first.clock
    )
    return first, second


def replica_round(core: Core) -> tuple[int, list[str]]:
    card = core.services.drafts.create_draft(
        team_id="T", channel_id="C", user_id="U1", idea="a fox runs in snow"
    )
    started = core.services.rounds.start_round(card.draft_id, actor="U1")
    core.sweep_until_idle()
    with core.store.read() as repo:
        ts = [g.message_ts or "" for g in repo.generations.in_round(started.round_id)]
    return started.round_id, ts


def race(*calls: object) -> list[int]:
    results: list[int] = []
    start = threading.Barrier(len(calls))

    def run(call: object) -> None:
        start.wait()
        results.append(call())  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread_ in threads:
        thread_.start()
    for thread_ in threads:
        thread_.join()
    return results


@pytest.mark.parametrize("tied", [False, True])
def test_two_replicas_closing_at_the_deadline_at_once_close_and_announce_once(
    tmp_path: Path, postgres_url: str, tied: bool
) -> None:
    first, second = two_replicas(tmp_path, postgres_url)
    try:
        round_id, ts = replica_round(first)
        for user, message_ts in (("A", ts[1]), ("B", ts[2] if tied else ts[1])):
            first.publisher.react(message_ts, user, "+1")
            first.services.ballots.record_vote(
                channel_id="C", message_ts=message_ts, user_id=user, emoji="+1"
            )
        first.clock.advance(minutes=31)
        assert sum(race(first.services.rounds.close_due, second.services.rounds.close_due)) == 1
        if tied:
            first.sweep_until_idle()  # the tie is announced (a replica holding the round may defer it a pass)
            first.clock.advance(minutes=11)
            assert sum(race(first.services.rounds.close_due, second.services.rounds.close_due)) == 1
        first.sweep_until_idle()
        second.sweep_until_idle()
        with first.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            assert round_row is not None and round_row.status == "closed" and round_row.closes == 1
            assert round_row.close_reason == (CloseReason.TIE_RULE if tied else CloseReason.DEADLINE)
            kinds = [o.kind for o in repo.session.exec(select(Outbox).where(Outbox.round_id == round_id))]
        assert kinds.count("announce") == 1 and kinds.count("announce_tie") == (1 if tied else 0)
        winners = first.publisher.of_kind("winner")
        assert len(winners) == (2 if tied else 1), "one tie notice (when tied) and one announcement"
    finally:
        first.close()
        second.close()

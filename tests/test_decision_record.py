"""The decision record and `/sora export` through the signed real app: what the record says for a normal, a blind
and a tied round, once per close; each export format as the asker receives it (the files the fake Slack got);
privacy across channels; and the live bars on the round message."""

from __future__ import annotations

import csv
import io
import json

from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, Bot
from test_slack_loop import _all_text, close, ready_round, rows, settle, variation_messages, wait_until
from test_vote_rules import ballot, public_payloads, settings, tally, thread

from bot.records import DecisionRecord, VariationRecord
from devkit.limits import check_message
from devkit.slack_api import Message, UploadedFile
from handlers import blocks
from storage.models import Pattern, Round


def records(sora: Bot, parent: Message) -> list[Message]:
    return [m for m in thread(sora, parent) if m.text.startswith("Decision record")]


def export(
    sora: Bot, text: str, *, user: str = OWNER, channel: str = CHANNEL
) -> tuple[str, UploadedFile | None]:
    """The asker's private reply, and the file sent to their DM with the bot (None when nothing was sent)."""
    seen_files, seen = len(sora.fake.files()), len(sora.fake.ephemerals(channel, user))
    assert sora.sim.command(user, channel, f"export {text}".strip()).status == 200
    reply = sora.fake.wait_for(
        lambda: sora.fake.ephemerals(channel, user)[seen:] and sora.fake.ephemerals(channel, user)[-1],
        what="the export reply",
    )
    sent = [f for f in sora.fake.files()[seen_files:] if f.completed]
    assert all(f.channel_id == sora.fake.dm_of(user) for f in sent), "only ever to the asker's DM"
    return reply.text, sent[-1] if sent else None


def test_a_closed_round_posts_one_decision_record_with_votes_voters_lineage_and_cost(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #2 make it golden hour")
    sora.sweep_until_idle()
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "fire")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "heart")
    wait_until(lambda: "(3 voters)" in tally(sora, parent), "three votes")
    snapshot = sora.fake.message(CHANNEL, parent.ts)
    assert snapshot is not None
    for _ in range(2):  # two clicks on the message as it was: one close, one record
        assert sora.sim.click_button(OWNER, message=snapshot, action_id=blocks.CLOSE).status == 200
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the close")
    sora.sweep_until_idle()
    [record] = records(sora, parent)
    assert record.metadata and record.metadata["event_payload"]["key"] == "round-1/close-1/record"
    text = _all_text(record)
    assert "*Winner:* #2. Most votes when the owner closed voting." in text
    assert "*#2* :trophy: winner · from the draft · 2 votes: <@U0BOB>, <@U0CAROL>" in text
    assert "*#1* · from the draft · 1 vote: <@U0DAN>" in text
    assert "*#4* · remix of #2: “make it golden hour” · 0 votes" in text
    assert "3 voters" in text and "Cost free (offline renderer)" in text
    assert check_message(record.text, record.blocks) is None
    # the announcement comes first
    assert thread(sora, parent).index(record) > next(
        i for i, m in enumerate(thread(sora, parent)) if "#2 wins" in m.text
    )


def test_the_close_uploads_a_marked_contact_sheet_and_the_round_message_shows_the_winners_still(
    sora: Bot,
) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[3].ts, "+1")
    shown = sora.fake.message(CHANNEL, parent.ts)
    assert shown is not None
    for _ in range(2):  # a double click on the button as it was shown
        assert sora.sim.click_button(OWNER, message=shown, action_id=blocks.CLOSE).status == 200
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the close")
    sora.sweep_until_idle()
    names = [f.filename for f in sora.fake.files() if f.completed]
    assert names.count("round-1-close-1-contact-sheet.png") == 1
    assert names.count("round-1-close-1-winner.png") == 1
    assert names.count("round-1-contact-sheet.png") == 1  # the first sheet stays as it was
    [still] = [f for f in sora.fake.files() if f.filename == "round-1-close-1-winner.png"]
    assert still.thread_ts == parent.ts and still.alt_txt and "#3" in still.alt_txt
    [sheet] = [f for f in sora.fake.files() if f.filename == "round-1-close-1-contact-sheet.png"]
    assert sheet.alt_txt and "#3 WINNER 1 vote" in sheet.alt_txt and "#1 0 votes" in sheet.alt_txt
    round_message = sora.fake.message(CHANNEL, parent.ts)
    assert round_message is not None
    [image] = [b for b in round_message.blocks if b["type"] == "image"]
    assert image["slack_file"] == {"id": still.id} and "image_url" not in image


def test_a_blind_rounds_record_has_counts_and_never_who_voted(sora: Bot) -> None:
    settings(sora, "blind=on")
    parent, messages = ready_round(sora)
    ballot(sora, BOB, messages[2])
    ballot(sora, CAROL, messages[2])
    ballot(sora, DAN, messages[1])
    assert "3 people have voted" in tally(sora, parent)
    close(sora, parent)
    sora.sweep_until_idle()
    [record] = records(sora, parent)
    text = _all_text(record)
    assert (
        "*#2* :trophy: winner · from the draft · 2 votes" in text and "*#1* · from the draft · 1 vote" in text
    )
    assert "blind round: who voted for what is not recorded" in text
    for payload in public_payloads(sora):
        assert all(voter not in payload for voter in (BOB, CAROL, DAN))
    _, sent = export(sora, "json")
    assert sent is not None and sent.content is not None
    data = json.loads(sent.content)
    assert [v["votes"] for v in data["variations"]] == [1, 2, 0]
    assert all(v["voters"] == [] for v in data["variations"]) and data["blind"] is True
    assert all(voter not in sent.content.decode() for voter in (BOB, CAROL, DAN))


def test_a_tie_ruled_by_the_grace_records_the_tie_and_the_rule_once(sora: Bot) -> None:
    settings(sora, "tie=5")
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "+1")
    wait_until(lambda: "(2 voters)" in tally(sora, parent), "two votes")
    close(sora, parent)
    wait_until(lambda: rows(sora, Round)[0].status == "tied", "the tie")
    sora.sweep_until_idle()
    assert records(sora, parent) == [], "a tie is not a decision yet"
    sora.clock.advance(minutes=6)
    sora.sweep_until_idle()
    [record] = records(sora, parent)
    text = _all_text(record)
    assert "*Winner:* #1. A tie (#1 and #2) nobody broke in time: the earliest tied variation wins." in text
    assert "<@U0BOB>" in text and "<@U0CAROL>" in text


def test_a_pick_with_its_reason_is_in_the_record_and_each_close_has_its_own(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[1].ts, "+1")
    sora.sim.reply(OWNER, CHANNEL, parent.ts, "pick #3 calmer <!channel> camera")
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the pick")
    sora.sweep_until_idle()
    [record] = records(sora, parent)
    text = _all_text(record)
    assert "*Winner:* #3. Picked by the round's owner." in text
    assert "calmer &lt;!channel&gt; camera" in text and "<!channel>" not in text
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #3 make it golden hour")  # opens round 2 in the thread
    sora.sweep_until_idle()
    [second] = [m for m in thread(sora, parent) if m.text.startswith("Round 2:")]
    sora.sim.react(CAROL, CHANNEL, variation_messages(sora, parent)[4].ts, "+1")  # round 2's own vote
    close(sora, second)
    sora.sweep_until_idle()
    keys = [m.metadata["event_payload"]["key"] for m in records(sora, parent) if m.metadata]
    assert keys == ["round-1/close-1/record", "round-2/close-1/record"]
    # Each close is its own decision and its own version of the pattern: the first is kept as it was.
    versions = sorted(rows(sora, Pattern), key=lambda p: p.outcome["round"])
    assert [(p.outcome["round"], p.outcome["winner_number"], p.outcome["reason"]) for p in versions] == [
        (1, 3, "calmer <!channel> camera"),
        (2, 4, None),
    ]


def test_export_sends_markdown_csv_and_json_to_the_askers_dm_only(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.reply(OWNER, CHANNEL, parent.ts, "pick #2 the light is better, = not a formula")
    wait_until(lambda: rows(sora, Round)[0].status == "closed", "the pick")
    sora.sweep_until_idle()

    reply, markdown = export(sora, "", user=CAROL)  # Markdown, this channel's latest round
    assert "direct messages" in reply
    assert (
        markdown is not None and markdown.filename == "round-1-decision.md" and markdown.content is not None
    )
    md = markdown.content.decode()
    assert md.startswith("# Round 1: ") and "- Winner: #2 — Picked by the round's owner." in md
    assert "| #2 (winner) | from the draft | 1 | U0BOB |" in md

    _, table = export(sora, "1 csv", user=CAROL)
    assert table is not None and table.filename == "round-1-decision.csv" and table.content is not None
    lines = list(csv.DictReader(io.StringIO(table.content.decode())))
    assert [(r["number"], r["votes"], r["voters"], r["winner"]) for r in lines] == [
        ("1", "0", "", ""),
        ("2", "1", "U0BOB", "yes"),
        ("3", "0", "", ""),
    ]

    _, doc = export(sora, "#1 JSON", user=CAROL)
    assert doc is not None and doc.content is not None
    data = json.loads(doc.content)
    assert data["winner_number"] == 2 and data["close_reason"] == "pick"
    assert data["pick_reason"] == "the light is better, = not a formula"
    assert data["net_cost"] == data["charged"] - data["refunded"]
    assert [v["lineage"] for v in data["variations"]] == ["from the draft"] * 3
    assert [f.filename for f in sora.fake.files() if f.channel_id == sora.fake.dm_of(CAROL)] == [
        "round-1-decision.md",
        "round-1-decision.csv",
        "round-1-decision.json",
    ]
    assert not [f for f in sora.fake.files() if f.channel_id == sora.fake.dm_of(OWNER)], "nobody else's DM"


def test_export_is_strict_about_what_it_reads(sora: Bot) -> None:
    for text, says in (
        ("12 csv json", "a round id and a format at most"),
        ("xml", "is not a round id or a format"),
        ("0", "is not a round id"),
        ("9" * 40, "is not a round id"),
    ):
        reply, sent = export(sora, text)
        assert says in reply and sent is None, reply
    reply, sent = export(sora, "")
    assert "No round has run in this channel yet" in reply and sent is None
    reply, sent = export(sora, "77")
    assert "There is no round 77" in reply and sent is None


def test_a_private_rounds_export_is_refused_outside_its_channel(sora: Bot) -> None:
    sora.fake.make_private(CHANNEL)
    ready_round(sora)
    [round_row] = rows(sora, Round)
    assert round_row.private
    reply, sent = export(sora, "1", channel="C0OTHER")
    assert "ran in a private conversation" in reply and sent is None
    reply, sent = export(sora, "", channel="C0OTHER")
    assert "No round has run in this channel yet" in reply and sent is None
    reply, sent = export(sora, "1 csv")
    assert sent is not None and sent.filename == "round-1-decision.csv"


def test_the_round_message_shows_live_bars_with_the_leader(sora: Bot) -> None:
    parent, messages = ready_round(sora)
    sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1")
    sora.sim.react(CAROL, CHANNEL, messages[2].ts, "fire")
    sora.sim.react(DAN, CHANNEL, messages[1].ts, "heart")
    assert "#1 ▇▇▁▁▁ 1 · *#2* ▇▇▇▇▇ 2 ◀ leads · #3 ▁▁▁▁▁ 0  (3 voters)" in tally(sora, parent)
    sora.sim.react(OWNER, CHANNEL, messages[1].ts, "+1")
    assert "*#1* ▇▇▇▇▇ 2 ◀ tied · *#2* ▇▇▇▇▇ 2 ◀ tied" in tally(sora, parent)
    updates = [c for c in sora.fake.calls("chat.update") if c.params.get("ts") == parent.ts]
    assert updates, "the round message follows the votes"
    settle(sora)


def test_bars_are_scaled_to_the_leader_and_never_empty_for_a_vote() -> None:
    assert [blocks.bar(c, 4) for c in (0, 1, 3, 4)] == ["▁▁▁▁▁", "▇▁▁▁▁", "▇▇▇▇▁", "▇▇▇▇▇"]
    assert blocks.bar(1, 40) == "▇▁▁▁▁" and blocks.bar(39, 40) == "▇▇▇▇▁" and blocks.bar(0, 0) == "▁▁▁▁▁"


def test_a_record_of_many_variations_and_voters_stays_within_slacks_limits() -> None:
    voters = tuple(f"U{i:08d}" for i in range(400))
    variations = tuple(
        VariationRecord(
            number=n,
            kind="remix",
            parent_number=1,
            change="a change " * 60,
            status="completed",
            prompt="p",
            provider="local",
            seconds=4,
            charged=0.4,
            refunded=0.0,
            votes=len(voters),
            voters=voters,
            winner=n == 2,
        )
        for n in range(1, 80)
    )
    record = DecisionRecord(
        round_id=1,
        title="t" * 500,
        channel_id=CHANNEL,
        owner_id=OWNER,
        private=False,
        blind=False,
        status="closed",
        created_at="2026-01-01T00:00:00",
        closed_at="2026-01-01T00:30:00",
        closed_by=OWNER,
        close_reason="pick",
        pick_reason="why " * 300,
        winner_number=2,
        tied=(),
        voters=len(voters),
        charged=31.6,
        refunded=0.4,
        variations=variations,
    )
    message = blocks.decision_record_message(record)
    assert check_message(message["text"], message["blocks"]) is None
    shown = json.dumps(message["blocks"])
    assert "and 388 more" in shown and "more variations not shown" in shown
    assert "refunded $0.40" in shown

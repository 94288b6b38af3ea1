"""The seams a hostile or careless workspace probes, each through the signed edge of the real app.

Privacy (a private channel's winners stay there; workspaces stay apart), who may change what costs money,
Generate where the bot was not invited, replies with a subtype, and numbers that only look like numbers. The
privacy and permission tests run on SQLite and on PostgreSQL (when TEST_DATABASE_URL is set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BOB, CAROL, CHANNEL, OWNER, SECRET, Bot, make_bot
from sqlmodel import select

from devkit.simulator import SlackSimulator
from devkit.slack_api import Ephemeral, FakeSlack, Message
from handlers import blocks
from storage.models import ChannelSettings, Draft, Generation, Pattern, Round, Spend

PRIVATE = "CPRIVATE"  # a private channel the bot is in
DM = "D0BOBDM"  # Bob's DM with the bot
IDEA = "a small delivery robot rolls through a rain-soaked neon alley at night, slow dolly-in"
SECRET_IDEA = "a prototype phone codenamed nightjar spins on a glass turntable, slow orbit, studio light"


@pytest.fixture(params=["sqlite", "postgresql"])
def team(request: pytest.FixtureRequest, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    fake_slack.make_private(PRIVATE)
    made = make_bot(fake_slack, tmp_path, database_url=url, env={"SORA_BOT_PRICES": "local=0.10"})
    yield made
    made.server.stop()
    made.runtime.close()


def rows(bot: Bot, model: type) -> list:  # type: ignore[type-arg]
    with bot.services.store.read() as repo:
        return list(repo.session.exec(select(model)).all())


def answer(bot: Bot, channel: str, user: str, seen: int) -> Ephemeral:
    return bot.fake.wait_for(
        lambda: bot.fake.ephemerals(channel, user)[seen:] and bot.fake.ephemerals(channel, user)[-1],
        what="a private answer",
    )


def command(bot: Bot, user: str, channel: str, text: str, *, sim: SlackSimulator | None = None) -> str:
    seen = len(bot.fake.ephemerals(channel, user))
    assert (sim or bot.sim).command(user, channel, text).status == 200
    reply = answer(bot, channel, user, seen)
    return reply.text + " " + str(reply.blocks)


def draft_card(bot: Bot, channel: str, idea: str = IDEA, user: str = OWNER) -> Ephemeral:
    seen = len(bot.fake.ephemerals(channel, user))
    assert bot.sim.command(user, channel, f"draft {idea}").status == 200
    return answer(bot, channel, user, seen)


def parent_of(bot: Bot, channel: str) -> Message:
    return bot.fake.wait_for(
        lambda: next((m for m in bot.fake.messages(channel) if m.text.startswith("Round:")), None),
        what="the round message",
    )


def won_round(bot: Bot, channel: str, idea: str) -> None:
    """A whole round in `channel`: draft, generate, one vote, closed by its owner, winner saved."""
    card = draft_card(bot, channel, idea)
    assert bot.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    parent = parent_of(bot, channel)
    bot.sweep_until_idle()
    first = next(
        m for m in bot.fake.messages(channel, thread_ts=parent.ts) if m.text.startswith("Variation #1")
    )
    bot.sim.react(BOB, channel, first.ts, "+1")
    snapshot = bot.fake.message(channel, parent.ts)
    assert snapshot is not None
    assert bot.sim.click_button(OWNER, message=snapshot, action_id=blocks.CLOSE).status == 200
    bot.sweep_until_idle()
    assert any(p.channel_id == channel for p in rows(bot, Pattern))


# --- 1. privacy -------------------------------------------------------------------------------------


def test_a_private_channels_winner_is_recalled_only_in_that_channel(team: Bot) -> None:
    won_round(team, PRIVATE, SECRET_IDEA)
    won_round(team, CHANNEL, IDEA)
    patterns = {p.channel_id: p for p in rows(team, Pattern)}
    assert patterns[PRIVATE].private is True and patterns[CHANNEL].private is False

    assert "No saved patterns" in command(team, BOB, CHANNEL, "recall nightjar phone")
    assert "No saved patterns" in command(team, BOB, DM, "recall nightjar phone")
    assert "turntable" in command(team, BOB, PRIVATE, "recall nightjar phone")
    # What was saved in public is found anywhere in the workspace, the DM included.
    assert "neon alley" in command(team, BOB, DM, "recall robot alley").lower()


def test_workspaces_stay_apart(team: Bot) -> None:
    won_round(team, CHANNEL, IDEA)
    other = SlackSimulator(team.fake, app_url=team.server.url, signing_secret=SECRET, team_id="T0OTHER")
    found = command(team, BOB, CHANNEL, "recall robot alley", sim=other)
    assert "No saved patterns" in found
    assert "neon alley" in command(team, BOB, CHANNEL, "recall robot alley").lower()


def test_a_channel_turned_private_keeps_later_winners_in_it(team: Bot) -> None:
    """Slack is asked at every Generate, not once: the channel's privacy is read as it is then."""
    team.fake.make_private(CHANNEL)
    won_round(team, CHANNEL, SECRET_IDEA)
    assert rows(team, Pattern)[0].private is True
    assert "No saved patterns" in command(team, BOB, DM, "recall nightjar")


# --- 6. who may do what -----------------------------------------------------------------------------


def test_only_admins_change_budget_provider_or_model_and_every_change_is_announced(team: Bot) -> None:
    command(team, OWNER, CHANNEL, "settings budget=5")  # OWNER is a workspace admin
    for attempt in (
        "settings budget=none",
        "settings budget=500",
        "settings provider=local",
        "settings model=x",
    ):
        said = command(team, BOB, CHANNEL, attempt)
        assert "Only workspace admins" in said and "nothing was changed" in said
    [row] = rows(team, ChannelSettings)
    assert row.daily_budget == 5.0

    said = command(team, BOB, CHANNEL, "settings vote=15 blind=on")  # not money: anyone may
    assert "updated" in said
    notices = [m.text for m in team.fake.messages(CHANNEL) if "changed this channel's settings" in m.text]
    assert len(notices) == 2
    assert f"<@{OWNER}>" in notices[0] and "budget no limit → $5.00 a day" in notices[0]
    assert (
        f"<@{BOB}>" in notices[1]
        and "vote 30 minutes → 15 minutes" in notices[1]
        and "blind off → on" in notices[1]
    )


def test_people_the_deployment_names_may_change_the_budget(fake_slack: FakeSlack, tmp_path: Path) -> None:
    named = make_bot(fake_slack, tmp_path, env={"SORA_BOT_ADMINS": f"{CAROL}, U0NOBODY"})
    try:
        assert "updated" in command(named, CAROL, CHANNEL, "settings budget=40")
        assert "Only workspace admins" in command(named, BOB, CHANNEL, "settings budget=none")
        [row] = rows(named, ChannelSettings)
        assert row.daily_budget == 40.0
    finally:
        named.server.stop()
        named.runtime.close()


def test_the_settings_view_says_who_may_change_what(team: Bot) -> None:
    said = command(team, BOB, CHANNEL, "settings")
    assert "Budget, provider and model are for workspace admins" in said


# --- 7. not invited ---------------------------------------------------------------------------------


def test_generate_where_the_bot_is_not_a_member_charges_and_submits_nothing(team: Bot) -> None:
    team.fake.remove_bot_from("C0ELSEWHERE")
    card = draft_card(team, "C0ELSEWHERE")
    seen = len(team.fake.ephemerals("C0ELSEWHERE", OWNER))
    assert team.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    said = answer(team, "C0ELSEWHERE", OWNER, seen).text
    assert "not in this channel" in said and "/invite" in said and "nothing was charged" in said
    assert rows(team, Round) == [] and rows(team, Generation) == [] and rows(team, Spend) == []
    assert rows(team, Draft)[0].status == "open", "once invited, Generate works on the same card"
    assert team.fake.messages("C0ELSEWHERE") == []

    team.fake.add_bot_to("C0ELSEWHERE")
    assert team.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    parent_of(team, "C0ELSEWHERE")
    assert len(rows(team, Generation)) == 3


def test_a_private_channel_without_the_bot_is_not_invited_either(team: Bot) -> None:
    team.fake.make_private("CSHUT")
    team.fake.remove_bot_from("CSHUT")
    card = draft_card(team, "CSHUT")
    seen = len(team.fake.ephemerals("CSHUT", OWNER))
    team.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    assert "not in this channel" in answer(team, "CSHUT", OWNER, seen).text
    assert rows(team, Spend) == []


# --- 8. every human reply counts --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["also_to_channel", "with_file"])
def test_a_reply_sent_to_the_channel_too_or_with_a_file_is_a_command(sora: Bot, how: str) -> None:
    card = draft_card(sora, CHANNEL)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    parent = parent_of(sora, CHANNEL)
    sora.sweep_until_idle()
    sora.sim.reply(BOB, CHANNEL, parent.ts, "remix #1 make it golden hour", **{how: True})
    sora.fake.wait_for(lambda: len(rows(sora, Generation)) == 4, what="the remix")
    remix = next(g for g in rows(sora, Generation) if g.number == 4)
    assert remix.kind == "remix" and remix.change == "make it golden hour"


def test_edits_and_bot_posts_in_the_thread_are_still_not_commands(sora: Bot) -> None:
    card = draft_card(sora, CHANNEL)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    parent = parent_of(sora, CHANNEL)
    sora.sweep_until_idle()
    sora.sim.post(BOB, CHANNEL, "remix #1 make it red", thread_ts=parent.ts, subtype="message_changed")
    sora.sim.post(BOB, CHANNEL, "remix #1 make it red", thread_ts=parent.ts, subtype="bot_message")
    assert len(rows(sora, Generation)) == 3


# --- 3. numbers that only look like numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("settings vote=²", "`vote=²` is not valid"),
        ("settings vote=٣٠", "is not valid"),
        ("settings budget=1e9", "is not valid"),
        ("settings budget=nan", "is not valid"),
        ("settings budget=1_000", "is not valid"),
        ("settings budget=" + "9" * 80, "64 at most"),
        ("settings model=" + "m" * 65, "64 at most"),
        ("settings model=<!channel>", "is not valid"),
    ],
)
def test_a_setting_that_cannot_be_read_gets_a_specific_answer_and_changes_nothing(
    sora: Bot, text: str, expected: str
) -> None:
    said = command(sora, OWNER, CHANNEL, text)
    assert expected in said, said
    assert "Something went wrong" not in said
    assert rows(sora, ChannelSettings) == []


def test_modal_numbers_are_ascii_digits_and_every_text_field_has_a_max_length(sora: Bot) -> None:
    card = draft_card(sora, CHANNEL)
    seen = len(sora.fake.views())
    sora.sim.click_button(OWNER, message=card, action_id=blocks.EDIT)
    view = sora.fake.wait_for(
        lambda: sora.fake.views()[seen:] and sora.fake.views()[-1].view, what="the modal"
    )
    inputs = [b["element"] for b in view["blocks"] if b["type"] == "input"]
    assert all("max_length" in e for e in inputs if e["type"] == "plain_text_input")
    state = {
        b["block_id"]: {"value": b["element"].get("initial_value", "")}
        for b in view["blocks"]
        if b["type"] == "input" and b["element"]["type"] == "plain_text_input"
    }
    state["seconds"] = {"value": "²"}
    state["subject"] = {"value": "x" * 5000}  # a client that ignores max_length
    response = sora.sim.submit_view(OWNER, view=view, values=state)
    assert response.status == 200 and response.json is not None
    assert response.json["response_action"] == "errors"
    assert "whole number" in response.json["errors"]["seconds"]
    assert "under 400 characters" in response.json["errors"]["subject"]


# --- 10. refunds, and 4. a clip is a clip, through the running app ----------------------------------


def test_cancelled_variations_give_their_share_back_to_the_budget(team: Bot) -> None:
    card = draft_card(team, CHANNEL)  # 3 × 4 s at $0.10/s = $1.20
    assert team.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    parent = parent_of(team, CHANNEL)
    queued = team.fake.wait_for(
        lambda: [
            m for m in team.fake.messages(CHANNEL, thread_ts=parent.ts) if m.text.startswith("Variation #")
        ],
        what="the variation messages",
    )
    for message in queued[:2]:  # ❌ on two of the owner's queued variations, one of them twice
        team.sim.react(OWNER, CHANNEL, message.ts, "x")
    team.sim.react(OWNER, CHANNEL, queued[0].ts, "heavy_multiplication_x")
    team.fake.wait_for(
        lambda: sum(g.status == "cancelled" for g in rows(team, Generation)) == 2, what="two cancellations"
    )
    team.sweep_until_idle()
    net = sum(s.amount for s in rows(team, Spend))
    assert net == pytest.approx(0.40), "only the variation that rendered is paid for"
    assert "$0.80 a day" not in command(team, OWNER, CHANNEL, "settings")
    assert "spent today: $0.40" in command(team, OWNER, CHANNEL, "settings")


def test_an_html_page_from_a_provider_is_not_posted_as_a_clip(fake_slack: FakeSlack, tmp_path: Path) -> None:
    from provider_fakes import FakeOpenAI

    page = (
        b"<!doctype html><html><body><h1>Gateway error</h1>" + b"<p>try later</p>" * 100 + b"</body></html>"
    )
    with FakeOpenAI(clip=page, polls_to_complete=1) as videos:
        bot = make_bot(
            fake_slack,
            tmp_path,
            env={
                "OPENAI_API_KEY": videos.api_key,
                "OPENAI_BASE_URL": videos.base_url,
                "VIDEO_PROVIDER": "openai",
            },
        )
        try:
            card = draft_card(bot, CHANNEL)
            assert bot.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
            parent = parent_of(bot, CHANNEL)
            bot.sweep_until_idle(rounds=40)
            assert {g.status for g in rows(bot, Generation)} == {"failed"}
            assert bot.fake.files() == [], "nothing was uploaded as a clip"
            shown = " ".join(m.text for m in bot.fake.messages(CHANNEL, thread_ts=parent.ts))
            assert "HTML page" in shown and "not a video" in shown
        finally:
            bot.server.stop()
            bot.runtime.close()

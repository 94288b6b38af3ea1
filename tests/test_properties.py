"""Arbitrary text, signed, through the real app: every input gets an answer, none a 5xx, none an apology.

Hypothesis writes the text: slash commands, each setting's value, thread replies after each verb, and every
field of both modals, mixed with the fragments that broke earlier releases ("payload", `<!channel>`, "²",
"1e9", entities, right-to-left marks, very long runs). For each input:

- Slack's request gets its answer inside Slack's own 3 s limit (the simulator gives up after 3 s, as Slack does)
  and never a 5xx;
- the person gets a specific answer (a card, a field error, a private note, a new variation), never the generic
  apology that means an exception escaped;
- nothing is spent for anything refused: every charge belongs to a variation that was made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BOB, CHANNEL, OWNER, SECRET, Bot, make_bot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from bot.replies import parse_reply
from devkit.simulator import SimResponse, SlackSimulator
from devkit.slack_api import FakeSlack, Message
from handlers import blocks
from handlers.errors import SORRY
from storage.models import Generation, Spend

SLACK_ACK_SECONDS = 3.0

FRAGMENTS = st.sampled_from(
    [
        "payload",
        "payload=",
        "&payload={",
        "<!channel>",
        "<@U0BOB>",
        "<https://example.com|click>",
        "&lt;",
        "&amp;",
        "&",
        "²",
        "٣",
        "1e9",
        "nan",
        "-1",
        "0",
        "999999999999",
        "#",
        "#1",
        "#0",
        "s",
        "—",
        "--goal",
        "=",
        "🎬",
        "👍🏽",
        "\u202e",
        "\u200b",
        "\\",
        '"',
        "'",
        "%",
        "+",
        "\n",
        "*bold*",
        "_",
        "`",
        "x" * 700,
        "word " * 120,
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=30), FRAGMENTS), max_size=6).map("".join)
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
IDEA = "a small delivery robot rolls through a rain-soaked neon alley at night, slow dolly-in"


@pytest.fixture
def bot(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    made = make_bot(fake_slack, tmp_path, env={"SORA_BOT_PRICES": "local=0.10"})
    made.sim = SlackSimulator(
        fake_slack, app_url=made.server.url, signing_secret=SECRET, timeout=SLACK_ACK_SECONDS
    )
    yield made
    made.server.stop()
    made.runtime.close()


def counts(bot: Bot) -> tuple[int, int]:
    with bot.services.store.read() as repo:
        generations = repo.session.exec(select(func.count()).select_from(Generation)).one()
        spends = repo.session.exec(select(func.count()).select_from(Spend)).one()
    return int(generations), int(spends)


def seen(bot: Bot, channel: str, user: str) -> list[tuple[str, str, bool]]:
    return [(e.ts, e.text, e.edited) for e in bot.fake.ephemerals(channel, user)]


def answered(bot: Bot, before: list[tuple[str, str, bool]], views: int, user: str = OWNER) -> str:
    """The text of what the person was shown since `before`: a private message, or a modal that opened."""
    after = seen(bot, CHANNEL, user)
    new = [text for entry, text in ((e, e[1]) for e in after) if entry not in before]
    if new:
        return new[-1]
    if len(bot.fake.views()) > views:
        return "(a modal opened)"
    return ""


def spent_only_on_what_was_made(bot: Bot, before: tuple[int, int]) -> None:
    generations, spends = counts(bot)
    made, charged = generations - before[0], spends - before[1]
    assert charged <= made, f"{charged} charges for {made} new variations"


def ok(response: SimResponse) -> None:
    assert response.status < 500, response.body[:300]
    assert response.status == 200, (response.status, response.body[:300])


def slash(bot: Bot, text: str, user: str = OWNER) -> str:
    before, views, money = seen(bot, CHANNEL, user), len(bot.fake.views()), counts(bot)
    ok(bot.sim.command(user, CHANNEL, text))
    said = answered(bot, before, views, user)
    assert said, f"no answer to /sora {text[:80]!r}"
    assert SORRY not in said, f"/sora {text[:80]!r} raised: {said}"
    spent_only_on_what_was_made(bot, money)
    return said


@EXAMPLES
@given(text=TEXT)
def test_any_slash_command_text_gets_a_specific_answer(bot: Bot, text: str) -> None:
    slash(bot, text)


@EXAMPLES
@given(idea=TEXT)
def test_any_idea_gets_a_card_or_says_what_is_wrong(bot: Bot, idea: str) -> None:
    slash(bot, f"draft {idea}")


@EXAMPLES
@given(key=st.sampled_from(["provider", "model", "goal", "vote", "blind", "budget"]), value=TEXT)
def test_any_setting_value_is_read_or_refused_by_name(bot: Bot, key: str, value: str) -> None:
    said = slash(bot, f"settings {key}={value}")
    assert "settings" in said.lower() or key in said or "needs a value" in said or "Unknown setting" in said


@EXAMPLES
@given(query=TEXT)
def test_any_recall_query_answers(bot: Bot, query: str) -> None:
    slash(bot, f"recall {query}")


# --- thread replies ---------------------------------------------------------------------------------


@pytest.fixture
def thread(bot: Bot) -> Message:
    before = seen(bot, CHANNEL, OWNER)
    ok(bot.sim.command(OWNER, CHANNEL, f"draft {IDEA}"))
    card = bot.fake.ephemerals(CHANNEL, OWNER)[-1]
    assert card.ts not in {b[0] for b in before}
    ok(bot.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE))
    parent = bot.fake.wait_for(
        lambda: next((m for m in bot.fake.messages(CHANNEL) if m.text.startswith("Round:")), None),
        what="the round",
    )
    bot.sweep_until_idle()
    return parent


@EXAMPLES
@given(
    verb=st.sampled_from(["remix", "recut", "extend", "loop", "blend", "again", "pick", "help"]),
    target=st.sampled_from(["#1 ", "#2 ", "#9 ", "#0 ", "#²", "", "#1 #2 "]),
    rest=TEXT,
)
def test_any_reply_after_a_verb_is_done_or_refused_privately_before_anything_is_spent(
    bot: Bot, thread: Message, verb: str, target: str, rest: str
) -> None:
    text = f"{verb} {target}{rest}"
    before, money = seen(bot, CHANNEL, BOB), counts(bot)
    ok(bot.sim.reply(BOB, CHANNEL, thread.ts, text))
    generations, _ = counts(bot)
    note = answered(bot, before, len(bot.fake.views()), BOB)
    # Chatty verbs ("loop me in", "again, I think…") are commands only when addressed; the rest always are.
    if parse_reply(text) is not None:
        assert note or generations > money[0], f"no answer to {text[:80]!r}"
    assert SORRY not in note, note
    spent_only_on_what_was_made(bot, money)


# --- modal fields -----------------------------------------------------------------------------------


def _state(view: dict[str, Any], field: str, text: str) -> dict[str, dict[str, Any]]:
    """The modal as submitted: its initial values, with `text` typed into `field` (even past max_length)."""
    state: dict[str, dict[str, Any]] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        if element["type"] == "static_select":
            chosen = element.get("initial_option")
            if block_id == field:
                chosen = {"text": {"type": "plain_text", "text": text[:75] or "x"}, "value": text}
            state[block_id] = {"value": {"type": "static_select", "selected_option": chosen}}
        elif element["type"] == "plain_text_input":
            value = text if block_id == field else element.get("initial_value", "")
            state[block_id] = {"value": {"type": "plain_text_input", "value": value}}
    return state


def _submitted(bot: Bot, view: dict[str, Any], field: str, text: str) -> None:
    before, money = seen(bot, CHANNEL, OWNER), counts(bot)
    response = bot.sim.submit_view(OWNER, view=view, values=_state(view, field, text))
    ok(response)
    if response.json and response.json.get("response_action") == "errors":
        errors = response.json["errors"]
        assert errors and all(isinstance(m, str) and m.strip() for m in errors.values())
        assert set(errors) <= {b.get("block_id") for b in view["blocks"]}
    else:
        said = answered(bot, before, len(bot.fake.views()))
        assert said, f"no answer to {field}={text[:60]!r}"
        assert SORRY not in said, said
    spent_only_on_what_was_made(bot, money)


EDIT_FIELDS = ["subject", "action", "camera", "environment", "finish", "intent", "seconds", "aspect"]
EDIT_FIELDS += ["variations", "provider", "goal"]


@EXAMPLES
@given(field=st.sampled_from(EDIT_FIELDS), text=TEXT)
def test_any_edit_modal_field_is_checked_inline(bot: Bot, field: str, text: str) -> None:
    card_before = seen(bot, CHANNEL, OWNER)
    ok(bot.sim.command(OWNER, CHANNEL, f"draft {IDEA}"))
    card = next(e for e in bot.fake.ephemerals(CHANNEL, OWNER) if (e.ts, e.text, e.edited) not in card_before)
    views = len(bot.fake.views())
    ok(bot.sim.click_button(OWNER, message=card, action_id=blocks.EDIT))
    view = bot.fake.wait_for(lambda: bot.fake.views()[views:] and bot.fake.views()[-1].view, what="the modal")
    _submitted(bot, view, field, text)


STORYBOARD_FIELDS = ["idea", "seconds", "goal", "beat-0", "beat-0-start", "beat-1", "beat-1-start", "beat-3"]


@EXAMPLES
@given(field=st.sampled_from(STORYBOARD_FIELDS), text=TEXT)
def test_any_storyboard_field_is_checked_inline(bot: Bot, field: str, text: str) -> None:
    views = len(bot.fake.views())
    ok(bot.sim.command(OWNER, CHANNEL, "storyboard a small robot in a neon alley"))
    view = bot.fake.wait_for(lambda: bot.fake.views()[views:] and bot.fake.views()[-1].view, what="the modal")
    _submitted(bot, view, field, text)

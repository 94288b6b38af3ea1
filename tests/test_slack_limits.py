"""Hostile input through the real app: whatever people type and providers answer, Slack accepts every message."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BOB, CHANNEL, OWNER, Bot, make_bot
from test_slack_drafting import open_edit, values_of
from test_slack_loop import draft, rows, variation_messages, wait_until

from bot.domain import JobStatus, ProviderJob
from devkit.instant import InstantProvider
from devkit.limits import MAX_FILE_ALT_TXT, check_message, check_view
from devkit.slack_api import Call, FakeSlack
from handlers import blocks
from storage.models import Generation

# Slack's refusals of what it was sent (as opposed to faults of its own).
REFUSED = {
    "invalid_blocks",
    "msg_too_long",
    "invalid_arguments",
    "view_too_large",
    "alt_txt_too_large",
    "no_text",
}
ADVISED_TEXT = 4_000  # Slack advises a message's top-level text stay under this
# An `&` that does not start one of the three entities: an escape cut in half ("&l…").
HALF_ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)")
HOSTILE = "<!channel> & <@U999> <https://evil.example|click> *bold* _it_ ~x~ `code` #general "
# Forty-odd distinct names the safety rules flag: one finding each, which used to be one section each.
FLAGGED = (
    "Taylor Swift, Beyonce, Rihanna, Lady Gaga, Ariana Grande, Billie Eilish, Dua Lipa, Ed Sheeran, Adele, "
    "Elon Musk, Jeff Bezos, Bill Gates, Steve Jobs, Tim Cook, Sam Altman, Neil Armstrong, Buzz Aldrin, "
    "Joe Biden, Barack Obama, Kamala Harris, Vladimir Putin, Angela Merkel, Boris Johnson, Justin Trudeau, "
    "Mickey Mouse, Donald Duck, Bugs Bunny, Spider-Man, Batman, Superman, Iron Man, Darth Vader, Deadpool, "
    "Bohemian Rhapsody, Billie Jean, Despacito, Wonderwall, Purple Rain, Hey Jude, "
)
SUGGESTIVE = "a sexy sultry seductive sensual provocative dancer in lingerie, "


def repeated(pattern: str, length: int) -> str:
    return (pattern * (length // len(pattern) + 1))[:length].strip()


class FailingFirst(InstantProvider):
    """Finishes every job at once, except the first, which fails with a provider's 50k-character message."""

    def fetch(self, job_id: str) -> ProviderJob:
        with self._lock:
            first = f"instant-{self.submits[0].idempotency_key}" if self.submits else None
        if job_id == first:
            error = "upstream said: " + repeated("<&> no capacity & <!here> retry later ", 50_000)
            return ProviderJob(job_id=job_id, status=JobStatus.FAILED, error=error)
        return super().fetch(job_id)


@pytest.fixture
def hostile(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    made = make_bot(fake_slack, tmp_path, local=FailingFirst())
    yield made
    made.server.stop()
    made.runtime.close()


def mrkdwn_texts(value: Any) -> Iterator[str]:
    """Every mrkdwn string in a Block Kit structure."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        for item in value.values():
            yield from mrkdwn_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from mrkdwn_texts(item)


def _blocks(call: Call) -> list[dict[str, Any]]:
    raw = call.params.get("blocks") or []
    return list(json.loads(raw) if isinstance(raw, str) else raw)


def assert_every_call_within_limits(fake: FakeSlack) -> int:
    """Every message, modal and upload the fake recorded is one Slack accepts; returns how many were checked."""
    checked = 0
    for call in fake.calls():
        answer = call.response or {}
        assert answer.get("error") not in REFUSED, (call.method, answer)
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"):
            assert call.status == 200, (call.method, call.status, answer)
            text, found = str(call.params.get("text") or ""), _blocks(call)
            assert check_message(text, found) is None, (call.method, check_message(text, found))
            assert len(text) <= ADVISED_TEXT, (call.method, len(text))
            for shown in (text, *mrkdwn_texts(found)):
                half = HALF_ENTITY.search(shown)
                assert half is None, shown[max(0, half.start() - 40) : half.start() + 40]
                assert "<!channel>" not in shown and "<!here>" not in shown and "<@U999>" not in shown
            checked += 1
        elif call.method in ("views.open", "views.update", "views.push"):
            view = call.params["view"]
            assert check_view(json.loads(view) if isinstance(view, str) else view) is None
            checked += 1
        elif call.method == "files.getUploadURLExternal":
            alt = str(call.params.get("alt_txt") or "")
            assert 0 < len(alt) <= MAX_FILE_ALT_TXT, alt
            checked += 1
        elif call.method == "files.completeUploadExternal":
            comment = str(call.params.get("initial_comment") or "")
            assert not HALF_ENTITY.search(comment)
    return checked


# --- pure: clipping and escaping ---------------------------------------------------------------


def test_fit_clips_the_raw_text_before_escaping_so_no_entity_is_cut_in_half() -> None:
    shown = blocks.fit("<" * 100, 11)
    assert shown == "&lt;&lt;…" and len(shown) <= 11
    assert blocks.fit("a & b", 100) == "a &amp; b"
    for limit in range(2, 40):
        out = blocks.fit("x<&>" * 20, limit)
        assert len(out) <= limit and not HALF_ENTITY.search(out), (limit, out)


def test_the_last_guard_never_splits_an_entity_or_a_mention_token() -> None:
    assert blocks.clip_mrkdwn("ab &amp; cd", 6) == "ab …"
    assert blocks.clip_mrkdwn("by <@U0OWNER> today", 10) == "by …"
    assert blocks.clip_mrkdwn("short", 10) == "short"


def test_a_card_keeps_its_buttons_and_says_what_it_left_out_when_the_budget_runs_out() -> None:
    head = [blocks._section("head")]
    body = [blocks._section("x" * 2_900) for _ in range(10)]
    tail = [{"type": "actions", "elements": [blocks._button("Go", "go", "1")]}]
    kept = blocks.within_budget(head, body, tail, left_out="details")
    assert kept[0] == head[0] and kept[-1] == tail[0]
    assert check_message("t", kept) is None
    assert "more details not shown" in json.dumps(kept[-2])


def test_a_draft_full_of_flags_and_slack_syntax_fits_one_card_with_findings_grouped(sora: Bot) -> None:
    idea = repeated(FLAGGED + HOSTILE, 2_000)
    card = draft(sora, idea)
    assert len(card.blocks) <= 50
    text = json.dumps(card.blocks, ensure_ascii=False)
    assert "Blocked" in text and "real person" in text and "copyrighted character" in text
    assert text.count("_Safer:_") <= 1, "the same safer rephrasing is shown once"
    sections = [b for b in card.blocks if "Blocked" in json.dumps(b) or "Check —" in json.dumps(b)]
    assert len(sections) == 3, "one section per kind of finding"
    assert "more." in text, "the words past the first few are counted, not listed"
    assert_every_call_within_limits(sora.fake)


def test_an_idea_over_the_limit_is_refused_in_one_short_message(sora: Bot) -> None:
    sora.sim.command(OWNER, CHANNEL, "draft " + repeated(HOSTILE + FLAGGED, 4_100))  # past what Slack sends
    refusal = sora.fake.wait_for(lambda: sora.fake.ephemerals(CHANNEL, OWNER), what="the refusal")[-1]
    assert "limit is 4,000" in refusal.text
    sora.sim.command(OWNER, CHANNEL, "storyboard " + repeated(HOSTILE + FLAGGED, 4_000))
    sora.fake.wait_for(lambda: sora.fake.views(), what="the storyboard modal")
    assert_every_call_within_limits(sora.fake)


def test_user_text_is_shown_verbatim_and_help_shows_its_placeholders(sora: Bot) -> None:
    card = draft(sora, "a robot reads https://example.com in #general, *not bold* & <not a link>")
    idea_block = next(b for b in card.blocks if "Idea:" in json.dumps(b))
    assert idea_block["text"].get("verbatim") is True
    assert "&lt;not a link&gt;" in idea_block["text"]["text"]
    sora.sim.command(OWNER, CHANNEL, "help")
    shown = sora.fake.wait_for(
        lambda: next((e for e in sora.fake.ephemerals(CHANNEL, OWNER) if "turns an idea" in e.text), None),
        what="help",
    )
    assert "&lt;idea&gt;" in shown.text and "<idea>" not in shown.text
    assert_every_call_within_limits(sora.fake)


def test_the_edit_modal_and_a_card_of_maximal_fields_stay_within_limits(sora: Bot) -> None:
    card = draft(sora)
    view = open_edit(sora, card)
    layer = repeated(HOSTILE + SUGGESTIVE, 400)
    values = values_of(
        view,
        subject=layer,
        action=layer,
        camera=layer,
        environment=layer,
        finish=layer,
        intent=layer,
    )
    assert sora.sim.submit_view(OWNER, view=view, values=values).status == 200
    wait_until(lambda: len(sora.fake.calls("response_url")) >= 2, "the edited card")
    edited = sora.fake.ephemerals(CHANNEL, OWNER)[-1]
    assert "Subject" in json.dumps(edited.blocks)
    open_edit(sora, edited)  # reopened with every field at its longest
    assert_every_call_within_limits(sora.fake)


def test_a_long_hostile_round_with_a_50k_provider_error_is_posted_within_limits(hostile: Bot) -> None:
    idea = repeated(SUGGESTIVE + HOSTILE, 2_000)
    card = draft(hostile, idea)
    assert hostile.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    hostile.sweep_until_idle()
    parent = next(m for m in hostile.fake.messages(CHANNEL) if m.text.startswith("Round:"))
    messages = variation_messages(hostile, parent)
    assert "failed" in messages[1].text and len(messages[1].text) < 600
    hostile.sim.reply(BOB, CHANNEL, parent.ts, "remix #2 " + repeated(HOSTILE, 390))
    hostile.sweep_until_idle()
    assert len(rows(hostile, Generation)) == 4
    files = hostile.fake.files()
    assert {f.title for f in files} >= {"Variation #2", "Contact sheet"}
    assert all(f.alt_txt for f in files), [f.title for f in files if not f.alt_txt]
    checked = assert_every_call_within_limits(hostile.fake)
    assert checked > 10

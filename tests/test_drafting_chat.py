"""Drafting on any OpenAI-compatible server: Chat Completions where there is no Responses API, and ideas
drafted in their own language. Through the real openai client over HTTP to the local fake."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import openai
import pytest
from openai_fake import DEFAULT_DRAFT, FakeOpenAI

from bot.domain import PromptSpec
from bot.drafting import (
    DraftApi,
    DraftModel,
    LlmDrafter,
    OfflineDrafter,
    build_drafter,
    idea_script,
    read_draft,
)
from bot.prompts import Goal, draft_with_notes

IDEA = "A small delivery robot rolls through a rain-soaked neon alley at night; slow dolly-in."
LLM_SPEC = PromptSpec(
    subject="A small delivery robot",
    action="rolls through a rain-soaked neon alley at night",
    camera="slow dolly-in at robot height",
    environment="puddles reflecting pink signs",
    finish="shallow depth of field, soft film grain",
    intent="8-second product teaser, 16:9",
)


@pytest.fixture
def chat_only() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responses=False) as server:
        yield server


@pytest.fixture
def full() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    fake: FakeOpenAI = request.getfixturevalue(request.param)
    with openai.OpenAI(api_key="sk-test", base_url=fake.base_url) as made:
        yield made


def drafter(fake: FakeOpenAI, api: DraftApi = "auto") -> LlmDrafter:
    made = build_drafter(api_key="sk-test", base_url=fake.base_url, model="llama-test", timeout=5.0, api=api)
    assert isinstance(made, LlmDrafter)
    return made


def statuses(fake: FakeOpenAI, path: str) -> list[int]:
    return [r.status for r in fake.requests(path)]


# --- choosing the API ---------------------------------------------------------------------------------


def test_auto_on_a_chat_only_server_drafts_through_chat_completions_with_a_strict_json_schema(
    chat_only: FakeOpenAI,
) -> None:
    made = drafter(chat_only)
    try:
        result = made.draft(IDEA, goal=Goal.PRODUCT_HERO)
    finally:
        made.close()

    assert result.source == "llm" and result.note is None and result.spec == LLM_SPEC
    assert statuses(chat_only, "/v1/responses") == [404]
    (request,) = chat_only.requests("/v1/chat/completions")
    body = request.body
    assert body["model"] == "llama-test"
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]
    assert schema["name"] == "DraftModel" and schema["strict"] is True
    assert (
        set(schema["schema"]["required"])
        == set(DraftModel.model_fields)
        == set(schema["schema"]["properties"])
    )
    assert schema["schema"]["additionalProperties"] is False
    system, user = body["messages"]
    assert system["role"] == "system" and "one clear subject" in system["content"]
    assert user == {"role": "user", "content": IDEA}
    assert "safety_identifier" not in body


@pytest.mark.parametrize("missing_status", [404, 405])
def test_auto_learns_once_per_process_that_the_server_lacks_responses(missing_status: int) -> None:
    with FakeOpenAI(responses=False, missing_status=missing_status) as fake:
        made = drafter(fake)
        try:
            assert made.api == "responses"
            assert made.draft(IDEA).source == "llm"
            assert made.api == "chat"
            # A per-user copy made for the next request knows it too: no second round trip to a 404.
            assert made.for_user("U0BOB").draft(IDEA).source == "llm"
            assert made.for_user("U0CAROL").draft(IDEA).source == "llm"
        finally:
            made.close()

        assert statuses(fake, "/v1/responses") == [missing_status]
        assert statuses(fake, "/v1/chat/completions") == [200, 200, 200]


def test_auto_stays_on_responses_where_the_server_has_it(full: FakeOpenAI) -> None:
    made = drafter(full)
    try:
        assert made.draft(IDEA).source == "llm" and made.for_user("U0BOB").draft(IDEA).source == "llm"
    finally:
        made.close()

    assert statuses(full, "/v1/responses") == [200, 200] and full.requests("/v1/chat/completions") == []


def test_an_unknown_model_is_not_taken_for_a_missing_responses_api(full: FakeOpenAI) -> None:
    full.fail_next(
        "/v1/responses",
        404,
        body={
            "error": {
                "message": "The model `llama-test` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )
    made = drafter(full)
    try:
        result = made.draft(IDEA)
        assert made.api == "responses"
    finally:
        made.close()

    assert result.source == "offline"
    assert result.note == "The AI drafter failed (HTTP 404); this draft was made offline."
    assert full.requests("/v1/chat/completions") == []


def test_the_responses_setting_never_falls_back_to_chat(chat_only: FakeOpenAI) -> None:
    made = drafter(chat_only, api="responses")
    try:
        result = made.draft(IDEA)
        again = made.draft(IDEA)
    finally:
        made.close()

    assert result.source == again.source == "offline"
    assert result.note == "The AI drafter failed (HTTP 404); this draft was made offline."
    assert statuses(chat_only, "/v1/responses") == [404, 404]
    assert chat_only.requests("/v1/chat/completions") == []


def test_the_chat_setting_never_asks_for_responses(full: FakeOpenAI) -> None:
    made = drafter(full, api="chat")
    try:
        result = made.draft(IDEA)
    finally:
        made.close()

    assert result.source == "llm" and result.spec == LLM_SPEC
    assert full.requests("/v1/responses") == [] and statuses(full, "/v1/chat/completions") == [200]


def test_a_per_user_chat_draft_carries_no_user_identifier(chat_only: FakeOpenAI) -> None:
    made = drafter(chat_only, api="chat")
    try:
        made.for_user("U0OWNER").draft(IDEA)
    finally:
        made.close()

    (request,) = chat_only.requests("/v1/chat/completions")
    assert "U0OWNER" not in json.dumps(request.body) and "safety_identifier" not in request.body


# --- what the model answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        '{"subject": "a robot"',
        "Sure! Here is your draft: subject = a robot",
        json.dumps({"subject": "a robot", "action": "rolls"}),
        json.dumps({**DEFAULT_DRAFT, "beats": "not a list"}),
        "",
        "{ }",
    ],
    ids=["truncated", "prose", "missing-fields", "wrong-type", "empty", "empty-object"],
)
def test_a_malformed_answer_over_chat_drafts_offline_with_a_note_and_no_traceback(
    chat_only: FakeOpenAI, answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    chat_only.set_draft(answer)
    made = drafter(chat_only)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.drafting"):
            result = made.draft(IDEA, goal=Goal.SOCIAL_TEASER)
    finally:
        made.close()

    assert result.source == "offline"
    assert result.spec == draft_with_notes(IDEA, goal=Goal.SOCIAL_TEASER).spec
    assert result.note == "The AI drafter's answer could not be read; this draft was made offline."
    (record,) = [r for r in caplog.records if r.name == "bot.drafting"]
    assert record.exc_info is None and "Traceback" not in record.getMessage()
    assert "\n" not in record.getMessage()


def test_json_wrapped_in_a_markdown_fence_is_still_read(chat_only: FakeOpenAI) -> None:
    chat_only.set_draft("Here you go:\n```json\n" + json.dumps(DEFAULT_DRAFT, indent=2) + "\n```\n")
    made = drafter(chat_only)
    try:
        result = made.draft(IDEA)
    finally:
        made.close()

    assert result.source == "llm" and result.spec == LLM_SPEC


def test_a_refusal_over_chat_drafts_offline_and_says_so(chat_only: FakeOpenAI) -> None:
    chat_only.refuse_next()
    made = drafter(chat_only)
    try:
        result = made.draft(IDEA)
    finally:
        made.close()

    assert result.source == "offline"
    assert result.note == "The AI drafter declined this idea; this draft was made offline."


def test_a_server_error_over_chat_drafts_offline(chat_only: FakeOpenAI) -> None:
    chat_only.fail_next("/v1/chat/completions", 500, retry_after=0.01, times=2)
    made = drafter(chat_only, api="chat")
    try:
        result = made.draft(IDEA)
    finally:
        made.close()

    assert result.note == "The AI drafter failed (HTTP 500); this draft was made offline."


def test_read_draft_takes_plain_json_and_rejects_text_without_a_draft() -> None:
    assert read_draft(json.dumps(DEFAULT_DRAFT)).subject == "A small delivery robot"
    with pytest.raises(ValueError):
        read_draft("no draft here")


# --- the idea's language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("idea", "script"),
    [
        ("雨の路地を走る小さな配達ロボット", "HIRAGANA"),
        ("東京ネオンタワー", "KATAKANA"),
        ("비 오는 골목의 작은 배달 로봇", "HANGUL"),
        ("雨夜小巷里的送货机器人", "CJK"),
        ("Маленький робот-курьер едет по дождливой улице", "CYRILLIC"),
        ("روبوت توصيل صغير في زقاق ممطر", "ARABIC"),
        ("बारिश में एक छोटा डिलीवरी रोबोट", "DEVANAGARI"),
        ("Un petit robot livreur sous la pluie, néons", None),
        ("robot 🤖 in the rain", None),
        ("", None),
    ],
)
def test_the_script_of_an_idea_is_read_from_its_letters(idea: str, script: str | None) -> None:
    assert idea_script(idea) == script


@pytest.mark.parametrize("fake_name", ["full", "chat_only"])
@pytest.mark.parametrize(
    ("idea", "expected"),
    [
        (
            "雨の路地を走る小さな配達ロボット",
            "The idea is in Japanese: write every field and beat in Japanese",
        ),
        ("Маленький робот едет по дождливой улице", "in Cyrillic script, never in English"),
    ],
)
def test_an_idea_in_another_language_asks_the_model_to_draft_in_that_language(
    request: pytest.FixtureRequest, fake_name: str, idea: str, expected: str
) -> None:
    fake: FakeOpenAI = request.getfixturevalue(fake_name)
    made = drafter(fake)
    try:
        made.draft(idea)
        made.draft(IDEA)
    finally:
        made.close()

    sent = fake.requests("/v1/chat/completions") or fake.requests("/v1/responses")
    systems = [(r.body.get("messages") or r.body.get("input"))[0]["content"] for r in sent]
    assert expected in systems[0] and "in the idea's own language" in systems[0]
    assert "never in English" not in systems[-1]


def test_a_japanese_draft_keeps_its_language_and_its_beats_are_spread_over_the_seconds_it_names(
    chat_only: FakeOpenAI,
) -> None:
    beats = ["ロボットが画面に入る", "水たまりで止まる", "カメラの方を向く"]
    chat_only.set_draft(
        {
            "subject": "小さな配達ロボット",
            "action": "雨の路地を進む",
            "camera": "ロボットの高さでゆっくりドリーイン",
            "environment": "ピンクのネオンが映る水たまり",
            "finish": "浅い被写界深度、柔らかいフィルムグレイン",
            "intent": "12秒のストーリーボード、16:9",
            "beats": beats,
        }
    )
    made = drafter(chat_only)
    try:
        result = made.draft("雨の路地を走る小さな配達ロボット", goal=Goal.STORYBOARD)
    finally:
        made.close()

    assert result.source == "llm" and result.spec.subject == "小さな配達ロボット"
    assert [(b.text, b.start) for b in result.spec.beats] == list(zip(beats, (0.0, 4.0, 8.0), strict=True))


def test_without_a_server_the_drafter_is_offline() -> None:
    assert isinstance(build_drafter(api_key=None, base_url=None, model="m", api="chat"), OfflineDrafter)

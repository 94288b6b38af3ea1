"""Drafting through the real openai client over HTTP to a local fake: the LLM path and every way back offline."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator

import openai
import pytest
from openai_fake import DEFAULT_DRAFT, FakeOpenAI

from bot.domain import PromptSpec
from bot.drafting import (
    DraftModel,
    DraftResult,
    LlmDrafter,
    OfflineDrafter,
    build_drafter,
    hash_user_id,
)
from bot.prompts import PRESETS, Goal, draft_with_notes, lint

STRONG = (
    "A small delivery robot rolls through a rain-soaked neon alley at night, puddles reflecting pink signs; "
    "slow dolly-in at robot height; shallow depth of field, soft film grain; 8-second product teaser."
)
WEAK = "cinematic epic amazing robot, neon, rain, 4k, masterpiece, dramatic lighting, alley"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="sk-test", base_url=fake.base_url) as made:
        yield made


def drafter(client: openai.OpenAI, *, timeout: float = 5.0) -> LlmDrafter:
    return LlmDrafter(client=client, model="gpt-test", fallback=OfflineDrafter(), timeout=timeout)


def offline(idea: str, goal: Goal | None = None) -> PromptSpec:
    return draft_with_notes(idea, goal=goal).spec


def test_the_llm_drafter_turns_the_weak_robot_prompt_into_all_six_layers(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    result = drafter(client).draft(WEAK, goal=None)

    assert result.source == "llm" and result.note is None and result.filled == ()
    assert result.spec == PromptSpec(
        subject="A small delivery robot",
        action="rolls through a rain-soaked neon alley at night",
        camera="slow dolly-in at robot height",
        environment="puddles reflecting pink signs",
        finish="shallow depth of field, soft film grain",
        intent="8-second product teaser, 16:9",
    )
    assert lint(result.spec, filled=result.filled) == ()


def test_the_request_is_a_strict_json_schema_with_the_grammar_the_goal_and_the_idea(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    drafter(client).draft(STRONG, goal=Goal.PRODUCT_HERO)

    (request,) = fake.requests("/v1/responses")
    body = request.body
    assert body["model"] == "gpt-test"
    text_format = body["text"]["format"]
    assert text_format["type"] == "json_schema" and text_format["strict"] is True
    assert text_format["name"] == "DraftModel"
    assert set(text_format["schema"]["required"]) == set(DraftModel.model_fields)
    assert text_format["schema"]["additionalProperties"] is False
    system, user = body["input"]
    assert system["role"] == "system" and user == {"role": "user", "content": STRONG}
    assert "one clear subject" in system["content"] and "No keyword piles" in system["content"]
    assert PRESETS[Goal.PRODUCT_HERO].guidance in system["content"]
    assert "safety_identifier" not in body
    assert request.headers["authorization"] == "Bearer sk-test"


def test_a_drafter_for_a_user_sends_a_sha256_of_their_slack_id_never_the_id(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    drafter(client).for_user("U0OWNER").draft(STRONG)

    (request,) = fake.requests("/v1/responses")
    expected = hashlib.sha256(b"U0OWNER").hexdigest()
    assert request.body["safety_identifier"] == expected == hash_user_id("U0OWNER")
    assert "U0OWNER" not in str(request.body)


def test_closing_a_per_user_drafter_leaves_the_shared_client_open(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    root = drafter(client)
    root.for_user("U0BOB").close()

    assert root.for_user("U0CAROL").draft(STRONG).source == "llm"


def test_storyboard_beats_from_the_model_are_spread_over_the_clip(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    beats = ["the robot rolls into frame", "it stops at a puddle", "it turns toward camera"]
    fake.set_draft({**DEFAULT_DRAFT, "intent": "12-second storyboard, 16:9", "beats": beats})

    result = drafter(client).draft(STRONG, goal=Goal.STORYBOARD)

    assert [(b.text, b.start) for b in result.spec.beats] == list(zip(beats, (0.0, 4.0, 8.0), strict=True))


def test_an_empty_layer_from_the_model_is_filled_by_the_offline_drafter_and_named(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.set_draft({**DEFAULT_DRAFT, "camera": "", "finish": "   "})

    result = drafter(client).draft(STRONG)

    assert result.source == "llm" and result.filled == ("camera", "finish")
    assert result.spec.camera == offline(STRONG).camera == "slow dolly-in at robot height"
    assert result.spec.finish == offline(STRONG).finish
    assert result.spec.subject == "A small delivery robot"


def test_a_refusal_drafts_offline_and_says_so(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.refuse_next()

    result = drafter(client).draft(STRONG, goal=Goal.AD_CONCEPT)

    assert result == DraftResult(
        spec=offline(STRONG, Goal.AD_CONCEPT),
        filled=draft_with_notes(STRONG, goal=Goal.AD_CONCEPT).filled,
        source="offline",
        note="The AI drafter declined this idea; this draft was made offline.",
    )


def test_a_timeout_drafts_offline_and_says_it_timed_out(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    # Both the call and its one retry are slower than the drafter's clock.
    fake.delay_next("/v1/responses", 5.0, times=2)

    result = drafter(client, timeout=0.25).draft(WEAK)

    assert result.source == "offline" and result.spec == offline(WEAK)
    assert result.note == "The AI drafter timed out; this draft was made offline."


def test_a_rate_limit_drafts_offline_and_says_the_drafter_is_busy(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.fail_next("/v1/responses", 429, retry_after=0.01, times=2)

    result = drafter(client).draft(STRONG)

    assert result.source == "offline" and result.spec == offline(STRONG)
    assert result.note is not None and "rate limited" in result.note and "made offline" in result.note
    assert [r.status for r in fake.requests("/v1/responses")] == [429, 429]


def test_a_server_error_drafts_offline(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_next("/v1/responses", 500, retry_after=0.01, times=2)

    result = drafter(client).draft(STRONG)

    assert result.source == "offline"
    assert result.note == "The AI drafter failed (HTTP 500); this draft was made offline."


def test_one_server_error_is_retried_once_and_the_llm_draft_still_arrives(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.fail_next("/v1/responses", 503, retry_after=0.01)

    result = drafter(client).draft(STRONG)

    assert result.source == "llm"
    assert [r.status for r in fake.requests("/v1/responses")] == [503, 200]


def test_a_rejected_key_drafts_offline_and_names_the_key(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_next("/v1/responses", 401)

    result = drafter(client).draft(STRONG)

    assert result.source == "offline" and result.note is not None and "OpenAI key" in result.note


def test_an_unreadable_answer_drafts_offline(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.set_draft('{"subject": "a robot"')

    result = drafter(client).draft(STRONG)

    assert result.source == "offline"
    assert result.note == "The AI drafter's answer could not be read; this draft was made offline."


def test_an_unreachable_server_drafts_offline() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1") as unreachable:
        result = drafter(unreachable).draft(STRONG)

    assert result.source == "offline"
    assert result.note == "The AI drafter could not be reached; this draft was made offline."


def test_a_blank_idea_is_drafted_offline_without_calling_the_model(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    result = drafter(client).draft("   ", goal=Goal.SOCIAL_TEASER)

    assert result.source == "offline" and result.note is None
    assert fake.requests() == []


def test_the_offline_drafter_keeps_the_defaults_it_filled_so_lint_can_say_so() -> None:
    result = OfflineDrafter().draft(WEAK, goal=None)

    assert result.source == "offline" and result.note is None
    assert result.filled == ("camera", "intent")
    assert {"keyword_pile", "camera_missing"} <= {f.rule for f in lint(result.spec, filled=result.filled)}


def test_build_drafter_is_offline_without_a_key_and_llm_with_one(fake: FakeOpenAI) -> None:
    assert isinstance(build_drafter(api_key=None, base_url=None, model="gpt-test"), OfflineDrafter)
    built = build_drafter(api_key="sk-test", base_url=fake.base_url, model="gpt-test")
    try:
        assert isinstance(built, LlmDrafter)
        assert built.draft(STRONG).source == "llm"
    finally:
        built.close()

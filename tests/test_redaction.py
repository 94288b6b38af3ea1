"""Secrets never leave: a key a provider echoes back is not shown, logged or stored."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OWNER, SECRET, Bot, make_bot
from provider_fakes import FakeOpenAI, make_clip
from sqlmodel import SQLModel, text
from test_slack_loop import draft, rows, wait_until

from bot import redaction
from bot.errors import AuthFailed, ProviderError
from devkit.slack_api import FakeSlack
from handlers import blocks
from storage.models import Generation

OPENAI_KEY = "sk-proj-RECOGNISABLEopenaiKEY0123456789"
GEMINI_KEY = "AIzaRECOGNISABLEgeminiKEY0123456789abcd"
SLACK_TOKEN = "xoxb-1111-2222-RECOGNISABLEslackTOKEN"
WEBHOOK_SECRET = "whsec_UkVDT0dOSVNBQkxFd2ViaG9va1NFQ1JFVA=="
SECRETS = (OPENAI_KEY, GEMINI_KEY, SLACK_TOKEN, WEBHOOK_SECRET, SECRET)


@pytest.fixture
def forget() -> Iterator[None]:
    """Secrets a unit test adds are gone afterwards."""
    undo = redaction.protect(["plain-secret-value", "a/b+c=d secret"])
    yield
    undo()


def test_configured_secrets_are_redacted_by_value_also_percent_encoded(forget: None) -> None:
    said = redaction.redact("got plain-secret-value and a%2Fb%2Bc%3Dd%20secret back")
    assert said == "got [redacted] and [redacted] back"


@pytest.mark.parametrize(
    ("leaky", "clean"),
    [
        ("Incorrect API key provided: sk-proj-abc123DEF456ghi.", "Incorrect API key provided: [redacted]."),
        ("header Authorization: Bearer abcdefghijkl", "header Authorization: Bearer [redacted]"),
        ("token xoxb-123-456-abcdef and xapp-1-A0-99", "token [redacted] and [redacted]"),
        (
            "GET https://x.example/v1/files/a:download?alt=media&key=AIzaSyA",
            "GET https://x.example/v1/files/a:download?alt=media&key=[redacted]",
        ),
        ("key AIzaSyD-1234567890abcdefghijklmnopqr", "key [redacted]"),
        ('{"x-goog-api-key": "abc123"}', '{"x-goog-api-key": "[redacted]"}'),
        ("Authorization: Key 1234-abcd:ffeeddccbbaa", "Authorization: Key [redacted]"),
        ("postgresql://bot:hunter22@db:5432/sora", "postgresql://bot:[redacted]@db:5432/sora"),
        ("the fox basks in the key light; check FAL_KEY.", "the fox basks in the key light; check FAL_KEY."),
    ],
)
def test_shapes_of_keys_and_tokens_are_redacted_and_plain_words_are_left(leaky: str, clean: str) -> None:
    assert redaction.redact(leaky) == clean


def test_a_provider_error_is_redacted_where_it_is_built(forget: None) -> None:
    err = AuthFailed("The gateway refused our key (HTTP 401: bad key plain-secret-value)")
    assert "plain-secret-value" not in str(err) and "[redacted]" in str(err)


def test_every_log_record_is_scrubbed_whatever_its_logger_args_or_traceback(
    forget: None, caplog: pytest.LogCaptureFixture
) -> None:
    redaction.install_log_scrubbing()
    caplog.set_level(logging.INFO)
    child = logging.getLogger("some.library.deep.inside")
    child.warning("request failed: %s", "plain-secret-value")
    try:
        raise RuntimeError("echoed plain-secret-value")
    except RuntimeError:
        child.exception("it broke")
    assert "plain-secret-value" not in caplog.text
    assert all("plain-secret-value" not in r.getMessage() for r in caplog.records)
    assert "request failed: [redacted]" in caplog.text and "RuntimeError: echoed [redacted]" in caplog.text


# --- through the running app -------------------------------------------------------------------------


@pytest.fixture
def leaky(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[tuple[Bot, FakeOpenAI]]:
    with FakeOpenAI(clip=make_clip(tmp_path), api_key=OPENAI_KEY, polls_to_complete=50) as videos:
        made = make_bot(
            fake_slack,
            tmp_path,
            env={
                "SLACK_BOT_TOKEN": SLACK_TOKEN,
                "OPENAI_API_KEY": OPENAI_KEY,
                "OPENAI_BASE_URL": videos.base_url,
                "GEMINI_API_KEY": GEMINI_KEY,
                "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "VIDEO_PROVIDER": "openai",
            },
        )
        yield made, videos
        made.server.stop()
        made.runtime.close()


def echo(message: str) -> dict[str, object]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def test_a_gateway_that_echoes_the_key_never_gets_it_shown_logged_or_stored(
    leaky: tuple[Bot, FakeOpenAI], caplog: pytest.LogCaptureFixture
) -> None:
    sora, videos = leaky
    caplog.set_level(logging.DEBUG)
    # A create refused with the key quoted; a poll refused with it in an error URL; a job that fails saying it.
    videos.fail_next("submit", 401, body=echo(f"Incorrect API key provided: {OPENAI_KEY}."))
    videos.fail_next(
        "poll", 401, body=echo(f"Key rejected at https://gw.example/v1/videos?key={OPENAI_KEY}&x=1")
    )
    failed_video = {
        "id": "video_x",
        "object": "video",
        "status": "failed",
        "model": "sora-2",
        "progress": 0,
        "created_at": 1,
        "seconds": "4",
        "size": "1280x720",
        "error": {"code": "internal", "message": f"upstream said: Authorization: Bearer {OPENAI_KEY}"},
    }
    videos.fail_next("poll", 200, body=failed_video)
    videos.fail_next("poll", 500, body=echo(f"gateway crashed handling key {OPENAI_KEY}"), times=20)
    logging.getLogger("sora-bot").warning("settings were %s %s", OPENAI_KEY, SLACK_TOKEN)

    card = draft(sora)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    wait_until(lambda: len([g for g in rows(sora, Generation) if g.message_ts]) == 3, "variation messages")
    for _ in range(6):
        sora.services.sweep()
        sora.clock.advance(seconds=40)
    sora.clock.advance(seconds=5)
    sora.services.posting.deliver()

    generations = rows(sora, Generation)
    assert sorted(g.status for g in generations) == ["failed", "failed", "failed"]
    assert any("refused our key" in (g.error or "") for g in generations)
    assert all("[redacted]" in (g.error or "") for g in generations)
    shown = [
        json.dumps(c.params) for c in sora.fake.calls() if c.method in ("chat.postMessage", "chat.update")
    ]
    assert any("refused our key" in s and "[redacted]" in s for s in shown), "the failure is shown, redacted"

    leaks: list[str] = []
    for secret in SECRETS:
        leaks += [f"log: {r.getMessage()[:80]}" for r in caplog.records if secret in r.getMessage()]
        if secret in caplog.text:
            leaks.append(f"log text has {secret[:8]}…")
        for call in sora.fake.calls():
            if secret in json.dumps(call.params) + json.dumps(call.response):
                leaks.append(f"slack {call.method} has {secret[:8]}…")
    with sora.services.store.read() as repo:
        for table in SQLModel.metadata.sorted_tables:
            for row in repo.session.execute(text(f'SELECT * FROM "{table.name}"')).all():
                dumped = repr(tuple(row))
                leaks += [f"table {table.name} has {s[:8]}…" for s in SECRETS if s in dumped]
    assert leaks == []


def test_a_provider_error_without_configured_secrets_still_drops_key_shapes() -> None:
    err = ProviderError("refused: ?key=AIzaSyA123&alt=media, Bearer sk-abcdefghijkl")
    assert str(err) == "refused: ?key=[redacted]&alt=media, Bearer [redacted]"

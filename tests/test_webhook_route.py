"""`POST /webhooks/<provider>` in the running app: verified callbacks poll the job at once; forgeries touch nothing."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OWNER, Bot, make_bot
from provider_fakes import FakeOpenAI, make_clip
from test_slack_loop import draft, rows, wait_until
from test_webhooks import standard_signature

from devkit.slack_api import FakeSlack
from handlers import blocks
from storage.models import Generation

SECRET = "whsec_" + base64.b64encode(b"a webhook secret of 32 bytes!!!!").decode()


@pytest.fixture
def hooked(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[tuple[Bot, FakeOpenAI]]:
    with FakeOpenAI(clip=make_clip(tmp_path), polls_to_complete=50) as videos:
        made = make_bot(
            fake_slack,
            tmp_path,
            env={
                "OPENAI_API_KEY": videos.api_key,
                "OPENAI_BASE_URL": videos.base_url,
                "VIDEO_PROVIDER": "openai",
                "OPENAI_WEBHOOK_SECRET": SECRET,
            },
        )
        yield made, videos
        made.server.stop()
        made.runtime.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def signed(body: bytes, *, key: bytes) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": standard_signature(key, webhook_id="msg_1", timestamp=stamp, body=body),
        "content-type": "application/json",
    }


def test_a_signed_completion_callback_polls_the_job_now_and_a_forgery_is_refused(
    hooked: tuple[Bot, FakeOpenAI],
) -> None:
    sora, _ = hooked
    card = draft(sora)
    sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE)
    wait_until(lambda: len([g for g in rows(sora, Generation) if g.message_ts]) == 3, "variation messages")
    sora.services.sweep()
    job = rows(sora, Generation)[0]
    assert job.status == "in_progress" and job.provider_job_id and job.next_poll_at is not None
    sora.clock.advance(seconds=0.1)
    assert job.next_poll_at > sora.clock.now(), "not due yet without the callback"
    body = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "created_at": 1,
            "type": "video.completed",
            "data": {"id": job.provider_job_id},
        }
    ).encode()
    url = sora.server.url + "/webhooks/openai"
    assert post(url, body, signed(body, key=b"a different secret entirely!!!!!")) == 401
    assert rows(sora, Generation)[0].next_poll_at == job.next_poll_at
    assert post(url, body, signed(body, key=b"a webhook secret of 32 bytes!!!!")) == 200
    assert rows(sora, Generation)[0].next_poll_at == sora.clock.now()
    assert post(sora.server.url + "/webhooks/fal", body, {"content-type": "application/json"}) == 404

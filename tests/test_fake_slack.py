"""The built-in fake Slack, driven by the real slack_sdk WebClient and a real Bolt app over HTTP."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.error import URLError
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, Respond, Say
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from devkit.simulator import SlackSimulator
from devkit.slack_api import Ephemeral, FakeSlack, Message

CHANNEL = "CDEMO"
ANA = "UANA"
BEN = "UBEN"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(users={ANA: "ana", BEN: "ben"}) as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


def _button_blocks(text: str, *buttons: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [
        {"type": "section", "block_id": "intro", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": "choices",
            "elements": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "value": value,
                    "text": {"type": "plain_text", "text": label},
                }
                for action_id, label, value in buttons
            ],
        },
    ]


# -- the Web API through the real WebClient


def test_post_then_update_shows_only_the_final_text_in_the_transcript(
    fake: FakeSlack, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="Round 1: queued")
    client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Round 1: done")

    transcript = fake.transcript()
    assert "sora: Round 1: done (edited)" in transcript
    assert "queued" not in transcript
    assert fake.message(CHANNEL, posted["ts"]) is not None


def test_message_timestamps_are_unique_and_increasing(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel=CHANNEL, text=f"m{i}")["ts"] for i in range(3)]
    assert abs(float(stamps[0]) - time.time()) < 60, "a ts is the posting time, as in Slack"
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 3


def test_updating_an_unknown_message_answers_message_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel=CHANNEL, ts="1.000000", text="nope")
    assert caught.value.response["error"] == "message_not_found"


def test_thread_reply_appears_indented_under_its_parent(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 1")
    client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="Variation 1")
    client.chat_postMessage(channel=CHANNEL, text="Round 2")

    assert [m.text for m in fake.messages(CHANNEL)] == ["Round 1", "Round 2"]
    assert [m.text for m in fake.messages(CHANNEL, thread_ts=parent["ts"])] == ["Variation 1"]
    lines = fake.transcript().splitlines()
    assert lines == ["#demo (CDEMO)", "  sora: Round 1", "    ↳ sora: Variation 1", "  sora: Round 2"]


def test_files_upload_v2_stores_the_bytes_and_shares_the_file_in_the_thread(
    fake: FakeSlack, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 1")
    content = b"\x00\x00\x00\x18ftypmp42" * 200

    response = client.files_upload_v2(
        content=content,
        filename="clip.mp4",
        title="Variation 1",
        channel=CHANNEL,
        thread_ts=parent["ts"],
        initial_comment="variation 1 is ready",
    )

    (stored,) = fake.files()
    assert stored.content == content and stored.completed
    assert response["file"]["id"] == stored.id
    (shared,) = fake.messages(CHANNEL, thread_ts=parent["ts"])
    assert shared.text == "variation 1 is ready"
    assert [f.filename for f in shared.files] == ["clip.mp4"]
    assert [c.method for c in fake.calls()][-3:] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert fake.calls("upload")[0].authorization is None
    assert '📎 clip.mp4 (2 KB) "Variation 1"' in fake.transcript()


def test_uploaded_file_can_be_downloaded_with_the_bot_token(fake: FakeSlack, client: WebClient) -> None:
    client.files_upload_v2(content=b"frame", filename="still.png", channel=CHANNEL)
    url = fake.files()[0].url_private
    request = urllib.request.Request(url, headers={"Authorization": "Bearer xoxb-test"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.read() == b"frame"


def test_rate_limited_call_succeeds_after_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=1)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))

    response = client.chat_postMessage(channel=CHANNEL, text="after the storm")

    assert response["ok"]
    assert [c.status for c in fake.calls("chat.postMessage")] == [429, 200]
    assert [m.text for m in fake.messages(CHANNEL)] == ["after the storm"]


def test_injected_error_fails_only_the_next_call(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("reactions.add", error="not_in_channel")
    posted = client.chat_postMessage(channel=CHANNEL, text="hello")

    with pytest.raises(SlackApiError) as caught:
        client.reactions_add(channel=CHANNEL, timestamp=posted["ts"], name="eyes")
    client.reactions_add(channel=CHANNEL, timestamp=posted["ts"], name="eyes")

    assert caught.value.response["error"] == "not_in_channel"
    message = fake.message(CHANNEL, posted["ts"])
    assert message is not None and message.reactions == {"eyes": ["UBOT"]}


def test_response_url_post_becomes_an_ephemeral_for_that_user(fake: FakeSlack) -> None:
    url = fake.new_response_url(CHANNEL, ANA)

    WebhookClient(url).send(text="draft ready", response_type="ephemeral")

    (ephemeral,) = fake.ephemerals(user=ANA)
    assert (ephemeral.channel, ephemeral.text, ephemeral.source) == (CHANNEL, "draft ready", "response_url")
    assert fake.ephemerals(user=BEN) == []
    assert "(only ana sees) sora: draft ready" in fake.transcript()


def test_response_url_replace_original_and_in_channel(fake: FakeSlack) -> None:
    webhook = WebhookClient(fake.new_response_url(CHANNEL, ANA))
    webhook.send(text="draft card")
    webhook.send_dict({"text": "generating…", "replace_original": True})
    webhook.send_dict({"text": "Round 1 started", "response_type": "in_channel"})

    assert [e.text for e in fake.ephemerals(user=ANA)] == ["generating…"]
    assert [m.text for m in fake.messages(CHANNEL)] == ["Round 1 started"]
    webhook.send_dict({"delete_original": True})
    assert fake.ephemerals(user=ANA) == []


def test_wait_for_returns_the_value_once_it_appears(fake: FakeSlack, client: WebClient) -> None:
    timer = threading.Timer(0.05, lambda: client.chat_postMessage(channel=CHANNEL, text="later"))
    timer.start()
    try:
        found = fake.wait_for(lambda: next(iter(fake.messages(CHANNEL)), None), timeout=5, what="a message")
    finally:
        timer.join()
    assert found.text == "later"


def test_wait_for_times_out_with_a_clear_message(fake: FakeSlack) -> None:
    with pytest.raises(TimeoutError, match="timed out waiting for the winner announcement"):
        fake.wait_for(lambda: None, timeout=0.05, what="the winner announcement")


def test_invalid_token_is_refused_with_invalid_auth(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as caught:
        WebClient(token="not-a-bot-token", base_url=fake.api_url).chat_postMessage(channel=CHANNEL, text="x")
    assert caught.value.response["error"] == "invalid_auth"
    assert fake.messages(CHANNEL) == []


def test_unknown_methods_are_answered_and_recorded(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.api_call("pins.add", json={"channel": CHANNEL})
    assert caught.value.response["error"] == "unknown_method"
    assert fake.calls("pins.add")[0].params == {"channel": CHANNEL}


def test_calls_record_json_and_form_params_with_the_authorization(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="json body")
    client.users_info(user=ANA)

    post, info = fake.calls("chat.postMessage")[0], fake.calls("users.info")[0]
    assert post.params["text"] == "json body" and post.authorization == "Bearer xoxb-test"
    assert info.params == {"user": ANA}
    assert info.response is not None and info.response["user"]["name"] == "ana"


def test_auth_test_and_conversations_info_describe_the_workspace(client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T0001")
    assert client.conversations_info(channel=CHANNEL)["channel"]["name"] == "demo"


def test_views_open_then_update_keeps_the_view_id(fake: FakeSlack, client: WebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "edit",
        "title": {"type": "plain_text", "text": "Edit"},
        "blocks": [],
    }
    opened = client.views_open(trigger_id="1.T0001.x", view=modal)
    updated = client.views_update(view_id=opened["view"]["id"], view={**modal, "private_metadata": "d1"})

    assert updated["view"]["id"] == opened["view"]["id"]
    (view,) = fake.views()
    assert view.view["private_metadata"] == "d1" and view.updates == 1


def test_transcript_reads_blocks_buttons_reactions_and_ephemerals(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(
        channel=CHANNEL,
        text="fallback",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "Round 1"}},
            *_button_blocks("a cat surfing at dawn", ("close", "Close round", "r1")),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "local · 4s"}]},
        ],
    )
    fake.record_reaction(CHANNEL, posted["ts"], "thumbsup", ANA)
    fake.record_reaction(CHANNEL, posted["ts"], ":thumbsup:", BEN)
    client.chat_postEphemeral(channel=CHANNEL, user=ANA, text="only for you")

    assert fake.transcript() == "\n".join(
        [
            "#demo (CDEMO)",
            "  sora: Round 1",
            "      a cat surfing at dawn",
            "      [Close round]",
            "      local · 4s",
            "      :thumbsup: ×2 (ana, ben)",
            "  (only ana sees) sora: only for you",
        ]
    )


# -- what real Slack enforces, through the real WebClient


def _sections(count: int, *, chars: int = 10) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * chars}} for _ in range(count)]


_PLAIN = {"type": "plain_text", "text": "Go"}


def _refusal(call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    return dict(caught.value.response.data)  # type: ignore[arg-type]


def test_more_than_fifty_blocks_are_refused_and_nothing_is_posted(fake: FakeSlack, client: WebClient) -> None:
    refused = _refusal(lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=_sections(51)))

    assert refused["ok"] is False and refused["error"] == "invalid_blocks"
    assert "too many blocks" in refused["errors"][0]
    assert fake.messages(CHANNEL) == []
    assert client.chat_postMessage(channel=CHANNEL, text="t", blocks=_sections(50))["ok"]


def test_an_update_whose_blocks_exceed_13200_characters_of_json_leaves_the_message_as_it_was(
    fake: FakeSlack, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="Round 1", blocks=_sections(1))

    big = _sections(5, chars=2_900)
    refused = _refusal(lambda: client.chat_update(channel=CHANNEL, ts=posted["ts"], text="t", blocks=big))

    assert refused["error"] == "invalid_blocks"
    message = fake.message(CHANNEL, posted["ts"])
    assert message is not None and message.text == "Round 1" and not message.edited


def test_a_section_text_over_3000_characters_is_refused(client: WebClient) -> None:
    refused = _refusal(
        lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=_sections(1, chars=3_001))
    )
    assert refused["error"] == "invalid_blocks" and "/blocks/0/text" in refused["errors"][0]


def test_an_ephemeral_text_over_40000_characters_is_msg_too_long(fake: FakeSlack, client: WebClient) -> None:
    refused = _refusal(lambda: client.chat_postEphemeral(channel=CHANNEL, user=ANA, text="x" * 40_001))

    assert refused["error"] == "msg_too_long"
    assert fake.ephemerals() == []


def test_a_response_url_refuses_what_chat_post_message_refuses(fake: FakeSlack) -> None:
    webhook = WebhookClient(fake.new_response_url(CHANNEL, ANA))

    response = webhook.send(text="draft", blocks=_sections(51))

    assert response.status_code == 400
    assert json.loads(response.body)["error"] == "invalid_blocks"
    assert fake.ephemerals() == []


@pytest.mark.parametrize(
    ("block", "pointer"),
    [
        ({"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}, "/blocks/0/text/text"),
        ({"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}, "/blocks/0/text/type"),
        ({"type": "section", "text": {"type": "mrkdwn", "text": ""}}, "/blocks/0/text/text"),
        ({"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}, "/blocks/0/fields"),
        ({"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2_001}]}, "/blocks/0/fields/0/text"),
        ({"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}, "/blocks/0/elements"),
        (
            {"type": "section", "text": {"type": "plain_text", "text": "p", "verbatim": True}},
            "/blocks/0/text/verbatim",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b" * 76}}
                ],
            },
            "/blocks/0/elements/0/text/text",
        ),
        (
            {"type": "actions", "block_id": "b" * 256, "elements": [{"type": "button", "text": _PLAIN}]},
            "/blocks/0/block_id",
        ),
    ],
)
def test_blocks_past_any_block_kit_limit_are_refused_naming_where(
    client: WebClient, block: dict[str, Any], pointer: str
) -> None:
    refused = _refusal(lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=[block]))
    assert refused["error"] == "invalid_blocks" and f"[json-pointer:{pointer}]" in refused["errors"][0]


def test_a_modal_past_slacks_limits_is_refused_and_not_opened(fake: FakeSlack, client: WebClient) -> None:
    modal: dict[str, Any] = {"type": "modal", "title": {"type": "plain_text", "text": "Edit"}, "blocks": []}
    too_long_title = {**modal, "title": {"type": "plain_text", "text": "A title of twenty-five ch"}}
    too_many_blocks = {**modal, "blocks": [{"type": "divider"}] * 101}
    too_much_metadata = {**modal, "private_metadata": "m" * 3_001}
    for view, pointer in (
        (too_long_title, "/view/title/text"),
        (too_many_blocks, "/view/blocks"),
        (too_much_metadata, "/view/private_metadata"),
    ):
        refused = _refusal(lambda v=view: client.views_open(trigger_id="1.T0001.x", view=v))
        assert refused["error"] == "invalid_arguments" and pointer in refused["errors"][0]
    assert fake.views() == []


def test_an_upload_description_over_1000_characters_is_refused(fake: FakeSlack, client: WebClient) -> None:
    refused = _refusal(
        lambda: client.files_upload_v2(
            content=b"clip", filename="c.mp4", channel=CHANNEL, alt_txt="a" * 1_001
        )
    )
    assert refused["error"] == "alt_txt_too_large"
    client.files_upload_v2(content=b"clip", filename="c.mp4", channel=CHANNEL, alt_txt="A robot in the rain")
    assert [f.alt_txt for f in fake.files()] == ["A robot in the rain"]


def test_a_revoked_token_answers_token_revoked_from_then_on(fake: FakeSlack, client: WebClient) -> None:
    assert client.auth_test()["ok"]
    fake.revoke_token("xoxb-test")
    assert _refusal(client.auth_test)["error"] == "token_revoked"


def test_metadata_is_kept_and_read_back_only_when_asked_for(client: WebClient) -> None:
    meta = {"event_type": "round_posted", "event_payload": {"round_id": 7}}
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 7", metadata=meta)
    reply = client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="Variation 1")
    later = {"event_type": "variation_posted", "event_payload": {"generation_id": 3}}
    client.chat_update(channel=CHANNEL, ts=reply["ts"], text="Variation 1 ready", metadata=json.dumps(later))

    plain = client.conversations_replies(channel=CHANNEL, ts=parent["ts"])["messages"]
    full = client.conversations_replies(channel=CHANNEL, ts=parent["ts"], include_all_metadata=True)

    assert all("metadata" not in m for m in plain)
    assert [m.get("metadata") for m in full["messages"]] == [meta, later]


def test_malformed_metadata_is_refused(client: WebClient) -> None:
    refused = _refusal(
        lambda: client.chat_postMessage(channel=CHANNEL, text="t", metadata={"event_type": "x"})  # type: ignore[arg-type]
    )
    assert refused["error"] == "invalid_metadata_schema"


def test_conversations_replies_pages_the_thread_oldest_first(client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 1")["ts"]
    for n in range(1, 5):
        client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text=f"Variation {n}")

    pages, cursor = [], None
    while True:
        page = client.conversations_replies(channel=CHANNEL, ts=parent, limit=2, cursor=cursor)
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            assert cursor == ""
            break

    assert pages == [["Round 1", "Variation 1"], ["Variation 2", "Variation 3"], ["Variation 4"]]


def test_conversations_history_lists_top_level_messages_newest_first(client: WebClient) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="Round 1")["ts"]
    client.chat_postMessage(channel=CHANNEL, thread_ts=first, text="Variation 1")
    second = client.chat_postMessage(channel=CHANNEL, text="Round 2")["ts"]
    client.chat_postMessage(channel=CHANNEL, text="Round 3")

    everything = client.conversations_history(channel=CHANNEL)["messages"]
    between = client.conversations_history(channel=CHANNEL, oldest=first, latest="9999999999.000000")

    assert [m["text"] for m in everything] == ["Round 3", "Round 2", "Round 1"]
    assert everything[2]["reply_count"] == 1
    assert [m["ts"] for m in between["messages"]][-1] == second


def test_a_shared_file_is_listed_with_its_name_and_title(client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 1")["ts"]
    client.files_upload_v2(
        content=b"clip", filename="generation-1.mp4", title="Variation #1", channel=CHANNEL, thread_ts=parent
    )

    _, shared = client.conversations_replies(channel=CHANNEL, ts=parent)["messages"]

    (listed,) = shared["files"]
    assert (listed["name"], listed["title"]) == ("generation-1.mp4", "Variation #1")
    assert listed["id"].startswith("F")


def test_reactions_get_reports_users_and_bot_reactions_also_on_a_file_share(
    fake: FakeSlack, client: WebClient
) -> None:
    client.files_upload_v2(content=b"clip", filename="clip.mp4", title="Variation #1", channel=CHANNEL)
    (shared,) = fake.messages(CHANNEL)
    fake.record_reaction(CHANNEL, shared.ts, "+1", ANA)
    fake.record_reaction(CHANNEL, shared.ts, "+1", BEN)
    client.reactions_add(channel=CHANNEL, timestamp=shared.ts, name="eyes")
    fake.record_reaction(CHANNEL, shared.ts, "+1", BEN, added=False)

    got = client.reactions_get(channel=CHANNEL, timestamp=shared.ts, full=True)

    assert (got["type"], got["channel"], got["message"]["ts"]) == ("message", CHANNEL, shared.ts)
    assert got["message"]["reactions"] == [
        {"name": "+1", "users": [ANA], "count": 1},
        {"name": "eyes", "users": ["UBOT"], "count": 1},
    ]
    assert _refusal(lambda: client.reactions_get(channel=CHANNEL, timestamp="1.000000"))["error"] == (
        "message_not_found"
    )


def test_the_bot_outside_a_channel_gets_not_in_channel_until_it_is_added_back(
    fake: FakeSlack, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="Round 1")["ts"]
    fake.remove_bot_from(CHANNEL)

    refusals = [
        _refusal(lambda: client.chat_postMessage(channel=CHANNEL, text="again")),
        _refusal(lambda: client.chat_update(channel=CHANNEL, ts=posted, text="edit")),
        _refusal(lambda: client.files_upload_v2(content=b"clip", filename="c.mp4", channel=CHANNEL)),
        _refusal(lambda: client.reactions_get(channel=CHANNEL, timestamp=posted)),
    ]

    assert {r["error"] for r in refusals} == {"not_in_channel"}
    assert [m.text for m in fake.messages(CHANNEL)] == ["Round 1"]
    assert client.conversations_info(channel=CHANNEL)["channel"]["is_member"] is False
    fake.add_bot_to(CHANNEL)
    assert client.chat_postMessage(channel=CHANNEL, text="back")["ok"]


def test_strict_channels_answer_channel_not_found_for_a_channel_that_does_not_exist() -> None:
    with FakeSlack(channels={CHANNEL: "demo"}, strict_channels=True) as strict:
        client = WebClient(token="xoxb-test", base_url=strict.api_url)
        assert client.chat_postMessage(channel=CHANNEL, text="here")["ok"]
        refused = _refusal(lambda: client.chat_postMessage(channel="CNOWHERE", text="there"))
    assert refused["error"] == "channel_not_found"


def test_a_response_url_works_five_times_then_answers_used_url(fake: FakeSlack) -> None:
    webhook = WebhookClient(fake.new_response_url(CHANNEL, ANA))

    statuses = [webhook.send(text=f"update {n}").status_code for n in range(6)]

    assert statuses == [200] * 5 + [404]
    last = fake.calls("response_url")[-1]
    assert (last.status, len(fake.ephemerals(user=ANA))) == (404, 5)
    assert webhook.send(text="again").body == "used_url"


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_response_url_expires_thirty_minutes_after_the_interaction() -> None:
    clock = _Clock()
    with FakeSlack(clock=clock) as timed:
        webhook = WebhookClient(timed.new_response_url(CHANNEL, ANA))
        clock.now += 30 * 60
        assert webhook.send(text="just in time").status_code == 200
        clock.now += 1
        late = webhook.send(text="too late")
        assert (late.status_code, late.body) == (404, "expired_url")
        assert [c.status for c in timed.calls("response_url")] == [200, 404]


def test_a_lost_answer_retried_by_the_sdk_leaves_two_messages(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", lose_answer=True)

    response = client.chat_postMessage(channel=CHANNEL, text="Round 1")

    assert response["ok"]  # the SDK's retry was answered; the first post happened too
    assert [m.text for m in fake.messages(CHANNEL)] == ["Round 1", "Round 1"]
    assert [c.answer_lost for c in fake.calls("chat.postMessage")] == [True, False]


def test_without_retries_a_lost_answer_raises_although_the_call_took_effect(fake: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 1")["ts"]
    fake.fail_next("chat.postMessage", lose_answer=True)
    fake.fail_next("files.completeUploadExternal", lose_answer=True)

    with pytest.raises(ConnectionError):
        client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="Variation 1")
    with pytest.raises(ConnectionError):
        client.files_upload_v2(content=b"clip", filename="c.mp4", channel=CHANNEL, thread_ts=parent)

    texts = [(m.text, [f.filename for f in m.files]) for m in fake.messages(CHANNEL, thread_ts=parent)]
    assert texts == [("Variation 1", []), ("", ["c.mp4"])]


def test_a_slow_method_answers_late_after_taking_effect(fake: FakeSlack) -> None:
    impatient = WebClient(token="xoxb-test", base_url=fake.api_url, timeout=0.2, retry_handlers=[])
    fake.slow("chat.postMessage", 2.0, times=1)

    with pytest.raises((TimeoutError, URLError)):
        impatient.chat_postMessage(channel=CHANNEL, text="Round 1")

    assert impatient.chat_postMessage(channel=CHANNEL, text="Round 2")["ok"]  # only one call was slow
    assert [m.text for m in fake.messages(CHANNEL)] == ["Round 1", "Round 2"]


# -- the simulator against a real Bolt app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Bolt:
    fake: FakeSlack
    sim: SlackSimulator
    seen: list[dict[str, Any]] = field(default_factory=list)

    def seen_kind(self, kind: str) -> list[dict[str, Any]]:
        return [s for s in self.seen if s["kind"] == kind]


def _register_listeners(app: App, seen: list[dict[str, Any]]) -> None:
    @app.command("/sora")
    def handle_sora_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        blocks = _button_blocks(
            f"hi <@{command['user_id']}>", ("generate", "Generate", "draft-1"), ("edit", "Edit", "d")
        )
        respond(text=f"hi <@{command['user_id']}>", blocks=blocks)

    @app.action("generate")
    def handle_generate(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        seen.append({"kind": "action", "body": body})
        respond(replace_original=True, text=f"generating {body['actions'][0]['value']}")

    @app.action("edit")
    def handle_edit(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        view = {
            "type": "modal",
            "callback_id": "edit_draft",
            "private_metadata": body["container"]["channel_id"],
            "title": {"type": "plain_text", "text": "Edit draft"},
            "blocks": [],
        }
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view("edit_draft")
    def handle_edit_submission(ack: Ack, view: dict[str, Any], client: WebClient) -> None:
        ack()
        idea = view["state"]["values"]["idea"]["idea_input"]["value"]
        client.chat_postMessage(channel=view["private_metadata"], text=f"idea: {idea}")

    @app.event("reaction_added")
    def handle_reaction_added(event: dict[str, Any], request: BoltRequest, client: WebClient) -> None:
        seen.append(
            {"kind": "reaction", "event": event, "retry_num": request.headers.get("x-slack-retry-num")}
        )
        item = event["item"]
        client.chat_postMessage(
            channel=item["channel"], thread_ts=item["ts"], text=f"counted :{event['reaction']}:"
        )

    @app.event("reaction_removed")
    def handle_reaction_removed(event: dict[str, Any]) -> None:
        seen.append({"kind": "reaction_removed", "event": event})

    @app.event("message")
    def handle_message(event: dict[str, Any], say: Say) -> None:
        seen.append({"kind": "message", "event": event})
        if event.get("thread_ts"):
            say(text=f"heard: {event['text']}", thread_ts=event["thread_ts"])


@pytest.fixture
def bolt(fake: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bolt]:
    for name in list(os.environ):
        if name.startswith("SLACK_"):
            monkeypatch.delenv(name, raising=False)
    executor = ThreadPoolExecutor(max_workers=5)
    app = App(
        client=WebClient(token="xoxb-test", base_url=fake.api_url),
        signing_secret="secret",
        listener_executor=executor,
    )
    harness = Bolt(fake=fake, sim=None)  # type: ignore[arg-type]
    _register_listeners(app, harness.seen)
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    harness.sim = SlackSimulator(
        fake, app_url=f"http://127.0.0.1:{server.server_port}", signing_secret="secret"
    )
    try:
        yield harness
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        # Listeners run in the background; let them finish before the fake they talk to stops.
        executor.shutdown(wait=True)


def _first_ephemeral(fake: FakeSlack, user: str, text: str) -> Ephemeral | None:
    return next((e for e in fake.ephemerals(user=user) if text in e.text), None)


def test_simulated_command_is_answered_with_an_ephemeral_via_respond(bolt: Bolt) -> None:
    response = bolt.sim.command(ANA, CHANNEL, "draft a cat surfing")

    assert response.status == 200
    ephemeral = bolt.fake.wait_for(lambda: _first_ephemeral(bolt.fake, ANA, f"hi <@{ANA}>"), what="the reply")
    assert ephemeral.channel == CHANNEL and ephemeral.source == "response_url"


def test_clicking_generate_on_the_ephemeral_replaces_it(bolt: Bolt) -> None:
    bolt.sim.command(ANA, CHANNEL, "draft a cat")
    card = bolt.fake.wait_for(lambda: _first_ephemeral(bolt.fake, ANA, "hi"), what="the draft card")

    assert bolt.sim.click_button(ANA, message=card, action_id="generate").status == 200

    bolt.fake.wait_for(
        lambda: _first_ephemeral(bolt.fake, ANA, "generating draft-1"), what="the replaced card"
    )
    assert len(bolt.fake.ephemerals(user=ANA)) == 1
    (action,) = bolt.seen_kind("action")
    assert action["body"]["container"] == {
        "type": "message",
        "message_ts": card.ts,
        "channel_id": CHANNEL,
        "is_ephemeral": True,
    }
    assert action["body"]["actions"][0]["block_id"] == "choices"


def test_click_button_names_the_buttons_when_the_action_is_missing(bolt: Bolt) -> None:
    message = Message(
        channel=CHANNEL, ts="1.000000", user="UBOT", text="card", blocks=_button_blocks("x", ("a", "A", "1"))
    )
    with pytest.raises(AssertionError, match=r"no button with action_id 'nope'.*buttons: a"):
        bolt.sim.click_button(ANA, message=message, action_id="nope")


def test_submitted_modal_reaches_the_view_listener(bolt: Bolt) -> None:
    bolt.sim.command(ANA, CHANNEL, "draft")
    card = bolt.fake.wait_for(lambda: _first_ephemeral(bolt.fake, ANA, "hi"), what="the draft card")
    bolt.sim.click_button(ANA, message=card, action_id="edit")
    modal = bolt.fake.wait_for(lambda: next(iter(bolt.fake.views()), None), what="the modal")

    response = bolt.sim.submit_view(ANA, view=modal, values={"idea": {"idea_input": "a robot waving"}})

    assert response.status == 200
    bolt.fake.wait_for(
        lambda: any(m.text == "idea: a robot waving" for m in bolt.fake.messages(CHANNEL)),
        what="the posted idea",
    )


def test_simulated_reaction_reaches_the_listener_and_the_transcript(bolt: Bolt, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Variation 1")

    assert bolt.sim.react(BEN, CHANNEL, parent["ts"], "thumbsup").status == 200

    bolt.fake.wait_for(lambda: bolt.fake.messages(CHANNEL, thread_ts=parent["ts"]), what="the vote receipt")
    (seen,) = bolt.seen_kind("reaction")
    assert seen["event"]["user"] == BEN and seen["event"]["item_user"] == "UBOT"
    assert ":thumbsup: ×1 (ben)" in bolt.fake.transcript()
    assert bolt.sim.unreact(BEN, CHANNEL, parent["ts"], "thumbsup").status == 200
    bolt.fake.wait_for(lambda: bolt.seen_kind("reaction_removed"), what="the removal")
    assert ":thumbsup: ×" not in bolt.fake.transcript()


def test_reactions_get_sees_what_the_simulated_users_did(bolt: Bolt, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Variation 1")["ts"]

    bolt.sim.react(BEN, CHANNEL, parent, "fire")
    bolt.sim.react(ANA, CHANNEL, parent, ":fire:")
    bolt.sim.unreact(BEN, CHANNEL, parent, "fire")

    got = client.reactions_get(channel=CHANNEL, timestamp=parent)
    assert got["message"]["reactions"] == [{"name": "fire", "users": [ANA], "count": 1}]


def test_retried_event_carries_the_same_event_id_and_the_retry_headers(bolt: Bolt, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Variation 1")

    bolt.sim.react(ANA, CHANNEL, parent["ts"], "fire", event_id="EvSAME")
    bolt.sim.react(ANA, CHANNEL, parent["ts"], "fire", event_id="EvSAME", retry_num=1)

    bolt.fake.wait_for(lambda: len(bolt.seen_kind("reaction")) == 2, what="both deliveries")
    seen = bolt.seen_kind("reaction")
    assert sorted(str(s["retry_num"]) for s in seen) == ["None", "['1']"]
    message = bolt.fake.message(CHANNEL, parent["ts"])
    assert message is not None and message.reactions == {"fire": [ANA]}


def test_simulated_thread_reply_reaches_the_message_listener(bolt: Bolt, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="Round 1")

    assert bolt.sim.reply(ANA, CHANNEL, parent["ts"], "remix #2 make it golden hour").status == 200

    bolt.fake.wait_for(
        lambda: any(m.text.startswith("heard:") for m in bolt.fake.messages(CHANNEL, thread_ts=parent["ts"])),
        what="the bot's answer in the thread",
    )
    (seen,) = bolt.seen_kind("message")
    assert seen["event"]["thread_ts"] == parent["ts"] and seen["event"]["parent_user_id"] == "UBOT"
    assert "↳ ana: remix #2 make it golden hour" in bolt.fake.transcript()


def test_bad_signature_is_rejected_with_401(bolt: Bolt) -> None:
    response = bolt.sim.post_raw(
        b"command=%2Fsora&text=hi", content_type="application/x-www-form-urlencoded", signature="v0=deadbeef"
    )
    assert response.status == 401


def test_stale_timestamp_is_rejected_with_401(bolt: Bolt) -> None:
    stale = str(int(time.time()) - 400)
    response = bolt.sim.post_raw(
        b"command=%2Fsora", content_type="application/x-www-form-urlencoded", timestamp=stale
    )
    assert response.status == 401


def test_an_image_block_shows_an_uploaded_image_by_id_and_refuses_anything_else(
    fake: FakeSlack, client: WebClient
) -> None:
    still = client.files_upload_v2(content=b"frame", filename="still.png", channel=CHANNEL)["files"][0]["id"]
    clip = client.files_upload_v2(content=b"clip", filename="clip.mp4", channel=CHANNEL)["files"][0]["id"]

    def image(source: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"type": "image", "alt_text": "a still", **source}]

    posted = client.chat_postMessage(channel=CHANNEL, text="x", blocks=image({"slack_file": {"id": still}}))
    assert posted["ok"]
    for wrong in ({"slack_file": {"id": "F404"}}, {"slack_file": {"id": clip}}, {}):
        with pytest.raises(SlackApiError) as refused:
            client.chat_postMessage(channel=CHANNEL, text="x", blocks=image(wrong))
        assert refused.value.response["error"] == "invalid_blocks"


def test_conversations_open_gives_the_bots_dm_with_a_person_and_files_land_there(
    fake: FakeSlack, client: WebClient
) -> None:
    dm = client.conversations_open(users="U0BOB")["channel"]["id"]
    assert dm == fake.dm_of("U0BOB") == client.conversations_open(users="U0BOB")["channel"]["id"]
    client.files_upload_v2(content=b"a,b\n", filename="round-1-decision.csv", channel=dm)
    [sent] = [f for f in fake.files() if f.filename == "round-1-decision.csv"]
    assert sent.channel_id == dm and sent.content == b"a,b\n"
    assert client.conversations_info(channel=dm)["channel"]["is_im"] is True

"""Socket Mode through Bolt's real `SocketModeHandler` (slack_sdk's built-in client) against the fake Socket Mode
server: connect, commands, clicks, events, Slack's retries, `disconnect` and reconnect, and the HTTP side server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BOB, CHANNEL, OWNER, Bot
from test_serve import DEMO_FILES, child_environment, free_port, wait_healthy
from test_slack_drafting import open_edit, values_of
from test_slack_loop import draft, ready_round, votes, wait_until

from bot.bootstrap import Serving, build_runtime
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.errors import ConfigError
from bot.pricing import PriceTable
from bot.providers.registry import Providers, build_providers
from devkit import demo
from devkit.instant import InstantProvider
from devkit.simulator import SlackSimulator
from devkit.slack_api import FakeSlack
from devkit.socket_mode import FakeSocketMode, SocketModeDelivery

APP_TOKEN = "xapp-1-A0001-test"


@dataclass
class SocketBot:
    bot: Bot
    socket_mode: FakeSocketMode
    serving: Serving

    def get(self, path: str) -> tuple[int, str]:
        assert self.serving.http is not None
        try:
            with urllib.request.urlopen(self.serving.http.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode()


def start_socket_bot(
    fake: FakeSlack, socket_mode: FakeSocketMode, tmp_path: Path, *, http: bool = True
) -> SocketBot:
    """The real app in Socket Mode (no signing secret: Slack signs nothing over the WebSocket)."""
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "SORA_BOT_DATA_DIR": str(tmp_path / "data"),
        }
    )
    configured = build_providers(settings, prices=PriceTable.default())
    providers = Providers(
        available={**configured.available, "local": InstantProvider()}, default=configured.default
    )
    clock = FrozenClock()
    runtime = build_runtime(settings, clock=clock, providers=providers, listeners_finish_before_answer=True)
    try:
        serving = runtime.start(host="127.0.0.1", port=0, http=http)
    except BaseException:
        runtime.close()
        raise
    sim = SlackSimulator(fake, delivery=SocketModeDelivery(socket_mode))
    bot = Bot(
        runtime=runtime,
        fake=fake,
        sim=sim,
        clock=clock,
        server=serving.http,  # type: ignore[arg-type]  # None with http=False
        data_dir=tmp_path / "data",
    )
    return SocketBot(bot=bot, socket_mode=socket_mode, serving=serving)


@pytest.fixture
def socket_bot(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[SocketBot]:
    with FakeSocketMode(fake_slack) as socket_mode:
        made = start_socket_bot(fake_slack, socket_mode, tmp_path)
        try:
            yield made
        finally:
            made.serving.stop()
            made.bot.runtime.close()


def test_the_bot_opens_a_connection_with_its_app_token_and_the_side_server_reports_it(
    socket_bot: SocketBot,
) -> None:
    fake, socket_mode = socket_bot.bot.fake, socket_bot.socket_mode
    socket_mode.wait_for_connections(1)
    [opened] = fake.calls("apps.connections.open")
    assert opened.authorization == f"Bearer {APP_TOKEN}" and opened.response["ok"] is True
    assert opened.response["url"].startswith("ws://127.0.0.1:")
    status, body = socket_bot.get("/healthz")
    report = json.loads(body)
    assert status == 200 and report["ok"] is True
    assert report["database"] == "ok" and report["socket_mode"] == "connected"


def test_the_side_server_says_slack_events_do_not_come_over_http_in_socket_mode(
    socket_bot: SocketBot,
) -> None:
    status, body = socket_bot.get("/slack/events")
    assert status == 404 and "Socket Mode is on" in body and "SLACK_APP_TOKEN" in body
    assert socket_bot.get("/nothing-here")[0] == 404


def test_a_slash_command_is_acknowledged_and_its_draft_card_arrives(socket_bot: SocketBot) -> None:
    sora = socket_bot.bot
    card = draft(sora)  # asserts the ack (a 200), then waits for the card at the command's response_url
    assert "Checklist" in card.text + json.dumps(card.blocks)
    [envelope] = socket_bot.socket_mode.envelopes()
    assert envelope.type == "slash_commands" and envelope.payload["command"] == "/sora"
    [ack] = socket_bot.socket_mode.acks()
    assert ack.envelope_id == envelope.envelope_id and ack.payload is None  # /sora answers after its ack


def test_a_modal_submission_with_bad_values_is_answered_in_its_ack(socket_bot: SocketBot) -> None:
    sora = socket_bot.bot
    view = open_edit(sora, draft(sora))
    response = sora.sim.submit_view(OWNER, view=view, values=values_of(view, subject="", seconds="99"))
    ack = socket_bot.socket_mode.acks()[-1]
    assert ack.payload is not None and ack.payload["response_action"] == "errors"
    assert set(ack.payload["errors"]) == {"subject", "seconds"}
    assert response.json == ack.payload


def test_a_click_and_a_reaction_become_a_round_and_a_vote(socket_bot: SocketBot) -> None:
    sora = socket_bot.bot
    _, messages = ready_round(sora)  # Generate is an `interactive` envelope
    assert sora.sim.react(BOB, CHANNEL, messages[2].ts, "+1").status == 200
    [vote] = votes(sora)
    assert vote.user_id == BOB and vote.emoji == "+1"
    kinds = [e.type for e in socket_bot.socket_mode.envelopes()]
    assert kinds == ["slash_commands", "interactive", "events_api"]


def test_a_retried_event_is_acknowledged_and_handled_once(socket_bot: SocketBot) -> None:
    sora, socket_mode = socket_bot.bot, socket_bot.socket_mode
    _, messages = ready_round(sora)
    first = sora.sim.react(BOB, CHANNEL, messages[1].ts, "fire", event_id="EvSOCKET")
    assert [v.emoji for v in votes(sora)] == ["fire"]
    sora.sim.unreact(BOB, CHANNEL, messages[1].ts, "fire")
    assert votes(sora) == []
    retry = sora.sim.react(BOB, CHANNEL, messages[1].ts, "fire", event_id="EvSOCKET", retry_num=1)
    assert first.status == retry.status == 200
    assert votes(sora) == [], "the retry of an event already handled must not vote again"
    retried = [e for e in socket_mode.envelopes() if e.retry_attempt == 1]
    assert len(retried) == 1 and retried[0].retry_reason == "timeout"
    assert retried[0].envelope_id in {a.envelope_id for a in socket_mode.acks()}


def test_after_disconnect_the_client_reconnects_on_a_new_url_and_the_next_event_is_handled(
    socket_bot: SocketBot,
) -> None:
    sora, socket_mode = socket_bot.bot, socket_bot.socket_mode
    _, messages = ready_round(sora)
    socket_mode.wait_for_connections(1)
    socket_mode.ask_to_reconnect("refresh_requested")
    socket_mode.wait_for_connections(2)
    assert len(sora.fake.calls("apps.connections.open")) == 2, "a new URL for the new connection"
    wait_until(lambda: socket_mode.connections() == [2], "the client to close the old connection")
    assert sora.sim.react(BOB, CHANNEL, messages[3].ts, "heart").status == 200
    assert [(v.user_id, v.emoji) for v in votes(sora)] == [(BOB, "heart")]
    assert socket_mode.acks()[-1].connection == 2
    assert socket_bot.get("/healthz")[0] == 200


def test_a_dropped_connection_is_reopened_and_the_next_command_is_answered(socket_bot: SocketBot) -> None:
    sora, socket_mode = socket_bot.bot, socket_bot.socket_mode
    socket_mode.wait_for_connections(1)
    socket_mode.drop()  # no `disconnect` first, as when Slack's host goes away
    socket_mode.wait_for_connections(2, timeout=60)  # the client notices on its next state check
    card = draft(sora)
    assert "Checklist" in card.text + json.dumps(card.blocks)
    assert socket_mode.acks()[-1].connection == 2


def test_a_refused_app_token_stops_start_up_with_one_line(fake_slack: FakeSlack, tmp_path: Path) -> None:
    fake_slack.revoke_token(APP_TOKEN)
    with FakeSocketMode(fake_slack) as socket_mode, pytest.raises(ConfigError) as caught:
        start_socket_bot(fake_slack, socket_mode, tmp_path)
    assert "Slack refused SLACK_APP_TOKEN" in str(caught.value) and "(token_revoked)" in str(caught.value)


def test_without_http_only_the_websocket_serves(fake_slack: FakeSlack, tmp_path: Path) -> None:
    with FakeSocketMode(fake_slack) as socket_mode:
        made = start_socket_bot(fake_slack, socket_mode, tmp_path, http=False)
        try:
            assert made.serving.http is None
            card = draft(made.bot)
            assert "Checklist" in card.text + json.dumps(card.blocks)
        finally:
            made.serving.stop()
            made.bot.runtime.close()


def test_a_taken_port_stops_start_up_with_one_line_saying_what_to_do(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    with FakeSocketMode(fake_slack) as socket_mode:
        blocker = start_socket_bot(fake_slack, socket_mode, tmp_path / "first")
        try:
            assert blocker.serving.http is not None
            settings = blocker.bot.runtime.settings
            second = build_runtime(settings)
            try:
                with pytest.raises(ConfigError) as caught:
                    second.start(host="127.0.0.1", port=blocker.serving.http.port)
            finally:
                second.close()
        finally:
            blocker.serving.stop()
            blocker.bot.runtime.close()
    assert "cannot listen on 127.0.0.1:" in str(caught.value) and "--no-http" in str(caught.value)


def test_the_fake_refuses_a_bot_token_for_socket_mode_and_an_app_token_elsewhere(
    fake_slack: FakeSlack,
) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    with FakeSocketMode(fake_slack):
        bot = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
        with pytest.raises(SlackApiError) as caught:
            bot.apps_connections_open(app_token="xoxb-test")
        assert caught.value.response["error"] == "not_allowed_token_type"
        app = WebClient(token=APP_TOKEN, base_url=fake_slack.api_url)
        with pytest.raises(SlackApiError) as caught:
            app.chat_postMessage(channel=CHANNEL, text="hi")
        assert caught.value.response["error"] == "not_allowed_token_type"
        assert app.apps_connections_open(app_token=APP_TOKEN)["url"].startswith("ws://")


def test_a_socket_mode_ticket_opens_one_connection_only(fake_slack: FakeSlack) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with FakeSocketMode(fake_slack) as socket_mode:
        url = socket_mode._issue_url()
        with connect(url) as first:
            assert json.loads(first.recv(timeout=10))["type"] == "hello"
        with pytest.raises(InvalidStatus), connect(url):
            pass
        assert socket_mode.connections_opened() == 1


def test_serve_in_socket_mode_plays_the_demo_serves_healthz_beside_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    with (
        FakeSlack(users=demo.USERS, channels={demo.CHANNEL: "video-lab"}) as fake,
        FakeSocketMode(fake, timeout=30) as socket_mode,
    ):
        port, log = free_port(), tmp_path / "serve.log"
        env = child_environment()
        env.update(
            SLACK_BOT_TOKEN="xoxb-serve",
            SLACK_APP_TOKEN=APP_TOKEN,  # and no signing secret: Socket Mode needs none
            SLACK_API_URL=fake.api_url,
            SORA_BOT_DATA_DIR=str(tmp_path / "data"),
            SORA_BOT_TICK_SECONDS="0.3",
        )
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            health = wait_healthy(url, process)
            assert health["ok"] is True and health["socket_mode"] == "connected"
            sim = SlackSimulator(fake, delivery=SocketModeDelivery(socket_mode, timeout=30))
            demo.play(demo.Session(sim, fake, timeout=30, narrate=lambda _: None))
            assert sorted(f.title for f in fake.files()) == DEMO_FILES
            assert "#2 wins" in fake.transcript()
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + "/slack/events", data=b"{}", timeout=10)
            assert refused.value.code == 404
            refused.value.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    said = log.read_text()
    assert "connected in Socket Mode" in said and "sora-bot stopped" in said
    assert "Traceback" not in said, said[-3000:]

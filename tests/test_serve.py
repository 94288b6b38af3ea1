"""`sora-bot serve` as a new user runs it: a real process, configured by the environment, driven by signed
requests alone against a fake Slack Web API; and `sora-bot demo` end to end."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from devkit import demo
from devkit.simulator import SlackSimulator
from devkit.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent

# What the demo leaves in its thread, whatever the transport: four clips, round 1's contact sheet, the one its
# close marks, the winner's still, and the contact sheet of round 2 (the remix after the close).
DEMO_FILES = [
    "Contact sheet",
    "Contact sheet",
    "Contact sheet: #2 won",
    "The winner, #2",
    "Variation #1",
    "Variation #2",
    "Variation #3",
    "Variation #4",
]


def child_environment() -> dict[str, str]:
    """The environment without Slack settings, importing this checkout (not whatever is installed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SORA_BOT_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[str], *, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.communicate()[1]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                return dict(json.loads(response.read()))
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve never became healthy")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeSlack, str, subprocess.Popen[str]]]:
    with FakeSlack(users=demo.USERS, channels={demo.CHANNEL: "video-lab"}) as fake:
        port = free_port()
        env = child_environment()
        env.update(
            SLACK_BOT_TOKEN="xoxb-serve",
            SLACK_SIGNING_SECRET=demo.SECRET,
            SLACK_API_URL=fake.api_url,
            SORA_BOT_DATA_DIR=str(tmp_path / "data"),
            SORA_BOT_TICK_SECONDS="0.3",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            assert wait_healthy(url, process)["ok"] is True
            yield fake, url, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout:
                process.stdout.close()
            if process.stderr:
                process.stderr.close()


def test_serve_runs_the_whole_loop_from_signed_requests_alone(
    served: tuple[FakeSlack, str, subprocess.Popen[str]],
) -> None:
    fake, url, process = served
    sim = SlackSimulator(fake, app_url=url, signing_secret=demo.SECRET)
    demo.play(demo.Session(sim, fake, timeout=30))
    assert sorted(f.title for f in fake.files()) == DEMO_FILES
    transcript = fake.transcript()
    assert "#2 wins" in transcript and "golden hour" in transcript
    bad = sim.post_raw(
        b"command=%2Fsora&text=help", content_type="application/x-www-form-urlencoded", signature="v0=forged"
    )
    assert bad.status == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def test_serve_without_settings_says_what_to_set_and_exits(tmp_path: Path) -> None:
    env = child_environment()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr and "SLACK_SIGNING_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_plays_the_whole_session_and_leaves_clips_and_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo-out"
    assert main(["demo", "--out", str(out), "--timeout", "30"]) == 0
    printed = capsys.readouterr().out
    for expected in ("/sora", "Variation #1", "#2 wins", "remix #2 make it golden hour", "Patterns matching"):
        assert expected in printed, expected
    assert len(list((out / "assets").glob("round-*/*.mp4"))) == 4 and (out / "sora-bot.db").exists()
    assert main(["demo", "--out", str(out), "--timeout", "30"]) == 0, "a second run replaces its own folder"
    capsys.readouterr()


def test_the_demo_refuses_to_overwrite_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"


# --- doctor, and serve when Slack says no ------------------------------------------------------


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=90
    )


def slack_env(tmp_path: Path, api_url: str, token: str = "xoxb-doctor") -> dict[str, str]:
    env = child_environment()
    env.update(
        SLACK_BOT_TOKEN=token,
        SLACK_SIGNING_SECRET=demo.SECRET,
        SLACK_API_URL=api_url,
        SORA_BOT_DATA_DIR=str(tmp_path / "data"),
    )
    return env


@contextlib.contextmanager
def refusing_api() -> Iterator[str]:
    """An HTTP API that answers every request 401, as a provider does for a wrong key."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error": {"message": "Incorrect API key provided"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_asks_slack_who_the_bot_is_and_passes_when_everything_answers(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        result = run_cli("doctor", env=slack_env(tmp_path, fake.api_url), cwd=tmp_path)
        assert [c.authorization for c in fake.calls("auth.test")] == ["Bearer xoxb-doctor"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "authenticated as @sora in Sora Demo (T0001)" in result.stdout
    assert (
        "database: reachable" in result.stdout and "Everything needed to serve is in place" in result.stdout
    )


def test_doctor_lists_every_problem_at_once_with_what_to_set(tmp_path: Path) -> None:
    closed = free_port()
    with FakeSlack(valid_tokens=frozenset({"xoxb-good"})) as fake, refusing_api() as refusing:
        env = slack_env(tmp_path, fake.api_url, token="xoxb-wrong")
        del env["SLACK_SIGNING_SECRET"]
        env.update(
            VIDEO_PROVIDER="sora",
            SORA_BOT_VOTE_MINUTES="soon",
            OPENAI_API_KEY="sk-wrong",
            OPENAI_BASE_URL=refusing,
            FAL_KEY="fal-key",
            FAL_BASE_URL=f"http://127.0.0.1:{closed}",
        )
        result = run_cli("doctor", env=env, cwd=tmp_path)
    assert result.returncode == 1
    problems = result.stdout.split("Problems:")[1]
    for expected in (
        "VIDEO_PROVIDER is invalid",
        "set it to one of local, openai, fal, veo",
        "SORA_BOT_VOTE_MINUTES is invalid",
        "SLACK_SIGNING_SECRET is not set",
        "Slack refused SLACK_BOT_TOKEN",
        "(invalid_auth)",
        "refused OPENAI_API_KEY (HTTP 401)",
        "check FAL_BASE_URL",
    ):
        assert expected in problems, (expected, result.stdout)
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_with_slack_unreachable_says_so(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{free_port()}/api/"
    result = run_cli("doctor", env=slack_env(tmp_path, api), cwd=tmp_path)
    assert result.returncode == 1
    assert f"Slack cannot be reached at {api}" in result.stdout and "check SLACK_API_URL" in result.stdout


@pytest.mark.parametrize("how", ["revoked", "invalid", "unreachable"])
def test_serve_says_in_one_line_that_slack_refuses_the_token_or_cannot_be_reached(
    tmp_path: Path, how: str
) -> None:
    with FakeSlack(valid_tokens=frozenset({"xoxb-serve"})) as fake:
        fake.revoke_token("xoxb-revoked")
        token = {"revoked": "xoxb-revoked", "invalid": "xoxb-unknown"}.get(how, "xoxb-serve")
        api = f"http://127.0.0.1:{free_port()}/api/" if how == "unreachable" else fake.api_url
        result = run_cli(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            env=slack_env(tmp_path, api, token),
            cwd=tmp_path,
        )
    assert result.returncode == 2
    said = {"revoked": "(token_revoked): reinstall the app", "invalid": "(invalid_auth)"}.get(
        how, "cannot be reached"
    )
    lines = [line for line in result.stderr.splitlines() if "sora-bot cannot start" in line]
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 3, result.stderr

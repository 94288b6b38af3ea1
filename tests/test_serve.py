"""`sora-bot serve` as a new user runs it: a real process, configured by the environment, driven by signed
requests alone against a fake Slack Web API; and `sora-bot demo` end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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
    titles = sorted(f.title for f in fake.files())
    assert titles == ["Contact sheet", "Variation #1", "Variation #2", "Variation #3", "Variation #4"]
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
    assert len(list((out / "assets").glob("*.mp4"))) == 4 and (out / "sora-bot.db").exists()
    assert main(["demo", "--out", str(out), "--timeout", "30"]) == 0, "a second run replaces its own folder"
    capsys.readouterr()


def test_the_demo_refuses_to_overwrite_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"

"""`sora-bot serve` as an operator runs it: JSON logs, a scheduler that says nothing per tick, `GET /metrics`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from test_serve import child_environment, free_port, wait_healthy

from devkit import demo
from devkit.simulator import SlackSimulator
from devkit.slack_api import FakeSlack


def test_serve_logs_json_lines_only_its_own_at_info_and_answers_metrics(tmp_path: Path) -> None:
    with FakeSlack(users=demo.USERS, channels={demo.CHANNEL: "video-lab"}) as fake:
        port = free_port()
        env = child_environment()
        env.update(
            SLACK_BOT_TOKEN="xoxb-serve",
            SLACK_SIGNING_SECRET=demo.SECRET,
            SLACK_API_URL=fake.api_url,
            SORA_BOT_DATA_DIR=str(tmp_path / "data"),
            SORA_BOT_TICK_SECONDS="0.1",  # dozens of sweeps while the test runs
            SORA_BOT_LOG_FORMAT="json",
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
            sim = SlackSimulator(fake, app_url=url, signing_secret=demo.SECRET)
            assert sim.command(demo.ALICE, demo.CHANNEL, "help").status == 200
            fake.wait_for(lambda: fake.ephemerals(demo.CHANNEL), what="the help")
            time.sleep(1)  # let the ticker run a few times (not asserted on: only what it logged is)
            with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
                exposition = response.read().decode()
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert 'sora_bot_jobs{state="queued"} 0.0' in exposition
    assert "sora_bot_database_up 1.0" in exposition
    assert 'sora_bot_votes_total{change="added"} 0.0' in exposition
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert lines, "serve logs that it is listening"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("is listening" in line["message"] for line in lines)
    assert not [line for line in lines if line["logger"].startswith("apscheduler")]

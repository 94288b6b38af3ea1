"""Real `sora-bot serve` processes for fault tests: started, SIGKILLed at a chosen moment, restarted, replicated,
each against one fake Slack and one fake video provider, and the checks a team would count afterwards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider_fakes import FakeOpenAI
from sqlmodel import select

from devkit.simulator import SlackSimulator
from devkit.slack_api import FakeSlack, Message
from handlers import blocks
from storage.models import Generation, Outbox, Round, Vote
from storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fault-signing-secret"
CHANNEL = "C0FAULT"
OWNER = "U0OWNER"
VOTERS = tuple(f"U0V{i:03d}" for i in range(80))
USERS = {OWNER: "owner", **{v: f"voter{i}" for i, v in enumerate(VOTERS)}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(predicate: Callable[[], Any], what: str, *, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class BotProcess:
    """One `sora-bot serve` replica on a fixed port (a restart comes back on the same one)."""

    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotProcess:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("serve never became healthy")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finally blocks, whatever was in flight is lost."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Deployment:
    """Fake Slack, a fake OpenAI-compatible video provider, one database, and N replicas of the bot."""

    slack: FakeSlack
    videos: FakeOpenAI
    database_url: str
    data_dir: Path
    replicas: list[BotProcess] = field(default_factory=list)
    acknowledged_votes: set[tuple[str, str, str]] = field(default_factory=set)  # (message ts, user, emoji)

    def add_replica(self, log_dir: Path) -> BotProcess:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("SLACK_", "SORA_BOT_", "OPENAI_", "FAL_", "GEMINI_", "DATABASE_URL", "VIDEO_")
            )
        }
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            SLACK_BOT_TOKEN="xoxb-fault",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=self.slack.api_url,
            SORA_BOT_DATA_DIR=str(self.data_dir),  # shared, as replicas share a volume for clips
            DATABASE_URL=self.database_url,
            VIDEO_PROVIDER="openai",
            OPENAI_API_KEY=self.videos.api_key,
            OPENAI_BASE_URL=self.videos.base_url,
            SORA_BOT_TICK_SECONDS="0.2",
            # Long enough that a create the killed process had already sent has landed before anyone looks.
            SORA_BOT_LEASE_SECONDS="6",
            SORA_BOT_ORPHAN_AUDIT_SECONDS="2",
            SORA_BOT_LOG_LEVEL="INFO",
        )
        replica = BotProcess(env=env, port=free_port(), log=log_dir / f"replica-{len(self.replicas)}.log")
        self.replicas.append(replica)
        return replica

    def sim(self, index: int = 0) -> SlackSimulator:
        return SlackSimulator(self.slack, app_url=self.replicas[index].url, signing_secret=SECRET)

    def store(self) -> Store:
        return Store(self.database_url)

    # --- what a team does -----------------------------------------------------------------

    def generate(self, *, idea: str, replica: int = 0, user: str = OWNER) -> None:
        sim = self.sim(replica)
        seen = len(self.slack.ephemerals(CHANNEL, user))
        assert sim.command(user, CHANNEL, f"draft {idea}").status == 200
        card = wait(
            lambda: next((e for e in self.slack.ephemerals(CHANNEL, user)[seen:] if "Draft" in e.text), None),
            "the draft card",
        )
        assert sim.click_button(user, message=card, action_id=blocks.GENERATE).status == 200

    def parents(self) -> list[Message]:
        return [
            m
            for m in self.slack.messages(CHANNEL)
            if m.user == self.slack.bot_user_id and m.text.startswith("Round:")
        ]

    def variation_messages(self, parent_ts: str) -> dict[int, list[Message]]:
        found: dict[int, list[Message]] = {}
        for message in self.slack.messages(CHANNEL, thread_ts=parent_ts):
            if message.user == self.slack.bot_user_id and message.text.startswith("Variation #"):
                number = int(message.text.split("#")[1].split(":")[0].split()[0])
                found.setdefault(number, []).append(message)
        return found

    def vote(self, message_ts: str, user: str, emoji: str = "+1", *, replica: int = 0) -> bool:
        """React; True when the bot acknowledged the event (Slack would not send it again)."""
        try:
            response = self.sim(replica).react(user, CHANNEL, message_ts, emoji)
        except OSError:
            return False
        if response.status == 200:
            self.acknowledged_votes.add((message_ts, user, emoji))
            return True
        return False

    def close(self, parent_ts: str, *, replica: int = 0) -> None:
        fresh = self.slack.message(CHANNEL, parent_ts)
        assert fresh is not None
        assert self.sim(replica).click_button(OWNER, message=fresh, action_id=blocks.CLOSE).status == 200

    # --- settling and counting --------------------------------------------------------------

    def settled(self) -> bool:
        with self.store_cache.read() as repo:
            generations = repo.session.exec(select(Generation)).all()
            outbox = repo.session.exec(select(Outbox)).all()
        active = [g for g in generations if g.status in ("queued", "submitting", "in_progress")]
        waiting = [o for o in outbox if o.state in ("pending", "sending")]
        return bool(generations) and not active and not waiting and not self.orphans()

    def orphans(self) -> list[str]:
        """Jobs at the provider that no generation owns and nobody cancelled: still billing."""
        owned = {g.provider_job_id for g in self.rows(Generation) if g.provider_job_id}
        with self.videos._lock:
            jobs = list(self.videos._jobs.values())
        return [job.id for job in jobs if job.id not in owned and not (job.deleted or job.cancelled)]

    def wait_settled(self, *, timeout: float = 150.0) -> None:
        # Generous: four test workers and the replicas share two cores in CI, and a restart re-imports everything.
        try:
            wait(
                self.settled, "every job finished, every post sent, no orphaned job billing", timeout=timeout
            )
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.unsettled()}") from None

    def unsettled(self) -> str:
        """What is still waiting, and the end of each replica's log: why a settle timed out."""
        lines = [
            f"generation {g.id} #{g.number}: {g.status} (job {g.provider_job_id}, next poll {g.next_poll_at})"
            for g in self.rows(Generation)
            if g.status in ("queued", "submitting", "in_progress")
        ]
        lines += [
            f"outbox {o.key}: {o.state}, due {o.due_at}, lease {o.lease_until}, attempts {o.attempts}, "
            f"uncertain {o.uncertain}, error {o.error}"
            for o in self.rows(Outbox)
            if o.state in ("pending", "sending")
        ]
        lines += [f"orphaned job {job}" for job in self.orphans()]
        for n, replica in enumerate(self.replicas):
            tail = replica.log.read_text(errors="replace")[-2500:] if replica.log.exists() else "(no log)"
            lines.append(f"--- replica {n} log, last lines ---\n{tail}")
        return "\n".join(lines)

    @property
    def store_cache(self) -> Store:
        if not hasattr(self, "_store"):
            self._store = self.store()
        return self._store

    def rows(self, model: type[Any]) -> list[Any]:
        with self.store_cache.read() as repo:
            return list(repo.session.exec(select(model)).all())

    def check_exactly_once(self) -> None:
        """One provider job and one clip per generation, one message per round and per variation, one
        announcement and decision record per close, no orphaned job, every acknowledged vote counted."""
        rounds, generations = self.rows(Round), self.rows(Generation)
        problems: list[str] = []
        parents = Counter(m.metadata["event_payload"]["key"] for m in self.parents() if m.metadata)
        for round_row in rounds:
            if parents[f"round-{round_row.id}/post_parent"] != 1:
                problems.append(
                    f"round {round_row.id}: {parents[f'round-{round_row.id}/post_parent']} parents"
                )
        untagged = [m.ts for m in self.parents() if not m.metadata]
        if untagged:
            problems.append(f"parent messages without a key: {untagged}")
        by_round = {r.id: r for r in rounds}
        files = Counter(f.filename for f in self.slack.files() if f.completed)
        jobs = [g.provider_job_id for g in generations if g.provider_job_id]
        if len(jobs) != len(set(jobs)):
            problems.append(f"a provider job shared by generations: {jobs}")
        for g in generations:
            round_row = by_round[g.round_id]
            if g.status != "completed":
                problems.append(f"generation {g.id} ended {g.status}: {g.error}")
            messages = self.variation_messages(round_row.parent_ts or "").get(g.number, [])
            if len(messages) != 1:
                problems.append(f"generation {g.id} (#{g.number}): {len(messages)} variation messages")
            name = f"round-{round_row.id}-variation-{g.number}.mp4"
            if g.status == "completed" and files[name] != 1:
                problems.append(f"generation {g.id}: {files[name]} clips posted")
        for round_row in rounds:
            thread = (
                self.slack.messages(CHANNEL, thread_ts=round_row.parent_ts) if round_row.parent_ts else []
            )
            keys = Counter(m.metadata["event_payload"]["key"] for m in thread if m.metadata)
            for close in range(1, round_row.closes + 1):
                key = f"round-{round_row.id}/close-{close}/announce"
                if keys[key] != 1:
                    problems.append(f"round {round_row.id} close {close}: {keys[key]} announcements")
                record = f"round-{round_row.id}/close-{close}/record"
                if keys[record] != 1:
                    problems.append(f"round {round_row.id} close {close}: {keys[record]} decision records")
                for name in (f"close-{close}-contact-sheet.png", f"close-{close}-winner.png"):
                    if files[f"round-{round_row.id}-{name}"] > 1:
                        problems.append(f"round {round_row.id}: {name} posted more than once")
            if files[f"round-{round_row.id}-contact-sheet.png"] > 1:
                problems.append(f"round {round_row.id}: more than one contact sheet")
        owned = set(jobs)
        if orphans := self.orphans():
            problems.append(f"jobs at the provider no generation owns, still billing: {orphans}")
        if len(owned) != len([g for g in generations if g.provider == "openai"]):
            problems.append(f"{len(owned)} provider jobs owned for {len(generations)} generations")
        votes = {(v.generation_id, v.user_id, v.emoji) for v in self.rows(Vote) if v.active}
        by_ts = {g.message_ts: g.id for g in generations}
        for ts, user, emoji in self.acknowledged_votes:
            normal = "+1" if emoji in ("+1", "thumbsup") else emoji
            if (by_ts.get(ts), user, normal) not in votes:
                problems.append(f"an acknowledged vote is missing: {user} {emoji} on {ts}")
        assert not problems, "\n".join(problems)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        if hasattr(self, "_store"):
            self._store.dispose()


def on_post(text_starts: str, *, in_thread: bool) -> Callable[[dict[str, Any]], bool]:
    """A fake Slack hook filter: chat.postMessage calls whose text starts so (in a thread or not)."""

    def match(params: dict[str, Any]) -> bool:
        return (
            str(params.get("text", "")).startswith(text_starts) and bool(params.get("thread_ts")) == in_thread
        )

    return match


def dump(value: object) -> str:
    return json.dumps(value, default=str)[:2000]

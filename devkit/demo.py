"""`sora-bot demo`: a scripted team session played through the real Bolt app against the built-in fake Slack."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import Settings, load_settings
from devkit.simulator import SimResponse, SlackSimulator
from devkit.slack_api import FakeSlack, Message
from handlers import blocks
from handlers.http import HttpServer

CHANNEL = "C0VIDEO"
ALICE, BOB, CAROL, DAN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"
USERS = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAN: "dan"}
SECRET = "demo-signing-secret"
IDEA = (
    "a small delivery robot rolls through a rain-soaked neon alley at night, slow dolly-in at robot height, "
    "soft film grain"
)
_VARIATION = re.compile(r"^Variation #(\d+)")


class Session:
    """Small verbs over the simulator, each waiting until Slack shows its effect."""

    def __init__(
        self, sim: SlackSimulator, fake: FakeSlack, *, timeout: float, narrate: Callable[[str], None] = print
    ) -> None:
        self.sim = sim
        self.fake = fake
        self.timeout = timeout
        self.narrate = narrate

    def expect_ok(self, response: SimResponse, what: str) -> None:
        if response.status != 200:
            raise RuntimeError(f"the bot answered {response.status} to {what}: {response.body[:200]}")

    def round_parent(self) -> Message:
        def find() -> Message | None:
            top = [m for m in self.fake.messages(CHANNEL) if m.user == self.fake.bot_user_id]
            return next((m for m in reversed(top) if m.text.startswith("Round:")), None)

        return self.fake.wait_for(find, timeout=self.timeout, what="the round's parent message")

    def variations(self, parent: Message) -> dict[int, Message]:
        found: dict[int, Message] = {}
        for message in self.fake.messages(CHANNEL, thread_ts=parent.ts):
            match = _VARIATION.match(message.text)
            if match and message.user == self.fake.bot_user_id:
                found[int(match.group(1))] = message
        return found

    def wait_ready(self, parent: Message, numbers: range) -> dict[int, Message]:
        def ready() -> dict[int, Message] | None:
            found = self.variations(parent)
            done = all(n in found and "ready" in found[n].text for n in numbers)
            uploaded = {f.title for f in self.fake.files()}
            return found if done and all(f"Variation #{n}" in uploaded for n in numbers) else None

        return self.fake.wait_for(ready, timeout=self.timeout, what=f"variations {list(numbers)} to be ready")

    def wait_for_text(self, parent: Message, needle: str) -> Message:
        def find() -> Message | None:
            replies = self.fake.messages(CHANNEL, thread_ts=parent.ts)
            return next((m for m in replies if needle in m.text), None)

        return self.fake.wait_for(find, timeout=self.timeout, what=f"a reply containing {needle!r}")

    def wait_for_ephemeral(self, user_id: str, needle: str, *, after: int) -> Any:
        def find() -> Any:
            mine = self.fake.ephemerals(CHANNEL, user_id)[after:]
            return next((e for e in mine if needle in e.text), None)

        return self.fake.wait_for(
            find, timeout=self.timeout, what=f"an ephemeral for {user_id} with {needle!r}"
        )


def play(session: Session) -> None:
    """The script: a draft, three variations, three teammates voting, a winner, a remix, a recall."""
    sim, fake, say = session.sim, session.fake, session.narrate
    seen = len(fake.ephemerals(CHANNEL, ALICE))
    say(f"1. alice types  /sora draft {IDEA}")
    session.expect_ok(sim.command(ALICE, CHANNEL, f"draft {IDEA}"), "/sora draft")
    card = session.wait_for_ephemeral(ALICE, "Draft", after=seen)
    say("   and sees a private draft card:\n" + _indent(fake.render(card), "     | "))
    say("2. alice clicks [Generate]; the bot posts a round and renders 3 variations in its thread")
    session.expect_ok(sim.click_button(ALICE, message=card, action_id=blocks.GENERATE), "Generate")

    parent = session.round_parent()
    variations = session.wait_ready(parent, range(1, 4))
    fake.wait_for(
        lambda: any(f.title == "Contact sheet" for f in fake.files()),
        timeout=session.timeout,
        what="the contact sheet",
    )
    say("3. bob reacts :+1: and carol :fire: on #2, dan :heart: on #1")
    session.expect_ok(sim.react(BOB, CHANNEL, variations[2].ts, "+1"), "a vote")
    session.expect_ok(sim.react(CAROL, CHANNEL, variations[2].ts, "fire"), "a vote")
    session.expect_ok(sim.react(DAN, CHANNEL, variations[1].ts, "heart"), "a vote")
    fake.wait_for(
        lambda: "(3 voters)" in json.dumps((fake.message(CHANNEL, parent.ts) or parent).blocks),
        timeout=session.timeout,
        what="the tally to show three voters",
    )

    say("4. alice clicks [Close voting]; the winner is announced and saved as a pattern")
    fresh_parent = fake.message(CHANNEL, parent.ts) or parent
    session.expect_ok(sim.click_button(ALICE, message=fresh_parent, action_id=blocks.CLOSE), "Close voting")
    session.wait_for_text(parent, "wins")
    session.wait_for_text(parent, "Decision record")  # the close's last post: its sheet and still are in

    say("5. bob replies in the thread  remix #2 make it golden hour")
    say("   round 1 stays won by #2; the remix opens round 2, a new vote, in the same thread")
    session.expect_ok(sim.reply(BOB, CHANNEL, parent.ts, "remix #2 make it golden hour"), "a remix reply")
    session.wait_ready(parent, range(4, 5))
    fake.wait_for(
        lambda: sum(f.title == "Contact sheet" for f in fake.files()) == 2,
        timeout=session.timeout,
        what="round 2's contact sheet",
    )

    seen = len(fake.ephemerals(CHANNEL, CAROL))
    say("6. carol types  /sora recall neon robot")
    session.expect_ok(sim.command(CAROL, CHANNEL, "recall neon robot"), "/sora recall")
    session.wait_for_ephemeral(CAROL, "pattern", after=seen)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def demo_settings(out: Path, api_url: str) -> Settings:
    return load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-demo",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": api_url,
            "SORA_BOT_DATA_DIR": str(out),
            "SORA_BOT_TICK_SECONDS": "0.5",
        }
    )


def run_demo(out: Path, *, build_runtime: Callable[[Settings], Any], timeout: float = 60.0) -> int:
    started = time.monotonic()
    print("sora-bot demo: a built-in fake Slack, the real Bolt app over HTTP, and the offline renderer.\n")
    with FakeSlack(users=USERS, channels={CHANNEL: "video-lab"}) as fake:
        runtime = build_runtime(demo_settings(out, fake.api_url))
        server = HttpServer(runtime.wsgi(), host="127.0.0.1", port=0)
        server.start()
        runtime.ticker.start()
        try:
            sim = SlackSimulator(fake, app_url=server.url, signing_secret=SECRET)
            play(Session(sim, fake, timeout=timeout))
        except (TimeoutError, RuntimeError) as err:
            print(fake.transcript())
            print(f"\nThe demo stopped: {err}.\nRun `sora-bot demo --verbose` to see the bot's logs.")
            return 1
        finally:
            server.stop()
            runtime.close()
        print("\nThe channel afterwards, as Slack would show it:\n")
        print(fake.transcript())
    clips = sorted((out / "assets").glob("round-*/*.mp4"))
    print(f"\nDone in {time.monotonic() - started:.1f} s.")
    print(f"Clips ({len(clips)}) and the contact sheet: {out / 'assets'}")
    print(f"Database: {out / 'sora-bot.db'}")
    return 0

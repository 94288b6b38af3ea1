"""A slow Slack, a 429ing Slack and a lost upload answer, through the real Bolt app and the real WebClient
against the fake Slack: every message and clip still appears exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHANNEL, OWNER, Bot, make_bot
from test_slack_loop import draft, variation_messages

from devkit.slack_api import FakeSlack
from handlers import blocks


@pytest.fixture
def short_leases(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    """A 4 s lease: the publisher's client gives up after 1 s, so a slower answer is an uncertain send."""
    made = make_bot(fake_slack, tmp_path, env={"SORA_BOT_LEASE_SECONDS": "4"})
    yield made
    made.server.stop()
    made.runtime.close()


def counts(bot: Bot) -> tuple[Counter[str], Counter[str]]:
    """How often each outbox key appears on a message, and each file name was shared."""
    keys: Counter[str] = Counter()
    for message in bot.fake.messages(CHANNEL):
        for m in [message, *bot.fake.messages(CHANNEL, thread_ts=message.ts)]:
            if m.metadata and (m.thread_ts is None or m.ts != m.thread_ts or m is message):
                keys[m.metadata["event_payload"]["key"]] += 1
    files = Counter(f.filename for f in bot.fake.files() if f.completed)
    return keys, files


def assert_each_once(bot: Bot, *, generations: int = 3) -> None:
    keys, files = counts(bot)
    posts = {k: n for k, n in keys.items() if k.endswith(("post_parent", "post_variation", "announce"))}
    assert posts and all(n == 1 for n in posts.values()), posts
    assert sum(1 for k in posts if k.endswith("post_variation")) == generations
    clips = {name: n for name, n in files.items() if "-variation-" in name}
    assert len(clips) == generations and all(n == 1 for n in clips.values()), files


def generate_and_finish(bot: Bot) -> None:
    card = draft(bot)
    assert bot.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    bot.sweep_until_idle()


def test_a_slow_slack_that_answers_after_the_client_gave_up_still_gets_each_post_once(
    short_leases: Bot,
) -> None:
    short_leases.fake.slow("chat.postMessage", 1.6, times=2)  # the round and #1: posted, answered too late
    short_leases.fake.slow("files.completeUploadExternal", 1.6, times=1)
    generate_and_finish(short_leases)
    assert_each_once(short_leases)


def test_a_slack_that_answers_429_is_retried_after_its_retry_after_and_posts_once(sora: Bot) -> None:
    sora.fake.fail_next("chat.postMessage", status=429, retry_after=3, times=3)
    sora.fake.fail_next("chat.update", status=429, retry_after=3, times=2)
    sora.fake.fail_next("files.getUploadURLExternal", status=429, retry_after=3, times=1)
    generate_and_finish(sora)
    assert_each_once(sora)
    assert len(sora.fake.calls("chat.postMessage")) == 3 + 1 + 3, (
        "three refused, then one round and three variations"
    )


def test_a_lost_upload_answer_is_found_in_the_thread_and_not_uploaded_again(sora: Bot) -> None:
    sora.fake.fail_next("files.completeUploadExternal", lose_answer=True, times=2)
    generate_and_finish(sora)
    assert_each_once(sora)
    assert sora.fake.calls("conversations.replies"), "the bot looked before uploading again"


def test_a_lost_post_answer_is_found_by_its_metadata_and_not_posted_again(sora: Bot) -> None:
    sora.fake.fail_next("chat.postMessage", lose_answer=True, times=2)  # the round, then #1
    generate_and_finish(sora)
    assert_each_once(sora)
    [parent] = [m for m in sora.fake.messages(CHANNEL) if m.text.startswith("Round:")]
    assert sorted(variation_messages(sora, parent)) == [1, 2, 3]


def test_the_sweep_and_a_click_racing_for_the_same_posts_post_each_once(sora: Bot) -> None:
    sora.fake.slow("chat.postMessage", 0.2)
    card = draft(sora)
    stop = threading.Event()

    def sweep_hard() -> None:
        while not stop.is_set():
            sora.services.posting.deliver()

    racers = [threading.Thread(target=sweep_hard) for _ in range(3)]
    for racer in racers:
        racer.start()
    try:
        assert sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
        # The racers post in real time (each post takes Slack 0.2 s): on a loaded machine, 20 quick sweeps can
        # all come before they are done.
        sora.sweep_until_idle(rounds=100, pause=0.1)
    finally:
        stop.set()
        for racer in racers:
            racer.join()
    sora.fake.slow("chat.postMessage", 0)
    assert_each_once(sora)

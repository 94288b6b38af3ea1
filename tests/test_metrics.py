"""`GET /metrics` through the real app: what the seams counted and what the database holds, in Prometheus's
text format."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BOB, CAROL, CHANNEL, DAN, OWNER, Bot, make_bot
from prometheus_client.parser import text_string_to_metric_families
from test_slack_loop import ready_round, settle, votes, wait_until

from bot.domain import GenerationRequest, ProviderJob
from bot.errors import RateLimited
from bot.metrics import Metrics, NoMeter, error_kind, metered
from bot.ports import JobFinder
from bot.providers.registry import Providers
from devkit.instant import InstantProvider
from devkit.slack_api import FakeSlack
from handlers import blocks
from storage.store import Store


class RateLimitedOnce(InstantProvider):
    """The instant provider, but its first create is refused with a 429."""

    refused: bool = False

    def submit(self, request: GenerationRequest) -> ProviderJob:
        if not self.refused:
            self.refused = True
            raise RateLimited("local is rate limiting us: slow down", retry_after=1)
        return super().submit(request)


@pytest.fixture
def metered_bot(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    made = make_bot(fake_slack, tmp_path, local=RateLimitedOnce())
    yield made
    made.server.stop()
    made.runtime.close()


def scrape(bot: Bot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of `GET /metrics`, by name and labels."""
    with urllib.request.urlopen(bot.server.url + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_votes_provider_and_slack_calls_a_429_and_read_jobs_and_backlog_from_the_database(
    metered_bot: Bot,
) -> None:
    bot = metered_bot
    _, messages = ready_round(bot)  # the first create was refused with a 429 and sent again
    bot.fake.fail_next("chat.update", status=429, retry_after=1)
    for user in (BOB, CAROL, DAN):
        assert bot.sim.react(user, CHANNEL, messages[1].ts, "fire", event_id=f"Ev{user}").status == 200
    assert bot.sim.react(BOB, CHANNEL, messages[1].ts, "fire", event_id=f"Ev{BOB}", retry_num=1).status == 200
    assert bot.sim.react(BOB, CHANNEL, messages[2].ts, "eyes").status == 200  # not a vote emoji
    assert bot.sim.unreact(DAN, CHANNEL, messages[1].ts, "fire").status == 200
    wait_until(lambda: len(votes(bot)) == 2, "two votes that count")

    waiting = scrape(bot)  # the 429'd update waits for Slack's Retry-After
    assert value(waiting, "sora_bot_outbox_backlog", state="pending") >= 1

    settle(bot)
    bot.sweep_until_idle()
    samples = scrape(bot)
    assert value(samples, "sora_bot_votes_total", change="added") == 3, "the retry and the 👀 do not count"
    assert value(samples, "sora_bot_votes_total", change="removed") == 1
    assert value(samples, "sora_bot_slack_calls_total", method="chat.update", outcome="rate_limited") == 1
    assert value(samples, "sora_bot_slack_calls_total", method="chat.update", outcome="ok") >= 1
    # The round message and three variations; the fake Slack counts the same calls.
    posted = value(samples, "sora_bot_slack_calls_total", method="chat.postMessage", outcome="ok")
    assert posted == len(bot.fake.calls("chat.postMessage")) >= 4
    assert value(samples, "sora_bot_slack_call_seconds_count", method="chat.update") >= 2
    assert (
        value(
            samples,
            "sora_bot_provider_errors_total",
            provider="local",
            operation="submit",
            kind="rate_limited",
        )
        == 1
    )
    assert (
        value(samples, "sora_bot_provider_request_seconds_count", provider="local", operation="submit") == 4
    )
    assert (
        value(samples, "sora_bot_provider_request_seconds_count", provider="local", operation="download") == 3
    )
    assert value(samples, "sora_bot_jobs", state="completed") == 3
    assert value(samples, "sora_bot_jobs", state="queued") == 0
    assert ("sora_bot_jobs", frozenset({("state", "in_progress")})) in samples, "every state is reported"
    assert value(samples, "sora_bot_outbox_backlog", state="pending") == 0
    assert value(samples, "sora_bot_outbox_backlog", state="failed") == 0
    assert value(samples, "sora_bot_reactions_unapplied") == 0  # every vote above applied
    assert value(samples, "sora_bot_database_up") == 1


def test_a_listener_failure_is_counted_by_kind(sora: Bot) -> None:
    stale = sora.sim.click(
        OWNER, action_id=blocks.GENERATE, value="stale", channel_id=CHANNEL, message_ts="1.2"
    )
    assert stale.status == 200  # in tests the listener has finished by the answer
    samples = scrape(sora)
    assert value(samples, "sora_bot_listener_errors_total", kind="user") == 1
    assert value(samples, "sora_bot_listener_errors_total", kind="internal") == 0


def test_the_database_gauges_say_so_when_the_database_cannot_be_read() -> None:
    metrics = Metrics()
    unreachable = Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    metrics.watch(unreachable)
    text = metrics.exposition()[0].decode()
    unreachable.dispose()
    assert "sora_bot_database_up 0.0" in text
    assert "sora_bot_jobs{" not in text and "sora_bot_outbox_backlog{" not in text


def test_two_runtimes_count_apart() -> None:
    first, second = Metrics(), Metrics()
    first.vote("added")
    assert b'sora_bot_votes_total{change="added"} 1.0' in first.exposition()[0]
    assert b'sora_bot_votes_total{change="added"} 0.0' in second.exposition()[0]


def test_a_metered_provider_keeps_what_the_core_checks_it_for(tmp_path: Path) -> None:
    providers = metered(Providers(available={"local": InstantProvider()}, default="local"), Metrics())
    provider = providers.get("local")
    assert isinstance(provider, JobFinder) and provider.name == "local"
    assert provider.jobs_per_key() == {}, "anything else is the provider's own"  # type: ignore[attr-defined]
    plain = Providers(available={"local": InstantProvider()}, default="local")
    assert metered(plain, NoMeter()) is plain


def test_error_kinds_are_snake_case_class_names() -> None:
    assert error_kind(RateLimited("x")) == "rate_limited"
    assert error_kind(TimeoutError()) == "timeout_error"

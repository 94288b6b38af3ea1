"""Operational numbers for Prometheus: what the seams count (provider and Slack calls, votes, listener errors)
and what the database holds when scraped (jobs by state, the outbox backlog).

The seams depend on `Meter`, a small port; `Metrics` speaks it with `prometheus_client` (the one module that
imports it) in a registry of its own per runtime, so two runtimes in one process never share a count.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.domain import GenerationRequest, JobStatus, ProviderJob
from bot.ports import JobFinder, VideoProvider
from bot.providers.registry import Providers
from storage import outbox
from storage.store import Store

log = logging.getLogger(__name__)

PREFIX = "sora_bot"
# Provider calls run from a few milliseconds (a poll) to minutes (a clip download or an ffmpeg edit).
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SLACK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
OUTBOX_BACKLOG = (outbox.PENDING, outbox.SENDING, outbox.FAILED)


class Meter(Protocol):
    """What the seams report. Label values are few and fixed (operations, methods, kinds), never user text."""

    def provider_call(self, provider: str, operation: str) -> AbstractContextManager[None]:
        """Times one call to a provider; an exception escaping it is counted by its kind and re-raised."""
        ...

    def slack_call(self, method: str, *, outcome: str, seconds: float) -> None:
        """One Web API call: `outcome` is ok, error, rate_limited (HTTP 429) or no_answer."""
        ...

    def vote(self, change: str) -> None:
        """A vote that changed the tally: `added` or `removed`."""
        ...

    def listener_error(self, kind: str) -> None:
        """A listener failed: `user` (told to the person) or `internal` (logged, apologised for)."""
        ...


class NoMeter:
    """Counts nothing: the default for services built without a runtime (tests, scripts)."""

    def provider_call(self, provider: str, operation: str) -> AbstractContextManager[None]:
        return nullcontext()

    def slack_call(self, method: str, *, outcome: str, seconds: float) -> None:
        pass

    def vote(self, change: str) -> None:
        pass

    def listener_error(self, kind: str) -> None:
        pass


class Metrics:
    """The Prometheus meter: counters and histograms at the seams, gauges read from the store per scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._provider_seconds = Histogram(
            f"{PREFIX}_provider_request_seconds",
            "Time spent in calls to a video provider, by provider and operation.",
            ["provider", "operation"],
            buckets=PROVIDER_BUCKETS,
            registry=self.registry,
        )
        self._provider_errors = Counter(
            f"{PREFIX}_provider_errors",
            "Provider calls that raised, by provider, operation and kind (e.g. rate_limited).",
            ["provider", "operation", "kind"],
            registry=self.registry,
        )
        self._slack_calls = Counter(
            f"{PREFIX}_slack_calls",
            "Slack Web API calls by the outbox and notices, by method and outcome (429s are rate_limited).",
            ["method", "outcome"],
            registry=self.registry,
        )
        self._slack_seconds = Histogram(
            f"{PREFIX}_slack_call_seconds",
            "Time spent in Slack Web API calls, by method.",
            ["method"],
            buckets=SLACK_BUCKETS,
            registry=self.registry,
        )
        self._votes = Counter(
            f"{PREFIX}_votes",
            "Votes that changed a tally, by change (added, removed).",
            ["change"],
            registry=self.registry,
        )
        self._listener_errors = Counter(
            f"{PREFIX}_listener_errors",
            "Slack listeners that failed, by kind (user: told to the person; internal: logged).",
            ["kind"],
            registry=self.registry,
        )
        for change in ("added", "removed"):
            self._votes.labels(change=change)
        for kind in ("user", "internal"):
            self._listener_errors.labels(kind=kind)

    @contextmanager
    def provider_call(self, provider: str, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException as err:
            self._provider_errors.labels(provider=provider, operation=operation, kind=error_kind(err)).inc()
            raise
        finally:
            self._provider_seconds.labels(provider=provider, operation=operation).observe(
                time.perf_counter() - started
            )

    def slack_call(self, method: str, *, outcome: str, seconds: float) -> None:
        self._slack_calls.labels(method=method, outcome=outcome).inc()
        self._slack_seconds.labels(method=method).observe(seconds)

    def vote(self, change: str) -> None:
        self._votes.labels(change=change).inc()

    def listener_error(self, kind: str) -> None:
        self._listener_errors.labels(kind=kind).inc()

    def watch(self, store: Store) -> None:
        """Report the store's jobs by state and outbox backlog at every scrape (one cheap query each)."""
        self.registry.register(StoreGauges(store))

    def exposition(self) -> tuple[bytes, str]:
        """The body and content type of `GET /metrics` (Prometheus text format)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class StoreGauges(Collector):
    """Gauges computed from the database when scraped: nothing to keep in step as rows move."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check up front; reading the database at registration would be wasted

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "Whether the last scrape could read the database.")
        try:
            with self.store.read() as repo:
                jobs = repo.generations.count_by_status()
                backlog = repo.outbox.count_by_state()
                reactions = repo.reactions.waiting()
        except Exception as err:  # a scrape must answer; the failure is itself the signal
            log.warning("metrics could not read the database: %s", type(err).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        by_state = GaugeMetricFamily(
            f"{PREFIX}_jobs", "Generations (provider jobs) by state.", labels=["state"]
        )
        for state in [s.value for s in JobStatus] + sorted(set(jobs) - {s.value for s in JobStatus}):
            by_state.add_metric([state], jobs.get(state, 0))
        waiting = GaugeMetricFamily(
            f"{PREFIX}_outbox_backlog",
            "Slack posts, uploads and updates not sent yet (pending, sending) or given up on (failed).",
            labels=["state"],
        )
        for state in OUTBOX_BACKLOG:
            waiting.add_metric([state], backlog.get(state, 0))
        unapplied = GaugeMetricFamily(
            f"{PREFIX}_reactions_unapplied",
            "Reactions kept but not applied to the votes yet (a batch under way, or left by a process that died).",
        )
        unapplied.add_metric([], reactions)
        return [up, by_state, waiting, unapplied]


def error_kind(err: BaseException) -> str:
    """An exception's class as a label: `RateLimited` → `rate_limited`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(err).__name__).lower()


# --- providers --------------------------------------------------------------------------------


def metered(providers: Providers, meter: Meter) -> Providers:
    """The same providers, each call timed and its failures counted by kind."""
    if isinstance(meter, NoMeter):
        return providers
    return Providers(
        available={name: _wrap(provider, meter) for name, provider in providers.available.items()},
        default=providers.default,
    )


def _wrap(provider: VideoProvider, meter: Meter) -> VideoProvider:
    if isinstance(provider, MeteredProvider):
        return provider
    # JobFinder is checked by its methods being there, so only a finder's wrapper may have `submitted_jobs`.
    return (
        MeteredFinder(provider, meter)
        if isinstance(provider, JobFinder)
        else MeteredProvider(provider, meter)
    )


class MeteredProvider:
    """A provider whose calls the meter times; everything else is the provider's own."""

    def __init__(self, inner: VideoProvider, meter: Meter) -> None:
        self.inner = inner
        self.meter = meter
        self.name = inner.name
        self.capabilities = inner.capabilities

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        with self.meter.provider_call(self.name, "submit"):
            return self.inner.submit(request)

    def fetch(self, job_id: str) -> ProviderJob:
        with self.meter.provider_call(self.name, "fetch"):
            return self.inner.fetch(job_id)

    def download(self, job_id: str, into: Path) -> Path:
        with self.meter.provider_call(self.name, "download"):
            return self.inner.download(job_id, into)

    def cancel(self, job_id: str) -> None:
        with self.meter.provider_call(self.name, "cancel"):
            self.inner.cancel(job_id)

    def cost_per_second(self, model: str | None) -> float:
        return self.inner.cost_per_second(model)


class MeteredFinder(MeteredProvider):
    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        assert isinstance(self.inner, JobFinder)
        with self.meter.provider_call(self.name, "list"):
            return self.inner.submitted_jobs(request, since=since)

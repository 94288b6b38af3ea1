"""Pipeline bench: 50 concurrent generations through the real services, sweep and provider adapter.

A fake provider (the OpenAI-compatible `/v1/videos` by default; `--provider fal|veo`) answers over real
HTTP after a simulated round trip (`--latency`) and finishes every job after `--job-seconds` of wall time.
The real services (`bot.bootstrap.build_services`) on a temporary SQLite database, woken by the real `Ticker`,
take drafts through `drafts.create_draft` and `rounds.start_round` and post through the outbox to a recording
stand-in for Slack (`devkit.recording.RecordingPublisher`) that also notes when each file was uploaded.

Three runs, in this order, each with a fresh fake, database and services:

- `polled`:   production settings (poll backoff 2 s → 30 s, provider hints honoured, tick `--tick`);
- `webhook`:  the same, and the provider "calls back" (`services.jobs.job_event`) the moment a job finishes;
- `baseline`: a naive fixed-interval poller, measured in the same run so the ratios mean something on a
              noisy machine: every 0.5 s (`poll_min_seconds = poll_max_seconds = 0.5`, tick 0.5 s),
              provider hints dropped;
- `traced`:   the `polled` setup again under tracemalloc, for the memory figure only (tracemalloc slows
              Python down, so its timings are not used).

Prints figures and PASS/MISS per goal; it never fails on a figure (exit 0 unless the bench itself breaks).
Run: `.venv/bin/python bench/pipeline.py [--generations 50] [--provider openai|fal|veo] [--job-seconds 6]
[--latency 0.05]`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's code; the fakes live with their tests

from provider_fakes import FakeFal, FakeOpenAI, FakeProviderServer, FakeVeo, make_clip  # noqa: E402

from bot.bootstrap import Services, build_services  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.domain import Capability, GenerationRequest, JobStatus, ProviderJob, SharedFile, ThreadRef  # noqa: E402
from bot.drafts import DraftEdit  # noqa: E402
from bot.ports import VideoProvider  # noqa: E402
from bot.providers.fal import FalProvider  # noqa: E402
from bot.providers.openai_compat import OpenAICompatibleProvider  # noqa: E402
from bot.providers.registry import Providers  # noqa: E402
from bot.providers.veo import VeoProvider  # noqa: E402
from bot.sweep import SweepReport  # noqa: E402
from bot.ticker import Ticker  # noqa: E402
from bot.tuning import CoreSettings  # noqa: E402
from devkit.recording import RecordingPublisher  # noqa: E402
from storage.store import Store  # noqa: E402

IDEAS = (
    "a small red robot rolls through a neon alley at dusk",
    "a paper boat drifts down a rain-soaked street at night",
    "a fox runs through fresh snow under a pale winter sun",
    "a lighthouse beam sweeps across a stormy sea",
    "a hot air balloon rises over misty hills at sunrise",
    "a cat watches goldfish in a glass bowl on a windowsill",
)
BASELINE_SECONDS = 0.5  # the naive poller's fixed interval (and its tick)
POLL_GOAL_PER_3S = 1.0  # status requests per 3 s of provider job time
WEBHOOK_GOAL_SECONDS = 1.0
MEMORY_GOAL_MB = 200.0
FAKES: dict[str, type[FakeProviderServer]] = {"openai": FakeOpenAI, "fal": FakeFal, "veo": FakeVeo}


# ------------------------------------------------------------------------------------------ the edges


class ClosableProvider(VideoProvider, Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class Upload:
    at: float  # time.monotonic()
    path: Path
    title: str


@dataclass
class TimedPublisher(RecordingPublisher):
    """The Publisher port as the devkit's stand-in for a Slack channel, noting when each file was uploaded."""

    uploads: list[Upload] = field(default_factory=list)

    def upload_file(
        self, thread: ThreadRef, path: Path, *, filename: str, title: str, comment: str, alt_text: str
    ) -> SharedFile:
        shared = super().upload_file(
            thread, path, filename=filename, title=title, comment=comment, alt_text=alt_text
        )
        with self._lock:
            self.uploads.append(Upload(at=time.monotonic(), path=path, title=title))
        return shared

    def variation_uploads(self) -> list[Upload]:
        with self._lock:
            return [u for u in self.uploads if u.title.startswith("Variation")]

    def call_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)


class ObservedProvider:
    """The real adapter, passed through: notes job ids, which file each was downloaded into, and when
    the sweep first saw it completed; with `hints=False` it drops the provider's poll-after hints."""

    def __init__(self, inner: ClosableProvider, *, hints: bool) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.capabilities: frozenset[Capability] = inner.capabilities
        self.hints = hints
        self.submitted: list[str] = []
        self.seen_completed: dict[str, float] = {}
        self.files: dict[str, str] = {}  # asset file name -> provider job id
        self._lock = threading.Lock()

    def _pass(self, job: ProviderJob) -> ProviderJob:
        return job if self.hints else replace(job, poll_after=None)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        job = self.inner.submit(request)
        with self._lock:
            self.submitted.append(job.job_id)
        return self._pass(job)

    def fetch(self, job_id: str) -> ProviderJob:
        job = self.inner.fetch(job_id)
        if job.status == JobStatus.COMPLETED:
            with self._lock:
                self.seen_completed.setdefault(job_id, time.monotonic())
        return self._pass(job)

    def download(self, job_id: str, into: Path) -> Path:
        path = self.inner.download(job_id, into)
        with self._lock:
            self.files[path.name] = job_id
        return path

    def cancel(self, job_id: str) -> None:
        self.inner.cancel(job_id)

    def cost_per_second(self, model: str | None) -> float:
        return self.inner.cost_per_second(model)

    def jobs(self) -> list[str]:
        with self._lock:
            return list(self.submitted)


class Webhook:
    """Plays the provider's callback: `jobs.job_event` for each job the moment the fake finishes it."""

    def __init__(self, services: Services, fake: FakeProviderServer, provider: ObservedProvider) -> None:
        self.services = services
        self.fake = fake
        self.provider = provider
        self.sent = 0
        self.accepted = 0
        self._fired: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            now = time.monotonic()
            for job_id in self.provider.jobs():
                due = self.fake.completes_at(job_id)
                if job_id in self._fired or due is None or due > now:
                    continue
                self._fired.add(job_id)
                self.sent += 1
                if self.services.jobs.job_event(provider=self.provider.name, job_id=job_id):
                    self.accepted += 1


@dataclass
class SweepStats:
    durations: list[float] = field(default_factory=list)
    polled: int = 0
    submitted: int = 0
    errors: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ one run


@dataclass(frozen=True)
class Mode:
    name: str
    tick: float
    poll_min: float
    poll_max: float
    hints: bool
    webhook: bool
    trace: bool


@dataclass
class RunResult:
    mode: Mode
    generations: int
    completed: int = 0
    failed: int = 0
    timed_out: bool = False
    submit_seconds: float = 0.0
    wall: float = 0.0
    routes: Counter[str] = field(default_factory=Counter)
    job_seconds_total: float = 0.0
    latencies: list[float] = field(default_factory=list)  # fake completes -> publisher upload
    detect: list[float] = field(default_factory=list)  # fake completes -> a poll sees it
    sweeps: SweepStats = field(default_factory=SweepStats)
    publisher_calls: Counter[str] = field(default_factory=Counter)
    webhooks_sent: int = 0
    webhooks_accepted: int = 0
    trace_peak_mb: float | None = None

    @property
    def requests(self) -> int:
        return sum(self.routes.values())

    @property
    def per_generation(self) -> float:
        return self.requests / self.completed if self.completed else math.nan

    @property
    def polls_per_3s(self) -> float:
        return self.routes["poll"] / (self.job_seconds_total / 3) if self.job_seconds_total else math.nan


def plan_rounds(total: int) -> list[int]:
    """Round sizes of 2–4 variations (mostly 3, as a draft defaults to) adding up to `total`."""
    if total < 2:
        raise SystemExit("--generations must be at least 2 (a round has 2–4 variations)")
    threes, rest = divmod(total, 3)
    if rest == 0:
        return [3] * threes
    if rest == 2:
        return [3] * threes + [2]
    return [3] * (threes - 1) + [4]  # rest 1: one round of 4 instead of a 3


def build_provider(kind: str, fake: FakeProviderServer) -> ClosableProvider:
    if kind == "openai":
        return OpenAICompatibleProvider(api_key=fake.api_key, base_url=fake.base_url)
    if kind == "fal":
        return FalProvider(key=fake.api_key, base_url=fake.base_url)
    return VeoProvider(api_key=fake.api_key, base_url=fake.base_url)


def submit_all(services: Services, sizes: list[int]) -> list[int]:
    """Draft and generate each round through the use cases a person's clicks call; returns round ids."""
    round_ids = []
    for i, size in enumerate(sizes):
        user = f"U{i % 5:02d}"
        card = services.drafts.create_draft(
            team_id="T1", channel_id="C1", user_id=user, idea=IDEAS[i % len(IDEAS)]
        )
        if card.variations != size:  # the edit modal, as a person would change the count
            spec = card.spec
            edit = DraftEdit(  # the modal wants a subject and an action; a person would type one
                subject=spec.subject or card.idea,
                action=spec.action or "moves slowly through the frame",
                camera=spec.camera,
                environment=spec.environment,
                finish=spec.finish,
                intent=spec.intent,
                aspect=card.aspect.value,
                seconds=str(card.seconds),
                variations=str(size),
            )
            card = services.drafts.update_draft(card.draft_id, actor=user, edit=edit)
        round_ids.append(services.rounds.start_round(card.draft_id, actor=user).round_id)
    return round_ids


def count_failed(services: Services, round_ids: list[int]) -> int:
    ended = (JobStatus.FAILED, JobStatus.CANCELLED)
    return sum(v.status in ended for rid in round_ids for v in services.rounds.round_view(rid).variations)


@contextlib.contextmanager
def traced(enabled: bool) -> Iterator[Callable[[], float | None]]:
    """tracemalloc over the block, when enabled; yields a function giving the peak in MB."""
    if not enabled:
        yield lambda: None
        return
    tracemalloc.start()
    peak: list[float] = []
    try:
        yield lambda: peak[0] if peak else None
    finally:
        peak.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()


def run(mode: Mode, args: argparse.Namespace, clip: bytes) -> RunResult:
    sizes = plan_rounds(args.generations)
    result = RunResult(mode=mode, generations=sum(sizes))
    fake_type = FAKES[args.provider]
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{mode.name}-") as tmp,
        traced(mode.trace) as trace_peak,
    ):
        fake = fake_type(clip=clip, latency=args.latency, seconds_to_complete=args.job_seconds)
        with fake, contextlib.closing(build_provider(args.provider, fake)) as adapter:
            provider = ObservedProvider(adapter, hints=mode.hints)
            store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
            store.create_schema()
            publisher = TimedPublisher()
            services = build_services(
                load_settings({"SORA_BOT_DATA_DIR": str(Path(tmp) / "data")}),
                store=store,
                publisher=publisher,
                clock=SystemClock(),
                worker_id=f"bench-{mode.name}",
                core=CoreSettings(
                    max_concurrent=args.max_concurrent or result.generations,
                    poll_min_seconds=mode.poll_min,
                    poll_max_seconds=mode.poll_max,
                ),
                providers=Providers(available={provider.name: provider}, default=provider.name),
            )
            stats = result.sweeps

            def timed_sweep() -> SweepReport:
                started = time.monotonic()
                report = services.sweep()
                stats.durations.append(time.monotonic() - started)
                stats.polled += report.polled
                stats.submitted += report.submitted
                stats.errors.extend(report.errors)
                return report  # its `next_due` lets the ticker sweep early for a job due before the tick

            ticker = Ticker(timed_sweep, interval=mode.tick)
            services.sweep.wake = services.rounds.wake = ticker.wake
            webhook = Webhook(services, fake, provider) if mode.webhook else None
            ticker.start()
            if webhook is not None:
                webhook.start()
            began = time.monotonic()
            try:
                round_ids = submit_all(services, sizes)
                result.submit_seconds = time.monotonic() - began
                deadline = began + args.timeout
                next_check = 0.0
                while True:
                    result.completed = len(publisher.variation_uploads())
                    now = time.monotonic()
                    if now >= next_check:  # failures are rare; look for them once a second
                        result.failed = count_failed(services, round_ids)
                        next_check = now + 1.0
                    if result.completed + result.failed >= result.generations:
                        break
                    if now > deadline:
                        result.timed_out = True
                        break
                    time.sleep(0.02)
                result.wall = time.monotonic() - began
            finally:
                if webhook is not None:
                    webhook.stop()
                ticker.stop()  # waits for a sweep in progress (e.g. a contact sheet) to finish
                services.close()
                store.dispose()
            if webhook is not None:
                result.webhooks_sent, result.webhooks_accepted = webhook.sent, webhook.accepted
            result.routes = Counter(r.route or "unknown" for r in fake.requests)
            for job_id in provider.jobs():
                if (due := fake.completes_at(job_id)) is not None and job_id in provider.seen_completed:
                    result.detect.append(provider.seen_completed[job_id] - due)
            result.job_seconds_total = args.job_seconds * len(provider.jobs())
            for upload in publisher.variation_uploads():
                job = provider.files.get(upload.path.name)
                due = fake.completes_at(job) if job else None
                if due is not None:
                    result.latencies.append(upload.at - due)
            result.publisher_calls = publisher.call_counts()
    result.trace_peak_mb = trace_peak()
    return result


# ------------------------------------------------------------------------------------------ reporting


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(results: list[RunResult]) -> None:
    header = (
        f"{'mode':<9}{'tick s':>7}{'done':>8}{'wall s':>8}{'requests':>10}{'req/gen':>9}{'polls/3s':>10}"
        f"{'post p50':>10}{'p95':>7}{'max':>7}{'seen p95':>10}{'sweeps':>8}{'sweep max':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        done = f"{r.completed}/{r.generations}" + ("!" if r.timed_out else "")
        print(
            f"{r.mode.name:<9}{r.mode.tick:>7.1f}{done:>8}{r.wall:>8.1f}{r.requests:>10}"
            f"{r.per_generation:>9.1f}{r.polls_per_3s:>10.2f}{percentile(r.latencies, 50):>10.2f}"
            f"{percentile(r.latencies, 95):>7.2f}{percentile(r.latencies, 100):>7.2f}"
            f"{percentile(r.detect, 95):>10.2f}{len(r.sweeps.durations):>8}"
            f"{max(r.sweeps.durations, default=math.nan):>11.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--provider", choices=sorted(FAKES), default="openai")
    parser.add_argument("--job-seconds", type=float, default=6.0, help="wall time a job takes at the fake")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated round trip per request, s")
    parser.add_argument("--tick", type=float, default=1.0, help="the sweep interval (SORA_BOT_TICK_SECONDS)")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="jobs in flight per provider (CoreSettings.max_concurrent); default: all of them",
    )
    parser.add_argument("--timeout", type=float, default=45.0, help="hard limit per run, s")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-clip-") as tmp:
        clip = make_clip(Path(tmp))
    idle_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux: imports, one clip
    defaults = CoreSettings()
    polled_mode = Mode(
        "polled", args.tick, defaults.poll_min_seconds, defaults.poll_max_seconds, True, False, False
    )
    modes = [
        polled_mode,
        replace(polled_mode, name="webhook", webhook=True),
        Mode("baseline", BASELINE_SECONDS, BASELINE_SECONDS, BASELINE_SECONDS, False, False, False),
        replace(polled_mode, name="traced", trace=True),
    ]
    print(
        f"pipeline bench {date.today()}: {args.generations} generations on the {args.provider} fake, "
        f"jobs finish after {args.job_seconds:g} s, {args.latency * 1000:g} ms per request, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    results = []
    for mode in modes:
        results.append(run(mode, args, clip))
        print(f"  {mode.name}: {results[-1].wall:.1f} s", file=sys.stderr, flush=True)
    polled, webhook, baseline, traced_run = results
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    print()
    print_table([polled, webhook, baseline])
    print()
    print(
        "post = job finished at the fake → clip uploaded by the publisher; seen = → a poll saw it finished; "
        "! = hit --timeout"
    )
    for r in (polled, webhook, baseline):
        routes = ", ".join(f"{k} {v}" for k, v in sorted(r.routes.items()))
        extra = f"; webhooks {r.webhooks_accepted}/{r.webhooks_sent} accepted" if r.mode.webhook else ""
        errors = f"; sweep errors {len(r.sweeps.errors)}" if r.sweeps.errors else ""
        mean = sum(r.sweeps.durations) / len(r.sweeps.durations) if r.sweeps.durations else math.nan
        calls = sum(r.publisher_calls.values())
        updates = r.publisher_calls["update_variation"] + r.publisher_calls["update_round"]
        print(
            f"  {r.mode.name:<9} provider requests: {routes}; drafts submitted in {r.submit_seconds:.1f} s; "
            f"sweep mean {mean:.2f} s; publisher calls {calls} ({calls / max(1, r.completed):.1f} per "
            f"generation, {updates} of them message updates); failed {r.failed}{extra}{errors}"
        )
    ratio = baseline.per_generation / polled.per_generation if polled.completed else math.nan
    poll_ratio = baseline.polls_per_3s / polled.polls_per_3s if polled.routes["poll"] else math.nan
    print(
        f"  baseline/polled: {ratio:.2f}× the requests per generation, {poll_ratio:.2f}× the status requests"
    )
    traced_mb = traced_run.trace_peak_mb or 0.0
    trace = f"{traced_mb:.1f} MB"
    print(
        f"  memory: peak RSS of this process {rss_mb:.1f} MB (every run, the in-process fakes included; "
        f"{idle_mb:.1f} MB before the first run); "
        f"tracemalloc peak of the polled setup {trace} (traced run: {traced_run.completed} done "
        f"in {traced_run.wall:.1f} s)"
    )

    post_p95 = percentile(polled.latencies, 95)
    hook_p95 = percentile(webhook.latencies, 95)
    memory_ok = rss_mb < MEMORY_GOAL_MB and traced_mb < MEMORY_GOAL_MB
    goals = [
        (
            f"all {polled.generations} generations completed and posted (polled run)",
            polled.completed == polled.generations,
        ),
        (
            f"status requests ≤ {POLL_GOAL_PER_3S:g} per 3 s of job time: {polled.polls_per_3s:.2f}",
            polled.polls_per_3s <= POLL_GOAL_PER_3S,
        ),
        (
            f"finished → posted p95 within one sweep interval ({polled.mode.tick:g} s): {post_p95:.2f} s",
            post_p95 <= polled.mode.tick,
        ),
        (
            f"with the provider's callback, finished → posted p95 ≤ {WEBHOOK_GOAL_SECONDS:g} s: {hook_p95:.2f} s",
            hook_p95 <= WEBHOOK_GOAL_SECONDS and webhook.completed == webhook.generations,
        ),
        (f"peak memory < {MEMORY_GOAL_MB:g} MB: RSS {rss_mb:.1f} MB, traced {trace}", memory_ok),
    ]
    print()
    for text, ok in goals:
        print(f"{verdict(ok)}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

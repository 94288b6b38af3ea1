"""What the Slack benches share: the signing secret, sora-bot's real runtime on a fake Slack, a bare Bolt app,
a fresh PostgreSQL schema, memory and percentile figures."""

from __future__ import annotations

import re
import resource
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.bootstrap import Runtime, build_runtime
from bot.config import load_settings
from bot.pricing import PriceTable
from bot.providers.registry import Providers, build_providers
from devkit.instant import InstantProvider
from devkit.slack_api import FakeSlack

SECRET = "bench-signing-secret"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quantile(samples: list[float], percent: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]


def percentiles(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {qs[49] * 1000:7.1f} ms   p95 {qs[94] * 1000:7.1f} ms   p99 {qs[98] * 1000:7.1f} ms"


def sora_runtime(fake: FakeSlack, data_dir: Path, *, database_url: str | None = None) -> Runtime:
    """The real app and services (the instant provider as the default; the ticker not started)."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "SORA_BOT_DATA_DIR": str(data_dir),
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    settings = load_settings(env)
    configured = build_providers(settings, prices=PriceTable.default())
    providers = Providers(available={**configured.available, "local": InstantProvider()}, default="local")
    return build_runtime(settings, providers=providers)


def bare_app(fake: FakeSlack) -> App:
    """A Bolt app whose listeners only ack: the floor for Bolt, the edge and the server."""
    app = App(client=WebClient(token="xoxb-bare", base_url=fake.api_url), signing_secret=SECRET)

    @app.command("/sora")
    def on_command(ack: Ack) -> None:
        ack()

    @app.action(re.compile(".*"))
    def on_action(ack: Ack) -> None:
        ack()

    @app.event("reaction_added")
    def on_reaction() -> None:
        pass

    @app.event("reaction_removed")
    def on_reaction_removed() -> None:
        pass

    return app


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database at `base`, dropped afterwards; yields sora-bot's DATABASE_URL."""
    import psycopg

    conninfo = base.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = conninfo.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

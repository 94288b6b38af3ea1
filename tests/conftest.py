"""Shared fixtures: isolated settings, a fake Slack, the real Bolt app served over HTTP, PostgreSQL when asked."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.assets import open_asset_store
from bot.bootstrap import Runtime, Services, build_runtime, build_services
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.pricing import PriceTable
from bot.providers.edit import EditProvider
from bot.providers.registry import Providers, build_providers
from bot.tuning import CoreSettings
from devkit.instant import InstantProvider
from devkit.recording import RecordingPublisher
from devkit.simulator import SlackSimulator
from devkit.slack_api import FakeSlack
from handlers.http import HttpServer
from storage.store import Store

SECRET = "test-signing-secret"
CHANNEL = "C0TEST"
OWNER, BOB, CAROL, DAN = "U0OWNER", "U0BOB", "U0CAROL", "U0DAN"


@pytest.fixture(autouse=True)
def _no_slack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bolt reads SLACK_* itself; a developer's real tokens must never leak into a test."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "OPENAI_", "FAL_", "GEMINI_", "SORA_BOT_")) or name in (
            "DATABASE_URL",
            "VIDEO_PROVIDER",
        ):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    # OWNER is a workspace admin (budget and provider are theirs to change); the others are members.
    with FakeSlack(
        users={OWNER: "owner", BOB: "bob", CAROL: "carol", DAN: "dan"},
        channels={CHANNEL: "video"},
        admins={OWNER},
    ) as fake:
        yield fake


@dataclass
class Bot:
    """The real app over HTTP against the fake Slack; tests drive the sweep by hand with a frozen clock."""

    runtime: Runtime
    fake: FakeSlack
    sim: SlackSimulator
    clock: FrozenClock
    server: HttpServer
    data_dir: Path

    @property
    def services(self) -> Services:
        return self.runtime.services

    def sweep_until_idle(self, *, rounds: int = 20, pause: float = 0.0) -> None:
        """Sweep, moving the frozen clock 5 s a time, until nothing is left to do. `pause`: real seconds between
        sweeps, for work other threads are doing at the same time (they need real time, not the frozen clock's)."""
        for _ in range(rounds):
            report = self.services.sweep()
            assert not report.errors, report.errors
            if not report.busy:
                return
            self.clock.advance(seconds=5)
            time.sleep(pause)
        raise AssertionError("the sweep never went idle")


def make_bot(
    fake: FakeSlack,
    tmp_path: Path,
    *,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    local: InstantProvider | None = None,
    finish_before_answer: bool = True,
) -> Bot:
    """`local` replaces the instant provider that stands in for the local renderer. `finish_before_answer=False`
    runs listeners as production does: on Bolt's threads, after Slack has its answer."""
    base = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "SORA_BOT_DATA_DIR": str(tmp_path / "data"),
    }
    if database_url:
        base["DATABASE_URL"] = database_url
    base.update(env or {})
    clock = FrozenClock()
    settings = load_settings(base)
    # One store for the services and the edits, as `serve` has (a folder, or the bucket when one is set).
    assets = open_asset_store(settings)
    configured = build_providers(settings, prices=PriceTable.default(), assets=assets)
    # The instant provider stands in for the local renderer: ffmpeg renders belong to the media tests.
    providers = Providers(
        available={**configured.available, "local": local or InstantProvider()}, default=configured.default
    )
    runtime = build_runtime(
        settings,
        clock=clock,
        providers=providers,
        assets=assets,
        listeners_finish_before_answer=finish_before_answer,
    )
    server = HttpServer(runtime.wsgi(), host="127.0.0.1", port=0)
    server.start()
    sim = SlackSimulator(fake, app_url=server.url, signing_secret=SECRET)
    return Bot(runtime=runtime, fake=fake, sim=sim, clock=clock, server=server, data_dir=tmp_path / "data")


@pytest.fixture
def sora(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    made = make_bot(fake_slack, tmp_path)
    yield made
    made.server.stop()
    made.runtime.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in TEST_DATABASE_URL for one test; skips (saying so) when it is not set."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (CI sets it); skipping")
    import psycopg

    conninfo = base.replace("postgresql+psycopg://", "postgresql://")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    url = (
        base
        if base.startswith("postgresql+psycopg://")
        else base.replace("postgresql://", "postgresql+psycopg://")
    )
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@dataclass
class Core:
    """The services over a real database, the instant provider, a recording publisher and a frozen clock."""

    services: Services
    publisher: RecordingPublisher
    provider: InstantProvider
    clock: FrozenClock
    store: Store

    def sweep_until_idle(self, *, rounds: int = 30) -> None:
        for _ in range(rounds):
            report = self.services.sweep()
            assert not report.errors, report.errors
            if not report.busy:
                return
            self.clock.advance(seconds=5)
        raise AssertionError("the sweep never went idle")

    def close(self) -> None:
        self.services.close()
        self.store.dispose()


def make_core(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    publisher: RecordingPublisher | None = None,
    provider: InstantProvider | None = None,
    clock: FrozenClock | None = None,
    worker_id: str | None = None,
    store: Store | None = None,
    providers: Providers | None = None,
    tuning: CoreSettings | None = None,
) -> Core:
    """`providers` replaces the instant one (hosted providers' fakes); `tuning` the core's default knobs."""
    settings = load_settings({"SORA_BOT_DATA_DIR": str(tmp_path / "data")})
    if store is None:
        store = Store(database_url or f"sqlite:///{tmp_path / 'core.db'}")
        store.create_schema()
    provider = provider or InstantProvider()
    publisher = publisher or RecordingPublisher()
    clock = clock or FrozenClock()
    services = build_services(
        settings,
        store=store,
        publisher=publisher,
        clock=clock,
        worker_id=worker_id,
        core=tuning,
        providers=providers
        or Providers(
            available={"local": provider, "edit": EditProvider(tmp_path / "edits")}, default="local"
        ),
    )
    return Core(services=services, publisher=publisher, provider=provider, clock=clock, store=store)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    made = make_core(tmp_path)
    yield made
    made.close()


def load_frozen_models(filename: str) -> Any:
    """An earlier release's models, frozen in `tests/data/` (its annotations are strings, resolved through the
    module, so it is registered under its own name)."""
    import importlib.util
    import sys

    path = Path(__file__).parent / "data" / filename
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module

"""Refunds: a variation that never renders (refused, cancelled, failed at the provider) gives its share of the
charge back to the channel's daily budget, exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Core, make_core
from provider_fakes import FakeOpenAI, make_clip
from sqlmodel import select
from test_lifecycle import generations, run, start, sweep

from bot import channels
from bot.providers.edit import EditProvider
from bot.providers.openai_compat import OpenAICompatibleProvider
from bot.providers.registry import Providers
from bot.tuning import CoreSettings
from storage.models import Round, Spend


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'refunds.db'}"


@pytest.fixture
def fake(clip: bytes) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(clip=clip, polls_to_complete=3) as made:
        yield made


@pytest.fixture
def core(fake: FakeOpenAI, tmp_path: Path, database_url: str) -> Iterator[Core]:
    provider = OpenAICompatibleProvider(api_key=fake.api_key, base_url=fake.base_url, timeout=10)
    made = make_core(
        tmp_path,
        database_url=database_url,
        providers=Providers(
            available={"openai": provider, "edit": EditProvider(tmp_path / "edits")}, default="openai"
        ),
        tuning=CoreSettings(daily_budget=100.0),
    )
    yield made
    made.close()


def spent(core: Core) -> float:
    return core.services.channels.defaults("C").spent_today


def refunds(core: Core) -> list[Spend]:
    with core.store.read() as repo:
        return [s for s in repo.session.exec(select(Spend)).all() if s.refund_of is not None]


def round_cost(core: Core, round_id: int) -> float:
    with core.store.read() as repo:
        found = repo.session.get(Round, round_id)
        assert found is not None
        return found.estimated_cost


def test_four_charged_two_cancelled_gives_two_shares_back_once(core: Core) -> None:
    round_id = start(core, variations=4)
    charged = spent(core)
    share = charged / 4
    assert charged > 0 and round_cost(core, round_id) == pytest.approx(charged)
    first, second, *_ = generations(core, round_id)
    assert first.id is not None and second.id is not None
    assert core.services.jobs.cancel_generation(first.id, actor="U1").done
    sweep(core)  # the other three are submitted; #2 is cancelled while it runs
    assert core.services.jobs.cancel_generation(second.id, actor="U1").done
    assert not core.services.jobs.cancel_generation(second.id, actor="U1").done  # a second click
    run(core)
    assert [g.status for g in generations(core, round_id)] == [
        "cancelled",
        "cancelled",
        "completed",
        "completed",
    ]
    assert spent(core) == pytest.approx(charged - 2 * share)
    assert sorted(r.refund_of or 0 for r in refunds(core)) == [first.id, second.id]
    assert round_cost(core, round_id) == pytest.approx(charged - 2 * share), (
        "the round shows what it costs now"
    )


def test_a_refund_processed_twice_or_by_two_workers_is_recorded_once(core: Core) -> None:
    round_id = start(core, variations=2)
    charged = spent(core)
    row = generations(core, round_id)[0]
    with core.store.transaction() as repo:
        assert channels.refund(repo, row, now=core.clock.now())
    with core.store.transaction() as repo:
        assert not channels.refund(repo, row, now=core.clock.now())
    assert len(refunds(core)) == 1 and spent(core) == pytest.approx(charged / 2)


def test_a_refused_submit_and_a_job_failed_at_the_provider_are_refunded(core: Core, fake: FakeOpenAI) -> None:
    round_id = start(core, variations=3)
    charged = spent(core)
    fake.fail_next("submit", 400, body={"error": {"message": "blocked", "code": "moderation_blocked"}})
    sweep(core)
    fake.fail_job_after_accept(fake.latest_job)
    run(core)
    statuses = sorted(g.status for g in generations(core, round_id))
    assert statuses == ["completed", "failed", "failed"]
    assert spent(core) == pytest.approx(charged / 3)
    assert len(refunds(core)) == 2


def test_a_job_that_times_out_keeps_its_charge(core: Core, fake: FakeOpenAI) -> None:
    round_id = start(core, variations=2)
    charged = spent(core)
    sweep(core)
    for job in list(fake._jobs):
        fake.stick(job)
    run(core, sweeps=60, step=60)
    assert [g.status for g in generations(core, round_id)] == ["failed", "failed"]
    assert refunds(core) == [] and spent(core) == pytest.approx(charged), "the provider may still bill it"

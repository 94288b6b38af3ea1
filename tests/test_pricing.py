"""Unit tests for bot.pricing: default rates, the config string, lookups and estimates."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.pricing import DEFAULT_RATES, Estimate, PriceTable, UnknownPrice


def test_the_defaults_price_each_provider_and_model() -> None:
    table = PriceTable.default()

    assert table.rate("local", None) == 0.0
    assert table.rate("openai", "sora-2") == 0.10
    assert table.rate("openai", "sora-2-pro") == 0.30
    assert table.rate("fal", "fal-ai/kling-video/v2.1/standard/text-to-video") == 0.05
    assert table.rate("veo", "veo-3.1-fast-generate-preview") == 0.15
    assert table.rate("veo", "veo-3.1-generate-preview") == 0.40
    assert PriceTable() == table


def test_a_model_without_its_own_rate_uses_the_providers_default_case_and_spaces_ignored() -> None:
    table = PriceTable.default()

    assert table.rate("OpenAI", " Sora-2-Pro ") == 0.30
    assert table.rate("openai", "some-gateway-model") == 0.10
    assert table.rate("veo", None) == 0.40


def test_an_unknown_provider_raises_a_clear_error() -> None:
    with pytest.raises(UnknownPrice) as caught:
        PriceTable.default().rate("runway", "gen4_turbo")

    assert "provider 'runway' (model 'gen4_turbo')" in str(caught.value)
    assert "'runway:gen4_turbo=0.10'" in str(caught.value)


def test_an_estimate_multiplies_rate_seconds_and_variations() -> None:
    table = PriceTable.default()

    estimate = table.estimate("openai", "sora-2", seconds=8, variations=3)

    assert estimate == Estimate(per_second=0.10, seconds=8, variations=3, total=2.4)
    assert estimate.summary == "≈ $2.40 (3 × 8 s at $0.10/s)"
    assert table.estimate("local", None, seconds=8, variations=4).summary == "free"
    with pytest.raises(ValueError):
        table.estimate("openai", "sora-2", seconds=0, variations=3)


def test_the_config_string_overrides_the_defaults() -> None:
    table = PriceTable.from_spec("openai:sora-2=0.12, fal=0.08; runway=$0.05/s")

    assert table.rate("openai", "sora-2") == 0.12
    assert table.rate("openai", "sora-2-pro") == 0.30
    assert table.rate("fal", "anything") == 0.08
    assert table.rate("runway", None) == 0.05
    assert PriceTable.from_spec("") == PriceTable.default()


def test_the_config_string_can_start_from_an_empty_table() -> None:
    table = PriceTable.from_spec("fal=0.05", base=PriceTable({}))

    assert dict(table.rates) == {("fal", None): 0.05}
    with pytest.raises(UnknownPrice):
        table.rate("local", None)


def test_every_malformed_entry_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        PriceTable.from_spec("openai, fal=cheap, veo=-1, :sora-2=0.1, openai:=0.1, fal:x=1, fal:X=2")

    problems = caught.value.problems
    assert len(problems) == 6
    assert "'openai' has no rate" in problems[0]
    assert "'fal=cheap' is not a number" in problems[1]
    assert "'veo=-1' must be a number ≥ 0" in problems[2]
    assert "needs a provider" in problems[3] and "needs a provider" in problems[4]
    assert "priced twice" in problems[5]


def test_a_table_rejects_negative_rates_and_is_read_only() -> None:
    with pytest.raises(ConfigError):
        PriceTable({("fal", None): -0.5})
    table = PriceTable.default()
    with pytest.raises(TypeError):
        table.rates[("fal", None)] = 9.0  # type: ignore[index]
    assert DEFAULT_RATES[("local", None)] == 0.0


def test_the_table_prints_back_as_a_config_string() -> None:
    table = PriceTable.from_spec("openai:sora-2=0.1,fal=0.05", base=PriceTable({}))

    assert table.spec() == "fal=0.05,openai:sora-2=0.1"
    assert PriceTable.from_spec(table.spec(), base=PriceTable({})) == table

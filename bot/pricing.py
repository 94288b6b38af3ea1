"""Prices per provider and model, and the estimated cost of a round; budget arithmetic lives in the core."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bot.errors import ConfigError, SoraBotError

# Dollars per second of output. These are DEFAULTS to be overridden: list prices move often and a gateway or a
# negotiated contract charges something else. A `None` model is the provider's default for any other model;
# where a provider's models differ, its default is the dearest one so an unknown model is never under-budgeted.
DEFAULT_RATES: Mapping[tuple[str, str | None], float] = MappingProxyType(
    {
        ("local", None): 0.0,
        ("openai", None): 0.10,
        ("openai", "sora-2"): 0.10,
        ("openai", "sora-2-pro"): 0.30,
        ("fal", None): 0.05,  # Kling on fal's queue
        ("veo", None): 0.40,
        ("veo", "veo-3.1-generate-preview"): 0.40,
        ("veo", "veo-3.1-generate-001"): 0.40,
        ("veo", "veo-3.1-fast-generate-preview"): 0.15,
        ("veo", "veo-3.1-fast-generate-001"): 0.15,
    }
)

_EXAMPLE = "openai:sora-2=0.10,fal=0.05"


class UnknownPrice(SoraBotError, LookupError):
    """No rate is configured for a provider (and model); the message says what to add."""

    def __init__(self, provider: str, model: str | None) -> None:
        self.provider = provider
        self.model = model
        key = f"{provider}:{model}" if model else provider
        which = f"provider {provider!r}" + (f" (model {model!r})" if model else "")
        super().__init__(
            f"No price is configured for {which}; add one to the price table, e.g. '{key}=0.10' (dollars per second)."
        )


@dataclass(frozen=True)
class Estimate:
    """What a round should cost: `variations` clips of `seconds` each at `per_second` dollars."""

    per_second: float
    seconds: int
    variations: int
    total: float

    @property
    def summary(self) -> str:
        """Plain words for a draft card: "≈ $2.40 (3 × 8 s at $0.10/s)" or "free (local renderer)"."""
        if self.total == 0:
            return "free"
        return f"≈ ${self.total:.2f} ({self.variations} × {self.seconds} s at ${self.per_second:.2f}/s)"


def _key(provider: str, model: str | None) -> tuple[str, str | None]:
    # Model ids are compared without case or edge spaces: "Sora-2 " in a setting means sora-2.
    cleaned = model.strip().lower() if model is not None else None
    return provider.strip().lower(), cleaned or None


@dataclass(frozen=True)
class PriceTable:
    """Rates in dollars per second, keyed by (provider, model); a `None` model is the provider's default."""

    rates: Mapping[tuple[str, str | None], float] = field(default_factory=lambda: DEFAULT_RATES)

    def __post_init__(self) -> None:
        problems = [
            f"the rate for {provider}{':' + model if model else ''} must be a number ≥ 0, not {rate!r}"
            for (provider, model), rate in self.rates.items()
            if not isinstance(rate, int | float) or not math.isfinite(rate) or rate < 0
        ]
        if problems:
            raise ConfigError(problems)
        normalised = {_key(provider, model): float(rate) for (provider, model), rate in self.rates.items()}
        # Frozen, and read-only inside too: a table shared by threads must not change under them.
        object.__setattr__(self, "rates", MappingProxyType(normalised))

    @classmethod
    def default(cls) -> PriceTable:
        return cls(DEFAULT_RATES)

    @classmethod
    def from_spec(cls, text: str, *, base: PriceTable | None = None) -> PriceTable:
        """Overrides like "openai:sora-2=0.10,fal=0.05" on top of `base` (the defaults unless given).

        Raises ConfigError listing every malformed entry at once.
        """
        rates = dict((base if base is not None else cls.default()).rates)
        problems: list[str] = []
        seen: set[tuple[str, str | None]] = set()
        for raw in re.split(r"[,;\n]", text):
            entry = raw.strip()
            if not entry:
                continue
            name, equals, value = entry.rpartition("=")
            if not equals:
                problems.append(
                    f"price entry {entry!r} has no rate; write provider[:model]=dollars per second"
                )
                continue
            provider, _, model = name.strip().partition(":")
            key = _key(provider, model)
            if not key[0] or (":" in name and not key[1]):
                problems.append(
                    f"price entry {entry!r} needs a provider (and a model after ':'), e.g. '{_EXAMPLE}'"
                )
                continue
            # People paste prices as they read them on a pricing page: "$0.10" or "0.10/s".
            number = re.sub(r"^\$|\s*/\s*s(?:ec(?:ond)?)?$", "", value.strip())
            try:
                rate = float(number)
            except ValueError:
                problems.append(f"the rate in {entry!r} is not a number of dollars per second")
                continue
            if not math.isfinite(rate) or rate < 0:
                problems.append(f"the rate in {entry!r} must be a number ≥ 0")
                continue
            if key in seen:
                problems.append(f"{name.strip()!r} is priced twice; keep one entry")
                continue
            seen.add(key)
            rates[key] = rate
        if problems:
            raise ConfigError([f"{p} (e.g. '{_EXAMPLE}')" for p in problems])
        return cls(rates)

    def rate(self, provider: str, model: str | None = None) -> float:
        """Dollars per second: the model's own rate, else the provider's default. Raises UnknownPrice."""
        key = _key(provider, model)
        for candidate in (key, (key[0], None)):
            if candidate in self.rates:
                return self.rates[candidate]
        raise UnknownPrice(provider, model)

    def estimate(self, provider: str, model: str | None, *, seconds: int, variations: int) -> Estimate:
        """The cost of `variations` clips of `seconds` each. Raises UnknownPrice, ValueError for nonsense sizes."""
        if seconds <= 0 or variations <= 0:
            raise ValueError(
                f"an estimate needs seconds > 0 and variations > 0, not {seconds} and {variations}"
            )
        per_second = self.rate(provider, model)
        # Rounded to a hundredth of a cent: 0.1 * 8 * 3 is 2.4000000000000004 in binary floating point.
        total = round(per_second * seconds * variations, 4)
        return Estimate(per_second=per_second, seconds=seconds, variations=variations, total=total)

    def spec(self) -> str:
        """The table in `from_spec` syntax, sorted; for `sora-bot doctor`."""
        entries = sorted(self.rates.items(), key=lambda item: (item[0][0], item[0][1] or ""))
        return ",".join(
            f"{provider}{':' + model if model else ''}={rate:g}" for (provider, model), rate in entries
        )

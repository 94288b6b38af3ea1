"""When to look at a provider job again: pure rules, plus the recent run times that time the first look.

Back off (2 s doubling to 30 s), but where the provider reports progress, look about when the job should be
done; the provider's own hint is a floor, not the schedule (a 1 s hint kept for a half-hour job would be ~900
requests). The first look at a new job comes when jobs at that provider have recently taken to finish.
"""

from __future__ import annotations

import threading
from collections import deque


def backoff(attempts: int, *, low: float, high: float) -> float:
    return float(min(high, low * 2 ** max(0, attempts - 1)))


def next_poll_delay(
    *, polls: int, hint: float, progress: int, running_for: float, low: float, high: float
) -> float:
    delay = backoff(polls, low=low, high=high)
    if 0 < progress < 100 and running_for > 0:
        expected = running_for * (100 - progress) / progress
        delay = min(delay, max(expected + 0.25, low / 2))
    return max(hint, delay)


def first_poll_delay(*, typical: float, hint: float | None, low: float) -> float:
    if hint == 0:  # the provider says it is ready to be asked now (the local renderer)
        return typical
    return max(hint or 0.0, typical or low)


class RunTimes:
    """Recent job run times per provider (the median times the first look at a new job)."""

    def __init__(self, keep: int = 20) -> None:
        self._keep = keep
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def learn(self, provider: str, seconds: float) -> None:
        with self._lock:
            self._times.setdefault(provider, deque(maxlen=self._keep)).append(seconds)

    def typical(self, provider: str) -> float:
        with self._lock:
            recent = sorted(self._times.get(provider, ()))
        return recent[len(recent) // 2] if recent else 0.0

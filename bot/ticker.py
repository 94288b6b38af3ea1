"""The periodic sweep: APScheduler wakes `Workflow.sweep`; the rows, not the scheduler, hold the state."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot import logs

log = logging.getLogger(__name__)

JOB_ID = "sora-bot-sweep"


class Ticker:
    """Runs `sweep` every `interval` seconds in one background thread, never two at once.

    `wake()` asks for a sweep now (after a click that queued work) instead of waiting for the next tick.
    """

    def __init__(self, sweep: Callable[[], object], *, interval: float) -> None:
        logs.quiet_scheduler()
        self._sweep = sweep
        self._again = threading.Event()
        self._running = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=interval,
            id=JOB_ID,
            max_instances=2,  # a second instance only marks the running sweep to go again
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def _run(self) -> None:
        if not self._running.acquire(blocking=False):
            self._again.set()  # the sweep in progress will go round once more
            return
        report: object = None
        try:
            while True:
                self._again.clear()
                try:
                    report = self._sweep()
                except Exception:  # the sweep logs per step; this last guard keeps the ticker ticking
                    log.exception("sweep failed")
                    report = None
                if not self._again.is_set():
                    break
        finally:
            self._running.release()
        if self._again.is_set():  # woken between the last look and the release: go again now
            self.wake()
        else:
            self.wake_at(getattr(report, "next_due", None))

    def wake_at(self, due: object) -> None:
        """Something due before the next tick (a job, a coalesced update) gets a sweep at its time, not up to a
        whole interval late."""
        if not isinstance(due, datetime) or not self._scheduler.running:
            return
        job = self._scheduler.get_job(JOB_ID)
        if job is not None and job.next_run_time is not None and due < job.next_run_time:
            self._scheduler.modify_job(JOB_ID, next_run_time=max(due, datetime.now(UTC)))

    def start(self) -> None:
        self._scheduler.start()

    def wake(self) -> None:
        if self._scheduler.running:
            self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

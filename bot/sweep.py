"""One pass of the ticker, composing the services: reconcile votes once at start-up, post what the outbox
holds, submit, poll, queue contact sheets, close rounds past their deadline, forget old Slack event ids.

Every step works from rows alone, so a restart (or a second replica) resumes exactly where things were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.ballot_box import BallotBox
from bot.jobs import JobReport, Jobs
from bot.ports import Clock
from bot.posting import Posting
from bot.rounds import Rounds
from bot.tuning import CoreSettings
from storage.store import Store

log = logging.getLogger(__name__)

EVENT_MEMORY = timedelta(days=1)  # Slack retries an event for minutes; a day of ids is plenty
ORPHAN_AUDIT_WINDOW = timedelta(hours=2)  # a create in flight when its process died lands within seconds


@dataclass
class SweepReport:
    submitted: int = 0
    polled: int = 0
    completed: int = 0
    failed: int = 0
    posted: int = 0
    sheets: int = 0
    closed: int = 0
    reconciled: int = 0
    votes: int = 0  # reactions applied that no listener had applied yet
    orphans: int = 0  # jobs at a provider that no generation owned, cancelled there
    errors: list[str] = field(default_factory=list)
    next_due: datetime | None = None  # the earliest thing waiting for a later sweep, for the ticker
    more: bool = False
    waiting: int = 0  # posts and jobs not finished yet (due later)

    @property
    def busy(self) -> bool:
        """Something was done, or is still waiting to be (tests and benches sweep until this is False)."""
        return any(
            (self.submitted, self.polled, self.posted, self.sheets, self.closed, self.more, self.waiting)
        )


class Sweep:
    def __init__(
        self,
        *,
        store: Store,
        jobs: Jobs,
        posting: Posting,
        rounds: Rounds,
        ballots: BallotBox,
        clock: Clock,
        settings: CoreSettings,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.posting = posting
        self.rounds = rounds
        self.ballots = ballots
        self.clock = clock
        self.wake: Callable[[], None] = lambda: None
        self.settings = settings
        self._reconciled = False
        self._audited_at: datetime | None = None

    def __call__(self) -> SweepReport:
        report = SweepReport()
        steps: list[Callable[[SweepReport], None]] = [
            self._reconcile_once,
            self._apply_reactions,
            self._post,
            self._submit,
            self._poll,
            self._queue_sheets,
            self._close_due,
            self._post,
            self._forget_events,
            self._audit_orphans,
        ]
        for step in steps:
            try:
                step(report)
            except Exception as err:  # one broken step must not stop the others
                log.exception("sweep step %s failed", step.__name__)
                report.errors.append(f"{step.__name__}: {err}")
        with self.store.read() as repo:
            due = (repo.generations.next_due(), repo.outbox.next_due(), repo.rounds.next_deadline())
            report.waiting = repo.outbox.backlog() + repo.generations.count_waiting()
        times = [t for t in due if t is not None]
        report.next_due = min(times) if times else None
        if report.more:
            self.wake()  # more was due than one batch: go round again at once
        return report

    def _reconcile_once(self, report: SweepReport) -> None:
        """Votes Slack holds that a crash or a lost event kept from us: once per process, at start-up."""
        if self._reconciled:
            return
        report.reconciled += self.rounds.reconcile_open_rounds()
        self._reconciled = True

    def _apply_reactions(self, report: SweepReport) -> None:
        """Reactions received but not applied yet: a process that died mid-batch, a batch that failed."""
        report.votes += self.ballots.drain()

    def _post(self, report: SweepReport) -> None:
        report.posted += self.posting.deliver()

    def _submit(self, report: SweepReport) -> None:
        jobs = JobReport()
        self.jobs.submit_due(jobs)
        report.submitted += jobs.submitted
        report.failed += jobs.failed
        report.more = report.more or jobs.more

    def _poll(self, report: SweepReport) -> None:
        jobs = JobReport()
        self.jobs.poll_due(jobs)
        report.polled += jobs.polled
        report.completed += jobs.completed
        report.failed += jobs.failed
        report.more = report.more or jobs.more

    def _queue_sheets(self, report: SweepReport) -> None:
        """A round whose variations have all finished gets one contact sheet."""
        with self.store.transaction() as repo:
            for round_row in repo.rounds.needing_sheet():
                assert round_row.id is not None
                if self.posting.sheet_due(repo, round_row.id):
                    report.sheets += 1

    def _close_due(self, report: SweepReport) -> None:
        report.closed += self.rounds.close_due()

    def _audit_orphans(self, report: SweepReport) -> None:
        """At start-up, then every `orphan_audit_seconds`: jobs a late create left at a provider, cancelled."""
        now = self.clock.now()
        every = timedelta(seconds=self.settings.orphan_audit_seconds)
        if self._audited_at is not None and now - self._audited_at < every:
            return
        self._audited_at = now
        report.orphans += self.jobs.audit_orphans(window=ORPHAN_AUDIT_WINDOW)

    def _forget_events(self, report: SweepReport) -> None:
        """Slack event ids (and applied reactions) older than a day, and outbox rows of posts long settled."""
        now = self.clock.now()
        with self.store.transaction() as repo:
            repo.events.forget_before(now - EVENT_MEMORY)
            repo.reactions.forget_applied_before(now - EVENT_MEMORY)
            repo.outbox.forget_finished_before(now - timedelta(days=self.settings.outbox_keep_days))

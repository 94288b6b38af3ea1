"""The knobs the services read (vote window, budget, leases, poll timing…), built from Settings at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from bot import storyboard, votes

MAX_VARIATIONS = 4
MIN_VARIATIONS = 2
MIN_SECONDS = 2
MAX_SECONDS = 20


@dataclass(frozen=True)
class CoreSettings:
    vote_minutes: int = 30
    tie_minutes: int = votes.DEFAULT_TIE_MINUTES  # the owner's time to break a tie before the rule decides
    daily_budget: float | None = None
    max_concurrent: int = 4
    min_beat_gap: float = storyboard.MIN_GAP
    workers: int = (
        8  # provider and Slack calls the sweep makes at once (each waits on the network, not the CPU)
    )
    claim_batch: int = 32
    lease_seconds: float = 120.0
    poll_min_seconds: float = 2.0
    poll_max_seconds: float = 30.0
    max_submit_attempts: int = 5
    job_timeout_minutes: float = 30.0
    vote_emoji: frozenset[str] = votes.VOTE_EMOJI
    update_gap_seconds: float = 1.0  # at most one chat.update per message per second (Slack's pace)
    post_lease_seconds: float = 120.0  # how long a claimed Slack post is ours before another worker may look
    max_post_attempts: int = 8
    uncertain_look_seconds: float = 10.0  # after a lost answer, wait this long before looking for the post
    outbox_keep_days: int = 30  # sent and failed outbox rows are forgotten after this
    orphan_audit_seconds: float = 600.0  # how often the sweep looks for jobs a late create left at a provider
    # besides workspace admins, who may change a channel's budget, provider and model
    admins: frozenset[str] = frozenset()
    max_clip_mb: int = 100  # a provider's download larger than this is refused (and stopped as it streams)

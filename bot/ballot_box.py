"""Every vote is cast here: reactions, kept with one insert and applied to the votes in batches, and a blind round's
*Vote* buttons (`cast_ballot`).

A reaction listener does one thing on Slack's time: `take` writes the event (its unique id skips Slack's
retries) and asks for the pending ones to be applied. Whoever asks first applies everything pending, in batches
of up to `BATCH` events under one transaction each, while the others only add their event and return: a burst of
votes costs a few transactions, not a dozen queries each, and a vote's cost does not grow with the votes the round
holds (a batch reads only its voters' rows). The messages follow through the outbox, at most once a second each.

Nothing acknowledged is lost: an event written but not applied (the process died mid-batch) is applied by the
next `drain` — every sweep asks for one — and the votes are reconciled with Slack's reactions at start-up and on
close besides. Applying is idempotent (a vote row keeps its newest event's state), so a replica applying the same
event again, or events applied out of order, end the same.

A variation is two messages in Slack: its own and its clip's (Slack shares an upload as a message of its own).
A reaction on either is a vote for it. The rows are per message, so one person's emoji on both counts once, and
taking it off one message leaves the vote held on the other.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from bot import votes
from bot.domain import JobStatus, RoundStatus
from bot.errors import NotFound
from bot.metrics import Meter
from bot.ports import Clock, Publisher
from bot.posting import Posting
from bot.rounds import OWNER_NOTE, Rounds, closed_note, numbers_text
from bot.views import Outcome, rules_of, vote_records
from storage.models import Generation, ReactionEvent, Round, Vote
from storage.store import DatabaseTrouble, Repo, Store
from storage.votes import CLIP, MESSAGE, apply_event

log = logging.getLogger(__name__)

BATCH = 500  # events applied under one transaction
# Reactions waiting in memory while the database cannot take them. Beyond this (a long outage under heavy voting)
# new ones are dropped with a warning: the votes are read back from Slack's reactions at start-up and on close.
MAX_QUEUED = 50_000
BLIND_NOTE = (
    "This round is blind, so reactions are not votes (everyone can see who reacted with what). "
    "Vote with the *Vote* button under #{number}: nobody sees your choice."
)


@dataclass(frozen=True)
class Reaction:
    """A `reaction_added` (active) or `reaction_removed` as Slack delivered it."""

    event_id: str
    channel_id: str
    message_ts: str
    user_id: str
    emoji: str
    active: bool
    event_ts: str = ""
    on_bot_message: bool = True  # the reacted message is the bot's, or Slack did not say: maybe a clip's

    @classmethod
    def local(
        cls, channel_id: str, message_ts: str, user_id: str, emoji: str, *, active: bool, event_ts: str
    ) -> Reaction:
        """A reaction known other than by a Slack event (scripts, tests): an id of its own."""
        return cls(f"local-{uuid.uuid4().hex}", channel_id, message_ts, user_id, emoji, active, event_ts)

    def row(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "channel_id": self.channel_id,
            "message_ts": self.message_ts,
            "user_id": self.user_id,
            "emoji": votes.normalise_emoji(self.emoji),
            "active": self.active,
            "event_ts": self.event_ts,
            "on_bot_message": self.on_bot_message,
        }


@dataclass(frozen=True)
class Note:
    """Something one voter is told privately after their reaction was applied."""

    channel_id: str
    user_id: str
    text: str


@dataclass
class _Batch:
    taken: int = 0
    notes: list[Note] = field(default_factory=list)
    changed_rounds: set[int] = field(default_factory=set)
    due: datetime | None = None  # when the earliest update this batch asked for may go out
    learn: dict[str, list[str]] = field(default_factory=dict)  # channel → event ids waiting on a clip lookup


@dataclass
class _RoundState:
    """A round as one batch sees it: locked, its rules, its variations, and its batch voters' rows."""

    row: Round
    rules: votes.VoteRules
    numbers: dict[int, int]
    generations: list[Generation]
    rows: dict[tuple[int, str, str, str], Vote]  # (generation, user, emoji, source) → row
    touched: set[int] = field(default_factory=set)


class BallotBox:
    def __init__(
        self,
        *,
        store: Store,
        rounds: Rounds,
        posting: Posting,
        publisher: Publisher,
        clock: Clock,
        meter: Meter,
    ) -> None:
        self.store = store
        self.rounds = rounds
        self.posting = posting
        self.publisher = publisher
        self.clock = clock
        self.meter = meter
        # The ticker's, once wired: a sweep (which sends the outbox's due updates) at a given time.
        self.wake_at: Callable[[datetime], None] = lambda due: None
        self._queue: deque[Reaction] = deque()
        self._arrived = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._applying = threading.Lock()
        self._notes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sora-bot-notes")
        # Events already given one clip lookup: applied as they are next time.
        self._looked_up: set[str] = set()
        self._told_moved: set[tuple[int, str]] = set()  # (round, voter) told how a vote moves
        self._limit = BATCH

    # --- taking events ------------------------------------------------------------------------

    def take(self, reaction: Reaction, *, at_once: bool = False) -> None:
        """Queue one reaction Slack delivered, for this process's applier thread (started on first use). No
        database work here: a listener is done in microseconds, however busy the database is.

        `at_once`: keep and apply it before returning, in this thread (when listeners finish before Slack's answer,
        the vote is counted by then too)."""
        if at_once or self._closing:  # a listener finishing during a graceful stop: its vote still counts
            self._now(reaction)
            return
        with self._arrived:
            if len(self._queue) >= MAX_QUEUED:
                log.warning(
                    "%s reactions are waiting for the database; dropping one (the close reads votes back from "
                    "Slack)",
                    len(self._queue),
                )
                return
            self._queue.append(reaction)
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="sora-bot-ballots", daemon=True)
                self._thread.start()
            self._arrived.notify()

    def record_vote(
        self, *, channel_id: str, message_ts: str, user_id: str, emoji: str, event_ts: str = ""
    ) -> None:
        """A reaction added, kept and applied before this returns."""
        self._now(Reaction.local(channel_id, message_ts, user_id, emoji, active=True, event_ts=event_ts))

    def remove_vote(
        self, *, channel_id: str, message_ts: str, user_id: str, emoji: str, event_ts: str = ""
    ) -> None:
        """A reaction removed, kept and applied before this returns."""
        self._now(Reaction.local(channel_id, message_ts, user_id, emoji, active=False, event_ts=event_ts))

    def _now(self, reaction: Reaction) -> None:
        self._keep([reaction])
        self.drain(wait=True, notes_here=True)

    def close(self, *, timeout: float = 10.0) -> None:
        """Keep and apply what is queued, then stop the applier thread (a graceful stop loses no vote)."""
        with self._arrived:
            self._closing = True
            self._arrived.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._notes.shutdown(wait=True)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._arrived:
                while not self._queue and not self._closing:
                    self._arrived.wait()
                if not self._queue:
                    return
                taken = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            try:
                self._keep(taken)
            except Exception:
                failures += 1
                if self._closing and failures >= 3:
                    log.error(
                        "stopping with %s reactions not kept; they are read back from Slack at the next start",
                        len(taken) + len(self._queue),
                    )
                    return
                log.exception("keeping %s reactions failed; trying again", len(taken))
                with self._arrived:
                    self._queue.extendleft(reversed(taken))
                self._back_off(min(5.0, 0.2 * 2**failures))
                continue
            failures = 0
            try:
                self.drain(wait=True)
            except Exception:  # they are kept: the next batch, or the sweep, applies them
                log.exception("applying reactions failed")

    @staticmethod
    def _back_off(seconds: float) -> None:
        time.sleep(seconds)

    def _keep(self, reactions: Sequence[Reaction]) -> int:
        """Write a batch of reactions in one transaction; Slack's deliveries of known events are skipped."""
        with self.store.transaction() as repo:
            return repo.reactions.add_many([r.row() for r in reactions], now=self.clock.now())

    # --- a blind round's ballots --------------------------------------------------------------

    def cast_ballot(self, generation_id: int, *, user_id: str, action_ts: str) -> Outcome:
        """A blind round's *Vote* button: vote for this variation, or take the vote back (clicked again); under
        one vote per round, a vote elsewhere moves here. The answer is for the voter alone.

        Only the round message changes (how many have voted): a variation's message never moves with a vote,
        so nobody can tell from it who chose what."""
        with self.store.transaction() as repo:
            generation = repo.generations.get(generation_id)
            if generation is None or generation.id is None:
                raise NotFound("That variation no longer exists.")
            round_row = repo.rounds.get_for_update(generation.round_id)
            assert round_row is not None and round_row.id is not None
            rules = rules_of(round_row)
            number = generation.number
            if round_row.status != RoundStatus.OPEN.value:
                return Outcome(False, closed_note(repo, round_row))
            if not rules.blind:
                return Outcome(False, f"This round counts reactions: react on #{number}'s message to vote.")
            if generation.status != JobStatus.COMPLETED.value:
                return Outcome(False, f"#{number} has no finished clip to vote for.")
            if user_id == round_row.owner_id and not rules.owner_votes:
                return Outcome(False, OWNER_NOTE)
            mine = repo.votes.of_user(round_row.id, user_id, votes.BALLOT)
            generations = list(repo.generations.in_round(round_row.id))
            if any(r.event_ts == action_ts for r in mine):  # the same click delivered twice
                return Outcome(
                    False, _ballot_note(_held_vote(repo, round_row, generations, user_id), generations)
                )
            held = {r.generation_id for r in mine if r.active}
            now = self.clock.now()
            changed = False
            if generation.id in held:
                changes = [(generation.id, False)]
            else:
                changes = [(generation.id, True)]
                if not rules.multi:
                    changes += [(other, False) for other in held]
            for target, active in changes:
                changed |= repo.votes.record(
                    round_id=round_row.id,
                    generation_id=target,
                    user_id=user_id,
                    emoji=votes.BALLOT,
                    active=active,
                    event_ts=action_ts,
                    now=now,
                )
            if changed:
                self.posting.votes_changed(repo, round_row.id, [])
            after = _held_vote(repo, round_row, generations, user_id)
            round_id = round_row.id
        if changed:
            self.posting.deliver_soon(round_id)
            self.rounds.close_at_quorum(round_id)
        moved = sorted(held - after) if not rules.multi and generation.id in after else []
        return Outcome(
            changed,
            _ballot_note(
                after, generations, moved_from=moved, taken_back=number if generation.id in held else None
            ),
        )

    # --- applying -----------------------------------------------------------------------------

    def drain(self, *, wait: bool = False, notes_here: bool = False) -> int:
        """Apply every kept reaction not applied yet; returns how many. One batch at a time per process: without
        `wait`, a caller finding a batch under way leaves it to that (the sweep does). The voters' private notes
        go out from a pool of their own, so Slack's time to take them never holds up the next batch
        (`notes_here`: from this thread, before returning)."""
        if not self._applying.acquire(blocking=wait):
            return 0
        applied = 0
        notes: list[Note] = []
        try:
            while True:
                batch = self._apply_once()
                applied += batch.taken
                notes += batch.notes
                if batch.learn:
                    self._look_up_clips(batch.learn)
                    continue
                if batch.taken < self._limit:
                    break
        finally:
            self._applying.release()
        for note in notes:
            if notes_here:
                self._tell(note)
            else:
                self._notes.submit(self._tell, note)
        return applied

    def _apply_once(self) -> _Batch:
        """One batch, in one transaction; a batch that fails is retried one event at a time, and an event that
        fails alone is set aside (logged; the close reconciles the votes with Slack's reactions anyway). When the
        database is the trouble (unreachable, locked, a deadlock it broke) nothing is set aside: the reactions stay
        kept, and the next batch or sweep applies them."""
        try:
            batch = self._apply_batch(self._limit)
        except DatabaseTrouble as err:
            log.warning("applying reactions must wait for the database: %s", type(err.orig).__name__)
            return _Batch()
        except Exception:
            if self._limit > 1:
                log.exception("applying %s reactions failed; applying them one at a time", self._limit)
                self._limit = 1
                return _Batch(taken=1)  # go round again, one at a time
            log.exception("a reaction could not be applied; setting it aside")
            self._set_aside_first()
            return _Batch(taken=1)
        if batch.taken < self._limit:
            self._limit = BATCH
        self._after(batch)
        return batch

    def _apply_batch(self, limit: int) -> _Batch:
        batch = _Batch()
        with self.store.transaction() as repo:
            events = list(repo.reactions.pending(limit=limit))
            batch.taken = len(events)
            if not events:
                return batch
            now = self.clock.now()
            where = self._variations_of(repo, events)
            held_back: set[int] = set()
            unshared: dict[str, bool] = {}  # channel → has clips whose own message is not known yet
            for event in events:
                if (event.channel_id, event.message_ts) in where or not event.on_bot_message:
                    continue
                if event.channel_id not in unshared:
                    unshared[event.channel_id] = bool(
                        repo.generations.clips_without_message(event.channel_id, limit=1)
                    )
                if event.event_id not in self._looked_up and unshared[event.channel_id]:
                    # Maybe a clip whose own message Slack had not shared when it was uploaded: ask, then apply.
                    batch.learn.setdefault(event.channel_id, []).append(event.event_id)
                    assert event.id is not None
                    held_back.add(event.id)
            states = self._lock_rounds(repo, events, where)
            for event in events:
                if event.id in held_back:
                    continue
                found = where.get((event.channel_id, event.message_ts))
                if found is None:
                    continue
                generation, source = found
                state = states[generation.round_id]
                note = self._apply(repo, state, event, generation, source, now=now)
                if note:
                    batch.notes.append(Note(event.channel_id, event.user_id, note))
            for round_id, state in states.items():
                if not state.touched:
                    continue
                batch.changed_rounds.add(round_id)
                # One vote per round: a move changes two variations' counts (rendered from rows when sent).
                touched = state.touched if state.rules.multi else set(state.numbers)
                self.posting.votes_changed(repo, round_id, sorted(touched))
            if batch.changed_rounds:
                batch.due = repo.outbox.next_due()
            repo.reactions.mark_applied(
                [e.id for e in events if e.id is not None and e.id not in held_back], now=now
            )
        return batch

    @staticmethod
    def _variations_of(
        repo: Repo, events: Sequence[ReactionEvent]
    ) -> dict[tuple[str, str], tuple[Generation, str]]:
        """(channel, message ts) → the variation and which of its messages that is, for the batch's events."""
        by_channel: dict[str, set[str]] = {}
        for event in events:
            by_channel.setdefault(event.channel_id, set()).add(event.message_ts)
        where: dict[tuple[str, str], tuple[Generation, str]] = {}
        for channel_id, stamps in by_channel.items():
            for generation in repo.generations.by_messages(channel_id, stamps):
                if generation.message_ts in stamps:
                    where[(channel_id, generation.message_ts)] = (generation, MESSAGE)
                if generation.clip_ts in stamps:
                    where[(channel_id, generation.clip_ts)] = (generation, CLIP)
        return where

    @staticmethod
    def _lock_rounds(
        repo: Repo,
        events: Sequence[ReactionEvent],
        where: dict[tuple[str, str], tuple[Generation, str]],
    ) -> dict[int, _RoundState]:
        """Lock every round the batch votes in (in id order, as every writer of votes does: no deadlock), and
        read what applying needs once per round."""
        voters: dict[int, set[str]] = {}
        for event in events:
            found = where.get((event.channel_id, event.message_ts))
            if found is not None:
                voters.setdefault(found[0].round_id, set()).add(event.user_id)
        states: dict[int, _RoundState] = {}
        for round_id in sorted(voters):
            round_row = repo.rounds.get_for_update(round_id)
            assert round_row is not None
            rules = rules_of(round_row)
            generations = list(repo.generations.in_round(round_id))
            rows = {
                (v.generation_id, v.user_id, v.emoji, v.source): v
                for v in repo.votes.of_users(round_id, voters[round_id])
            }
            states[round_id] = _RoundState(
                row=round_row,
                rules=rules,
                numbers={g.id: g.number for g in generations if g.id is not None},
                generations=generations,
                rows=rows,
            )
        return states

    def _apply(
        self,
        repo: Repo,
        state: _RoundState,
        event: ReactionEvent,
        generation: Generation,
        source: str,
        *,
        now: datetime,
    ) -> str | None:
        """One event under the round's rules; returns what its voter should be told, if anything."""
        assert generation.id is not None and state.row.id is not None
        name, user_id, active = event.emoji, event.user_id, event.active
        if name in votes.CANCEL_EMOJI or name not in state.rules.names:
            return None
        if state.rules.blind:  # a reaction shows everyone who chose what: in a blind round it is no vote
            return BLIND_NOTE.format(number=generation.number) if active else None
        if state.row.status != RoundStatus.OPEN.value:
            return closed_note(repo, state.row) if active else None
        if active and user_id == state.row.owner_id and not state.rules.owner_votes:
            return OWNER_NOTE
        before = self._vote_of(state, user_id)
        key = (generation.id, user_id, name, source)
        row = state.rows.get(key)
        if row is None:
            row = Vote(
                round_id=state.row.id,
                generation_id=generation.id,
                user_id=user_id,
                emoji=name,
                source=source,
                active=active,
                event_ts=event.event_ts,
                created_at=now,
            )
            repo.votes.add(row)
            state.rows[key] = row
            changed = active
        else:
            changed = apply_event(row, active=active, event_ts=event.event_ts)
            repo.votes.add(row)
        after = self._vote_of(state, user_id)
        if before == after:
            return None  # the same emoji on the variation's other message, or an event older than the row's
        state.touched |= before | after
        if changed:
            self.meter.vote("added" if active else "removed")
        if (
            changed
            and active
            and before
            and after
            and not state.rules.multi
            and self._first_move(state, user_id)
        ):
            return (
                f"Your vote moved from {numbers_text(before, state.generations)} to "
                f"{numbers_text(after, state.generations)}: one vote per person in this round, and your latest "
                "reaction is the one that counts (the others stay in Slack). I'll say this once per round."
            )
        return None

    def _first_move(self, state: _RoundState, user_id: str) -> bool:
        """Whether this is the first move of this person's vote in this round that this process has seen: the
        note is said once, not at every move (and not at Slack's pace for a burst of them)."""
        key = (state.row.id or 0, user_id)
        if key in self._told_moved:
            return False
        if len(self._told_moved) >= 50_000:
            self._told_moved.clear()
        self._told_moved.add(key)
        return True

    @staticmethod
    def _vote_of(state: _RoundState, user_id: str) -> frozenset[int]:
        """The variations this person's vote counts for now, from the batch's rows."""
        records = [
            votes.VoteRecord(generation_id=r.generation_id, user_id=user, emoji=r.emoji, event_ts=r.event_ts)
            for (_, user, _, _), r in state.rows.items()
            if user == user_id and r.active
        ]
        return _counted_vote(records, state.rules, state.row.owner_id, state.numbers, user_id)

    def _after(self, batch: _Batch) -> None:
        """After a batch's commit: a quorum reached closes its round; the outbox sends the new tallies when they
        are due (at most once a second per message: the ticker is woken for that time, not for every batch)."""
        for round_id in sorted(batch.changed_rounds):
            try:
                self.rounds.close_at_quorum(round_id)
            except Exception:  # the sweep closes it at its deadline anyway; never lose the batch over it
                log.exception("closing round %s at its quorum failed", round_id)
        if batch.due is not None:
            self.wake_at(batch.due)

    def _look_up_clips(self, learn: dict[str, list[str]]) -> None:
        for channel_id, event_ids in learn.items():
            self.rounds.learn_clip_messages(channel_id)
            self._looked_up.update(event_ids)
        if len(self._looked_up) > 10 * BATCH:
            self._looked_up.clear()

    def _set_aside_first(self) -> None:
        with self.store.transaction() as repo:
            first = list(repo.reactions.pending(limit=1))
            repo.reactions.mark_applied([e.id for e in first if e.id is not None], now=self.clock.now())
        self._limit = BATCH

    def _tell(self, note: Note) -> None:
        try:
            self.publisher.tell_user(note.channel_id, note.user_id, note.text)
        except Exception as err:  # a private note is a courtesy: the vote stands without it
            log.warning("could not tell %s about their vote: %s", note.user_id, err)


def _held_vote(repo: Repo, round_row: Round, generations: list[Generation], user_id: str) -> frozenset[int]:
    """The variations this person's vote counts for now, from the database."""
    assert round_row.id is not None
    numbers = {g.id: g.number for g in generations if g.id is not None}
    records = vote_records(repo, round_row.id, user_id=user_id)
    return _counted_vote(records, rules_of(round_row), round_row.owner_id, numbers, user_id)


def _counted_vote(
    records: list[votes.VoteRecord],
    rules: votes.VoteRules,
    owner_id: str,
    numbers: dict[int, int],
    user_id: str,
) -> frozenset[int]:
    """What one person's held rows count for under the round's rules (one vote per round: the latest)."""
    counted = votes.counted(records, numbers=numbers, rules=rules, owner_id=owner_id)
    return counted.get(user_id, frozenset())


def _ballot_note(
    vote: frozenset[int],
    generations: list[Generation],
    *,
    moved_from: list[int] | None = None,
    taken_back: int | None = None,
) -> str:
    """What a blind round's voter is told privately after a click."""
    said = f"Your vote for #{taken_back} is taken back. " if taken_back is not None else ""
    if vote:
        said += f"Your vote is on {numbers_text(vote, generations)}"
        if moved_from:
            said += f" (moved from {numbers_text(set(moved_from), generations)})"
        said += ". Only you can see this; click the same button again to take it back."
    elif taken_back is None:
        said += "You have no vote in this round yet."
    else:
        said += "You have no vote in this round now."
    return said.strip()

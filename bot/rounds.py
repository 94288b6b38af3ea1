"""Rounds: start one from a draft (or the next one in its thread, when work follows a close), record and remove
votes, reconcile them with Slack, close and announce.

Reactions are Slack's own record. Live tallies come from events; when the bot starts (open rounds) and when a
round closes, each variation's votes are set to what `reactions.get` reports, so a vote acknowledged but lost in
a crash, an event Slack never delivered, and a removal that arrived before its add all end as Slack shows them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot import prompts, records, votes
from bot.channels import Channels
from bot.domain import (
    CloseReason,
    Conversation,
    GenerationKind,
    JobStatus,
    PromptSpec,
    RoundStatus,
    Severity,
    ThreadRef,
)
from bot.drafts import Drafts
from bot.errors import InvalidInput, NotAllowed, NotFound, NotInvited, PublishError
from bot.patterns import Patterns
from bot.ports import Clock, Publisher
from bot.posting import Posting
from bot.tuning import MAX_VARIATIONS, MIN_VARIATIONS, CoreSettings
from bot.views import (
    DraftCard,
    Outcome,
    RoundView,
    StatusReport,
    round_tally,
    round_view,
    rules_of,
    thread_rounds,
)
from storage.models import Draft, Generation, Round
from storage.store import Repo, Store
from storage.votes import CLIP, MESSAGE

log = logging.getLogger(__name__)

MAX_PICK_REASON = 400  # `pick #2 <reason>`: kept and shown, like a remix's change
OWNER_NOTE = "You started this round, and this channel's rules don't count the owner's vote."


@dataclass(frozen=True)
class RoundExport:
    round_id: int
    filename: str
    size: int


@dataclass(frozen=True)
class WorkRound:
    """Where new work in a thread goes: the thread's open round, or the next round, opened for it."""

    round: Round  # locked for the caller's transaction
    earlier: tuple[int, ...]  # the thread's other rounds: the new variation is numbered after theirs
    opened: bool  # the round was opened now, to follow the thread's closed (or tied) latest round

    @property
    def place(self) -> int:
        """Its place in the thread (1: the round that started it)."""
        return len(self.earlier) + 1


@dataclass(frozen=True)
class RoundStarted:
    round_id: int
    card: DraftCard
    thread_ts: str | None  # the parent message, when Slack has taken it already


class Rounds:
    def __init__(
        self,
        *,
        store: Store,
        drafts: Drafts,
        channels: Channels,
        patterns: Patterns,
        posting: Posting,
        publisher: Publisher,
        clock: Clock,
        settings: CoreSettings,
    ) -> None:
        self.store = store
        self.drafts = drafts
        self.channels = channels
        self.patterns = patterns
        self.posting = posting
        self.publisher = publisher
        self.clock = clock
        self.settings = settings
        self.wake: Callable[[], None] = lambda: None  # the ticker's, once wired: new jobs are due now

    # --- start --------------------------------------------------------------------------------

    def start_round(self, draft_id: int, *, actor: str) -> RoundStarted:
        """Turn an open draft into a round: its variations queued, its messages asked of the outbox.

        Slack is asked first whether the bot is in the channel (nothing is charged where nobody would see the
        clips) and whether the channel is private (its winners are then recalled only there)."""
        with self.store.read() as repo:
            channel_id = self.drafts.owned(repo, draft_id, actor).channel_id
        conversation = self._conversation(channel_id)
        if not conversation.member:
            raise NotInvited(
                "I'm not in this channel, so nothing was generated and nothing was charged.",
                hint="Invite me with `/invite @sora` (or the channel's Integrations tab), then press Generate again.",
            )
        with self.store.transaction() as repo:
            draft = self.drafts.owned(repo, draft_id, actor)
            card = self.drafts.card_for(draft)
            if card.blocked:
                first = next(f for f in card.safety if f.severity is Severity.ERROR)
                raise InvalidInput(
                    f"Nothing was submitted: the safety check blocks this draft ({first.rule}). {first.message}",
                    hint=f"Try: “{first.safer}” (use Edit).",
                )
            if not repo.drafts.submit(draft_id):
                raise InvalidInput("This draft was already generated or cancelled.")
            round_id, generation_ids = self._open_round(
                repo, draft, actor=actor, private=conversation.private
            )
            self.posting.round_started(repo, round_id, generation_ids)
            draft.status = "submitted"
            card = self.drafts.card_for(draft)
        self.posting.deliver_soon(round_id)
        self.wake()
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            thread_ts = round_row.thread if round_row else None
        return RoundStarted(round_id=round_id, card=card, thread_ts=thread_ts)

    def _conversation(self, channel_id: str) -> Conversation:
        try:
            return self.publisher.conversation(channel_id)
        except PublishError as err:
            log.warning("Slack could not describe %s (%s); treating it as private", channel_id, err)
            return Conversation.unknown(channel_id)

    def _open_round(self, repo: Repo, draft: Draft, *, actor: str, private: bool) -> tuple[int, list[int]]:
        """The round, its charge and its variations (distinct seeds; when the draft explores a layer, each
        variation its own value of that layer), in the caller's transaction."""
        spec = PromptSpec.from_dict(draft.spec)
        count = max(MIN_VARIATIONS, min(MAX_VARIATIONS, draft.variations))
        defaults = self.channels.defaults_in(repo, draft.channel_id)
        rules = defaults.rules  # copied: a settings change later leaves this round's rules alone
        total, _ = self.channels.estimate(
            draft.provider, draft.model, seconds=draft.seconds, variations=count
        )
        now = self.clock.now()
        round_row = repo.rounds.insert(
            Round(
                draft_id=draft.id or 0,
                team_id=draft.team_id,
                channel_id=draft.channel_id,
                owner_id=actor,
                title=spec.subject or draft.idea[:80],
                closes_at=now + timedelta(minutes=rules.minutes),
                blind=rules.blind,
                rules=rules.as_dict(),
                private=private,
                estimated_cost=total,
                created_at=now,
            )
        )
        assert round_row.id is not None
        self.channels.charge(
            repo,
            defaults,
            team_id=draft.team_id,
            user_id=actor,
            amount=total,
            round_id=round_row.id,
            provider=draft.provider,
            model=draft.model,
            seconds=draft.seconds * count,
        )
        layer = prompts.parse_explore(draft.explore) if draft.explore else None
        specs = prompts.explore(spec, layer, count) if layer else (spec,) * count
        ids = []
        for seed, variation in zip(distinct_seeds(count), specs, strict=True):
            row = repo.generations.add_to_round(
                Generation(
                    round_id=round_row.id,
                    number=0,
                    kind=GenerationKind.CREATE.value,
                    requested_by=actor,
                    spec=variation.as_dict() if layer else draft.spec,
                    prompt=prompts.render(variation, seconds=draft.seconds),
                    seconds=draft.seconds,
                    aspect=draft.aspect,
                    provider=draft.provider,
                    model=draft.model,
                    reference_path=draft.reference_path,
                    seed=seed,
                    charged=total / count,
                    created_at=now,
                )
            )
            assert row.id is not None
            ids.append(row.id)
        return round_row.id, ids

    def round_for_work(self, repo: Repo, round_id: int) -> WorkRound:
        """In the caller's transaction: the round new work in `round_id`'s thread goes into, locked. The thread's
        latest round while it is open; once it has closed (or tied), the next round, opened now to follow it:
        an announced winner is never taken back, and the next vote never mixes with the last one's."""
        row = repo.rounds.get(round_id)
        if row is None or row.id is None:
            raise NotFound("That round no longer exists.")
        latest = repo.rounds.get_for_update(thread_rounds(repo, row)[-1].id or row.id)
        assert latest is not None and latest.id is not None
        # PostgreSQL: a round another transaction opened while this one waited for the lock shows now.
        while (following := repo.rounds.following(latest.id)) is not None and following.id is not None:
            latest = repo.rounds.get_for_update(following.id)
            assert latest is not None and latest.id is not None
        latest_id = latest.id
        assert latest_id is not None
        earlier = tuple(r.id for r in thread_rounds(repo, latest) if r.id is not None and r.id != latest_id)
        if latest.status == RoundStatus.OPEN.value:
            return WorkRound(round=latest, earlier=earlier, opened=False)
        opened = self._follow(repo, latest)
        return WorkRound(round=opened, earlier=(*earlier, latest_id), opened=True)

    def _follow(self, repo: Repo, previous: Round) -> Round:
        """The next round of `previous`'s thread: the same draft, owner, title and privacy, the previous round's
        own rules (not the channel's of today), its own deadline; its message a reply in the thread."""
        assert previous.id is not None
        thread = previous.thread
        if thread is None:
            raise InvalidInput("This round's message is not in Slack yet; try again in a moment.")
        rules = rules_of(previous)
        now = self.clock.now()
        row = repo.rounds.insert(
            Round(
                draft_id=previous.draft_id,
                team_id=previous.team_id,
                channel_id=previous.channel_id,
                owner_id=previous.owner_id,  # the thread's owner keeps the owner's powers
                title=previous.title,
                thread_ts=thread,
                previous_id=previous.id,
                closes_at=now + timedelta(minutes=rules.minutes),
                blind=rules.blind,
                rules=previous.rules,
                private=previous.private,
                estimated_cost=0.0,
                created_at=now,
            )
        )
        assert row.id is not None
        self.posting.round_followed(repo, row.id, previous_id=previous.id)
        log.info("round %s follows round %s in its thread", row.id, previous.id)
        locked = repo.rounds.get_for_update(row.id)
        assert locked is not None
        return locked

    def close_at_quorum(self, round_id: int) -> bool:
        """Close the round once as many people as its quorum have voted (a replica racing it closes it once)."""
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            if round_row is None or round_row.status != RoundStatus.OPEN.value:
                return False
            quorum = rules_of(round_row).quorum
            if quorum is None or round_tally(repo, round_row).voters < quorum:
                return False
        return self._close(round_id, actor=None, why=CloseReason.QUORUM).done

    def learn_clip_messages(
        self, channel_id: str, pending: Sequence[tuple[int | None, str | None, str | None]] | None = None
    ) -> None:
        """Ask Slack (`files.info`) where clips were shared whose own message was not known when they were
        uploaded: a reaction on the video is a vote for its variation. `pending`: (generation, file, the thread
        it was shared in: its round's, which for a round that follows another is the first round's); by default
        the channel's newest clips without a message."""
        if pending is None:
            with self.store.read() as repo:
                pending = [
                    (g.id, g.clip_file_id, r.thread)
                    for g in repo.generations.clips_without_message(channel_id)
                    if (r := repo.rounds.get(g.round_id)) is not None and r.thread
                ]
        learnt: dict[int, str] = {}
        for generation_id, file_id, thread_ts in pending:
            if generation_id is None or not file_id or not thread_ts:
                continue
            try:
                ts = self.publisher.file_message(ThreadRef(channel_id, thread_ts), file_id)
            except PublishError as err:
                log.warning("could not ask Slack where clip %s was shared: %s", file_id, err)
                continue
            if ts:
                learnt[generation_id] = ts
        if learnt:
            with self.store.transaction() as repo:
                for generation_id, ts in learnt.items():
                    repo.generations.set_clip(generation_id, file_id=None, ts=ts)

    def reconcile_votes(self, round_id: int) -> int:
        """Set the round's votes to Slack's reactions on each variation message; returns how many changed.

        A blind round is left alone: its votes are buttons, and reactions there are no votes."""
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            if round_row is None or round_row.status != RoundStatus.OPEN.value:
                return 0
            rules = rules_of(round_row)
            if rules.blind:
                return 0
            generations = list(repo.generations.in_round(round_id))
        unshared = [
            (g.id, g.clip_file_id, round_row.thread) for g in generations if g.clip_file_id and not g.clip_ts
        ]
        if unshared:
            self.learn_clip_messages(round_row.channel_id, unshared)
            with self.store.read() as repo:
                generations = list(repo.generations.in_round(round_id))
        held: dict[int, set[tuple[str, str, str]]] = {}
        allowed = rules.names
        for generation in generations:
            if generation.id is None or not generation.message_ts:
                continue
            pairs: set[tuple[str, str, str]] = set()
            for ts, source in ((generation.message_ts, MESSAGE), (generation.clip_ts, CLIP)):
                if not ts:
                    continue
                reactions = self.publisher.reactions(round_row.channel_id, ts)
                pairs |= {
                    (user, votes.normalise_emoji(name), source)
                    for name, users in reactions.items()
                    if votes.normalise_emoji(name) in allowed
                    for user in users
                }
            held[generation.id] = pairs
        changed_ids = []
        with self.store.transaction() as repo:
            # The round's lock first, as a vote and a close take it: rows of `vote` are written only under it,
            # so this never waits on a vote that waits on this (a deadlock PostgreSQL would end with an error).
            repo.rounds.get_for_update(round_id)
            for generation_id, pairs in held.items():
                if repo.votes.reconcile(
                    round_id=round_id,
                    generation_id=generation_id,
                    held=pairs,
                    now=self.clock.now(),
                    skip_emoji={votes.BALLOT},
                ):
                    changed_ids.append(generation_id)
            if changed_ids:
                touched = changed_ids if rules.multi else list(held)
                self.posting.votes_changed(repo, round_id, touched)
        if changed_ids:
            log.info("round %s: votes on %s reconciled with Slack", round_id, changed_ids)
            self.posting.deliver_soon(round_id)
        return len(changed_ids)

    def reconcile_open_rounds(self) -> int:
        """At start-up: votes Slack holds that a crash or a lost event kept from us, for every open round; and a
        quorum reached just before a crash closes the round now."""
        with self.store.read() as repo:
            round_ids = [r.id for r in repo.rounds.open_rounds() if r.id is not None]
        changed = 0
        for round_id in round_ids:
            try:
                changed += self.reconcile_votes(round_id)
            except PublishError as err:
                log.warning("could not reconcile round %s with Slack yet: %s", round_id, err)
            self.close_at_quorum(round_id)
        return changed

    # --- close --------------------------------------------------------------------------------

    def close_round(
        self,
        round_id: int,
        *,
        actor: str,
        pick: int | None = None,
        reason: str | None = None,
        tie_only: bool = False,
    ) -> Outcome:
        """The owner closes the round (*Close voting*), or picks #N (`pick #N [reason]`, or a tie's button:
        `tie_only`: a tie's button, which only ever settles that tie): count votes, save the winner, announce
        it. Closes once."""
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            if round_row is None:
                raise NotFound("That round no longer exists.")
            if actor != round_row.owner_id:
                what = "pick its winner" if pick is not None else "close it"
                raise NotAllowed(f"Only the person who started this round can {what}.")
            tied = round_row.status == RoundStatus.TIED.value
        reason = " ".join(reason.split())[:MAX_PICK_REASON] if reason else None
        if tie_only and not tied:
            return Outcome(False, "That tie is over; this round's messages show where it stands.")
        if tied:
            if pick is None:
                return Outcome(
                    False, "Voting has ended in a tie: pick the winner with a button or `pick #N`."
                )
            return self._settle_tie(round_id, actor=actor, pick=pick, reason=reason)
        why = CloseReason.PICK if pick is not None else CloseReason.OWNER
        return self._close(round_id, actor=actor, why=why, pick=pick, reason=reason)

    def close_due(self) -> int:
        """Close every open round past its deadline, and settle every tie whose owner's time is over (the
        earliest tied variation wins); returns how many this call closed or tied."""
        with self.store.read() as repo:
            due = [(r.id, r.status) for r in repo.rounds.due(self.clock.now()) if r.id is not None]
        done = 0
        for round_id, status in due:
            if status == RoundStatus.TIED.value:
                done += self._settle_tie(round_id, actor=None).done
            else:
                done += self._close(round_id, actor=None, why=CloseReason.DEADLINE).done
        return done

    def _close(
        self,
        round_id: int,
        *,
        actor: str | None,
        why: CloseReason,
        pick: int | None = None,
        reason: str | None = None,
    ) -> Outcome:
        """End the vote. A tie with no pick waits for the owner (`tie_minutes`), unless the rules give no time."""
        try:
            self.reconcile_votes(round_id)  # the announced tally is Slack's, not only what events told us
        except PublishError as err:
            log.warning("closing round %s on the votes we have; Slack could not be asked: %s", round_id, err)
        with self.store.transaction() as repo:
            round_row = repo.rounds.get_for_update(round_id)
            if round_row is None or round_row.id is None:
                raise NotFound("That round no longer exists.")
            if round_row.status != RoundStatus.OPEN.value:
                return Outcome(False, "This round is already closed.")
            generations = list(repo.generations.in_round(round_id))
            tally = round_tally(repo, round_row, generations)
            rules = rules_of(round_row)
            winner_id = tally.winner.generation_id if tally.winner else None
            ended = why
            if pick is not None:
                winner_id = _picked(generations, pick).id
            elif tally.tie:
                now = self.clock.now()
                if rules.tie_minutes > 0:
                    until = now + timedelta(minutes=rules.tie_minutes)
                    if not repo.rounds.tie(round_id, now=now, until=until, actor=actor, reason=why.value):
                        return Outcome(False, "This round is already closed.")
                    self.posting.round_tied(repo, round_id, close_number=round_row.closes + 1)
                    ended = CloseReason.TIE
                else:
                    ended = CloseReason.TIE_RULE
            if ended is not CloseReason.TIE:
                if not repo.rounds.close(
                    round_id,
                    now=self.clock.now(),
                    actor=actor,
                    winner_generation_id=winner_id,
                    reason=ended.value,
                    pick_reason=reason,
                ):
                    return Outcome(False, "This round is already closed.")
                self._finish(repo, round_id, winner_id, generations, tally)
        self.posting.deliver_soon(round_id)
        return Outcome(True)

    def _settle_tie(
        self, round_id: int, *, actor: str | None, pick: int | None = None, reason: str | None = None
    ) -> Outcome:
        """A tied round ends: the owner's pick, or (`actor` None, their time is over) the earliest tied variation."""
        with self.store.transaction() as repo:
            round_row = repo.rounds.get_for_update(round_id)
            if round_row is None or round_row.id is None:
                raise NotFound("That round no longer exists.")
            if round_row.status != RoundStatus.TIED.value:
                return Outcome(False, closed_note(repo, round_row))
            generations = list(repo.generations.in_round(round_id))
            tally = round_tally(repo, round_row, generations)  # frozen since the tie: no vote lands now
            if pick is None:
                winner_id = tally.winner.generation_id if tally.winner else None
                ended = CloseReason.TIE_RULE
            else:
                picked = _picked(generations, pick)
                winner_id = picked.id
                ended = CloseReason.TIE_PICK if picked.number in tally.tied else CloseReason.PICK
            if not repo.rounds.close(
                round_id,
                now=self.clock.now(),
                actor=actor,
                winner_generation_id=winner_id,
                reason=ended.value,
                pick_reason=reason,
                tied=True,
            ):
                return Outcome(False, "This round is already closed.")
            self._finish(repo, round_id, winner_id, generations, tally)
        self.posting.deliver_soon(round_id)
        return Outcome(True)

    def _finish(
        self,
        repo: Repo,
        round_id: int,
        winner_id: int | None,
        generations: list[Generation],
        tally: votes.RoundTally,
    ) -> None:
        """In the close's transaction: keep the winner as a pattern, ask for the announcement and the updates."""
        round_row = repo.rounds.get_for_update(round_id)
        assert round_row is not None
        if winner_id is not None:
            self.patterns.save_winner(repo, round_row, winner_id, generations, tally)
        self.posting.round_closed(repo, round_id, close_number=round_row.closes)
        following = repo.rounds.following(round_id)  # a tie's next round says how this one ended
        if following is not None and following.id is not None:
            self.posting.round_changed(repo, following.id)

    # --- reading --------------------------------------------------------------------------------

    def export_round(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        round_id: int | None,
        fmt: records.ExportFormat,
    ) -> RoundExport:
        """`/sora export [id] [md|csv|json]`: the round's decision record as a file, sent to the asker alone.

        A private round (private channel, DM) exports only when asked in its own conversation; a blind round's
        record carries counts only. Raises: NotFound, NotAllowed."""
        with self.store.read() as repo:
            if round_id is None:
                round_row = repo.rounds.latest_in_channel(channel_id)
                if round_row is None:
                    raise NotFound("No round has run in this channel yet.", hint="`/sora export <round id>`.")
            else:
                round_row = repo.rounds.get(round_id)
                if round_row is None or (team_id and round_row.team_id and round_row.team_id != team_id):
                    raise NotFound(f"There is no round {round_id}.")
            if round_row.private and round_row.channel_id != channel_id:
                raise NotAllowed(
                    f"Round {round_row.id} ran in a private conversation: export it from there.",
                )
            record = records.decision_record(repo, round_row)
        content = records.export(record, fmt)
        filename = records.export_filename(record, fmt)
        self.publisher.send_file_to_user(
            user_id,
            content=content,
            filename=filename,
            title=f"Round {record.round_id}: decision record",
            comment=f"The decision record of round {record.round_id} ({fmt.name.lower()}), as you asked.",
        )
        return RoundExport(round_id=record.round_id, filename=filename, size=len(content))

    def round_view(self, round_id: int) -> RoundView:
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            if round_row is None:
                raise NotFound("That round no longer exists.")
            return round_view(repo, round_row)

    def status(
        self, *, channel_id: str, user_id: str, providers: tuple[str, ...], default: str
    ) -> StatusReport:
        with self.store.read() as repo:
            counts = repo.generations.count_active(channel_id=channel_id, user_id=user_id)
            open_rounds = repo.rounds.count_open(channel_id)
        running = [JobStatus.SUBMITTING.value, JobStatus.IN_PROGRESS.value]
        return StatusReport(
            providers=providers,
            default_provider=default,
            queued=counts.get(JobStatus.QUEUED.value, (0, 0))[0],
            running=sum(counts.get(s, (0, 0))[0] for s in running),
            mine=sum(mine for _, mine in counts.values()),
            open_rounds=open_rounds,
        )


def distinct_seeds(count: int) -> list[int]:
    """Seeds for the variations of one round: random, and never two alike."""
    seeds: set[int] = set()
    while len(seeds) < count:
        seeds.add(secrets.randbelow(2**31 - 1) + 1)
    return sorted(seeds)


def numbers_hint(generations: list[Generation], *, where: str = "round") -> str:
    if not generations:
        return f"This {where} has no variations yet."
    return f"This {where} has " + ", ".join(f"#{g.number}" for g in generations) + "."


def _picked(generations: list[Generation], number: int) -> Generation:
    picked = next((g for g in generations if g.number == number), None)
    if picked is None or picked.id is None:
        raise NotFound(f"There is no variation #{number} in this round.", hint=numbers_hint(generations))
    return picked


def numbers_text(generation_ids: frozenset[int] | set[int], generations: list[Generation]) -> str:
    return " and ".join(f"#{g.number}" for g in generations if g.id in generation_ids) or "nothing"


def closed_note(repo: Repo, round_row: Round) -> str:
    if round_row.status == RoundStatus.TIED.value:
        return (
            "Voting on this round has ended in a tie, and its owner is picking the winner; "
            "your vote was not counted."
        )
    winner = _winner_number(repo, round_row)
    said = f" #{winner} won." if winner else ""
    return f"Voting on this round has closed; your vote was not counted.{said}"


def _winner_number(repo: Repo, round_row: Round) -> int | None:
    if round_row.winner_generation_id is None:
        return None
    winner = repo.generations.get(round_row.winner_generation_id)
    return winner.number if winner else None

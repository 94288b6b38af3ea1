"""Rounds: start one from a draft, record and remove votes, reconcile them with Slack, close and announce.

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

from bot import prompts, votes
from bot.channels import Channels
from bot.domain import Conversation, GenerationKind, JobStatus, PromptSpec, RoundStatus, Severity, ThreadRef
from bot.drafts import Drafts
from bot.errors import InvalidInput, NotAllowed, NotFound, NotInvited, PublishError
from bot.patterns import Patterns
from bot.ports import Clock, Publisher
from bot.posting import Posting
from bot.tuning import MAX_VARIATIONS, MIN_VARIATIONS, CoreSettings
from bot.views import DraftCard, Outcome, RoundView, StatusReport, round_tally, round_view
from storage.models import Draft, Generation, Round
from storage.store import Repo, Store

log = logging.getLogger(__name__)


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
        self.posting.deliver(round_id)
        self.wake()
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            thread_ts = round_row.parent_ts if round_row else None
        return RoundStarted(round_id=round_id, card=card, thread_ts=thread_ts)

    def _conversation(self, channel_id: str) -> Conversation:
        try:
            return self.publisher.conversation(channel_id)
        except PublishError as err:
            log.warning("Slack could not describe %s (%s); treating it as private", channel_id, err)
            return Conversation.unknown(channel_id)

    def _open_round(self, repo: Repo, draft: Draft, *, actor: str, private: bool) -> tuple[int, list[int]]:
        """The round, its charge and its variations (distinct seeds), in the caller's transaction."""
        spec = PromptSpec.from_dict(draft.spec)
        count = max(MIN_VARIATIONS, min(MAX_VARIATIONS, draft.variations))
        defaults = self.channels.defaults_in(repo, draft.channel_id)
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
                closes_at=now + timedelta(minutes=defaults.vote_minutes),
                blind=defaults.blind,
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
        seeds = distinct_seeds(count)
        ids = []
        for seed in seeds:
            row = repo.generations.add_to_round(
                Generation(
                    round_id=round_row.id,
                    number=0,
                    kind=GenerationKind.CREATE.value,
                    requested_by=actor,
                    spec=draft.spec,
                    prompt=prompts.render(spec, seconds=draft.seconds),
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

    # --- votes --------------------------------------------------------------------------------

    def record_vote(
        self,
        *,
        channel_id: str,
        message_ts: str,
        user_id: str,
        emoji: str,
        event_ts: str = "",
        on_bot_message: bool = True,
    ) -> Outcome:
        """A reaction on a variation: its message or its clip. Non-vote emoji and other messages are ignored on
        purpose. `on_bot_message`: whether the bot wrote the message (only then can it be an unmapped clip)."""
        return self._vote(
            channel_id,
            message_ts,
            user_id,
            emoji,
            event_ts=event_ts,
            active=True,
            on_bot_message=on_bot_message,
        )

    def remove_vote(
        self,
        *,
        channel_id: str,
        message_ts: str,
        user_id: str,
        emoji: str,
        event_ts: str = "",
        on_bot_message: bool = True,
    ) -> Outcome:
        return self._vote(
            channel_id,
            message_ts,
            user_id,
            emoji,
            event_ts=event_ts,
            active=False,
            on_bot_message=on_bot_message,
        )

    def _vote(
        self,
        channel_id: str,
        message_ts: str,
        user_id: str,
        emoji: str,
        *,
        event_ts: str,
        active: bool,
        on_bot_message: bool,
    ) -> Outcome:
        name = votes.normalise_emoji(emoji)
        if not votes.is_vote(name, allowed=self.settings.vote_emoji):
            return Outcome(False)
        variation = self._variation_at(channel_id, message_ts, learn=on_bot_message)
        if variation is None:
            return Outcome(False)
        if not active and self._still_held(channel_id, variation, message_ts, user_id, name):
            return Outcome(False)
        return self._apply_vote(
            channel_id=channel_id,
            message_ts=message_ts,
            user_id=user_id,
            emoji=name,
            event_ts=event_ts,
            active=active,
        )

    def _apply_vote(
        self, *, channel_id: str, message_ts: str, user_id: str, emoji: str, event_ts: str, active: bool
    ) -> Outcome:
        with self.store.transaction() as repo:
            generation = repo.generations.by_message(channel_id, message_ts)
            if generation is None or generation.id is None:
                return Outcome(False)
            round_row = repo.rounds.get(generation.round_id)
            assert round_row is not None and round_row.id is not None
            if round_row.status != RoundStatus.OPEN.value:
                if not active:
                    return Outcome(False)
                winner = _winner_number(repo, round_row)
                said = f" #{winner} won." if winner else ""
                return Outcome(False, f"Voting on this round has closed; your vote was not counted.{said}")
            changed = repo.votes.record(
                round_id=round_row.id,
                generation_id=generation.id,
                user_id=user_id,
                emoji=emoji,
                active=active,
                event_ts=event_ts,
                now=self.clock.now(),
            )
            if changed:
                self.posting.votes_changed(repo, round_row.id, [generation.id])
            round_id = round_row.id
        if changed:
            self.posting.deliver(round_id)
        return Outcome(changed)

    # A variation is two messages in Slack: its own and its clip's (Slack shares an upload as a message of its
    # own). A reaction on either is a vote for it, and one person's emoji counts once: the vote row is per
    # (variation, person, emoji), and a removal counts only once the emoji is gone from both.

    def _variation_at(self, channel_id: str, message_ts: str, *, learn: bool) -> Generation | None:
        """The variation whose message or clip `message_ts` is. A clip whose message Slack had not shared yet
        when it was uploaded is looked up now (`files.info`), once, when a reaction lands on a bot message."""
        with self.store.read() as repo:
            found = repo.generations.by_message(channel_id, message_ts)
            if found is not None or not learn:
                return found
            pending = [
                (g.id, g.clip_file_id, r.parent_ts)
                for g in repo.generations.clips_without_message(channel_id)
                if (r := repo.rounds.get(g.round_id)) is not None and r.parent_ts
            ]
        if not pending:
            return None
        self._learn_clip_messages(channel_id, pending)
        with self.store.read() as repo:
            return repo.generations.by_message(channel_id, message_ts)

    def _learn_clip_messages(
        self, channel_id: str, pending: Sequence[tuple[int | None, str | None, str | None]]
    ) -> None:
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

    def _still_held(
        self, channel_id: str, variation: Generation, message_ts: str, user_id: str, emoji: str
    ) -> bool:
        """Whether `user_id` still holds `emoji` on the variation's other message (its clip, or its message)."""
        other = variation.clip_ts if message_ts == variation.message_ts else variation.message_ts
        if not other or other == message_ts:
            return False
        try:
            reactions = self.publisher.reactions(channel_id, other)
        except PublishError as err:  # the close reconciles with Slack anyway
            log.warning("could not read the reactions on %s: %s", other, err)
            return False
        return any(
            votes.normalise_emoji(name) == emoji and user_id in users for name, users in reactions.items()
        )

    def reconcile_votes(self, round_id: int) -> int:
        """Set the round's votes to Slack's reactions on each variation message; returns how many changed."""
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            if round_row is None:
                return 0
            generations = list(repo.generations.in_round(round_id))
        unshared = [
            (g.id, g.clip_file_id, round_row.parent_ts)
            for g in generations
            if g.clip_file_id and not g.clip_ts
        ]
        if unshared:
            self._learn_clip_messages(round_row.channel_id, unshared)
            with self.store.read() as repo:
                generations = list(repo.generations.in_round(round_id))
        held: dict[int, set[tuple[str, str]]] = {}
        allowed = {votes.normalise_emoji(e) for e in self.settings.vote_emoji}
        for generation in generations:
            if generation.id is None or not generation.message_ts:
                continue
            pairs: set[tuple[str, str]] = set()
            for ts in filter(None, (generation.message_ts, generation.clip_ts)):
                reactions = self.publisher.reactions(round_row.channel_id, ts)
                pairs |= {
                    (user, votes.normalise_emoji(name))
                    for name, users in reactions.items()
                    if votes.normalise_emoji(name) in allowed
                    for user in users
                }
            held[generation.id] = pairs
        changed_ids = []
        with self.store.transaction() as repo:
            for generation_id, pairs in held.items():
                if repo.votes.reconcile(
                    round_id=round_id, generation_id=generation_id, held=pairs, now=self.clock.now()
                ):
                    changed_ids.append(generation_id)
            if changed_ids:
                self.posting.votes_changed(repo, round_id, changed_ids)
        if changed_ids:
            log.info("round %s: votes on %s reconciled with Slack", round_id, changed_ids)
            self.posting.deliver(round_id)
        return len(changed_ids)

    def reconcile_open_rounds(self) -> int:
        """At start-up: votes Slack holds that a crash or a lost event kept from us, for every open round."""
        with self.store.read() as repo:
            round_ids = [r.id for r in repo.rounds.open_rounds() if r.id is not None]
        changed = 0
        for round_id in round_ids:
            try:
                changed += self.reconcile_votes(round_id)
            except PublishError as err:
                log.warning("could not reconcile round %s with Slack yet: %s", round_id, err)
        return changed

    # --- close --------------------------------------------------------------------------------

    def close_round(self, round_id: int, *, actor: str, pick: int | None = None) -> Outcome:
        """The owner closes the round (or picks #N): count votes, save the winner, announce it. Closes once."""
        with self.store.read() as repo:
            round_row = repo.rounds.get(round_id)
            if round_row is None:
                raise NotFound("That round no longer exists.")
            if actor != round_row.owner_id:
                raise NotAllowed("Only the person who started this round can close it.")
        return self._close(round_id, actor=actor, pick=pick)

    def close_due(self) -> int:
        """Close every open round past its deadline; returns how many this call closed."""
        with self.store.read() as repo:
            due = [r.id for r in repo.rounds.due(self.clock.now()) if r.id is not None]
        return sum(1 for round_id in due if self._close(round_id, actor=None).done)

    def _close(self, round_id: int, *, actor: str | None, pick: int | None = None) -> Outcome:
        """`actor` None is the deadline."""
        try:
            self.reconcile_votes(round_id)  # the announced tally is Slack's, not only what events told us
        except PublishError as err:
            log.warning("closing round %s on the votes we have; Slack could not be asked: %s", round_id, err)
        with self.store.transaction() as repo:
            round_row = repo.rounds.get_for_update(round_id)
            if round_row is None or round_row.id is None:
                raise NotFound("That round no longer exists.")
            generations = list(repo.generations.in_round(round_id))
            tally = round_tally(repo, round_row, generations)
            winner_id = tally.winner.generation_id if tally.winner else None
            if pick is not None:
                picked = next((g for g in generations if g.number == pick), None)
                if picked is None:
                    raise NotFound(
                        f"There is no variation #{pick} in this round.", hint=numbers_hint(generations)
                    )
                winner_id = picked.id
            if not repo.rounds.close(
                round_id, now=self.clock.now(), actor=actor, winner_generation_id=winner_id
            ):
                return Outcome(False, "This round is already closed.")
            round_row = repo.rounds.get_for_update(round_id)
            assert round_row is not None
            if winner_id is not None:
                self.patterns.save_winner(repo, round_row, winner_id, generations, tally)
            self.posting.round_closed(repo, round_id, close_number=round_row.closes)
        self.posting.deliver(round_id)
        return Outcome(True)

    # --- reading --------------------------------------------------------------------------------

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


def numbers_hint(generations: list[Generation]) -> str:
    if not generations:
        return "This round has no variations yet."
    return "This round has " + ", ".join(f"#{g.number}" for g in generations) + "."


def _winner_number(repo: Repo, round_row: Round) -> int | None:
    if round_row.winner_generation_id is None:
        return None
    winner = repo.generations.get(round_row.winner_generation_id)
    return winner.number if winner else None

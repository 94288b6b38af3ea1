"""What the Slack edge renders, built from rows: the draft card, round and variation views, pattern cards, status.

Views are plain frozen dataclasses; the builders here are the one place rows become what a person sees, so the
outbox can render a message from the rows at the moment it sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot import prompts, votes
from bot.domain import (
    Aspect,
    Finding,
    GenerationKind,
    JobStatus,
    PromptSpec,
    RoundStatus,
    Severity,
)
from bot.safety import SafetyFinding
from storage.models import Draft, Generation, Pattern, Round
from storage.store import Repo


@dataclass(frozen=True)
class Outcome:
    """What happened to a user's action; `message` (if any) is told to that user only."""

    done: bool
    message: str | None = None


@dataclass(frozen=True)
class DraftCard:
    """Everything the draft card shows: layers, checklist, safety, settings, estimate."""

    draft_id: int
    idea: str
    spec: PromptSpec
    findings: tuple[Finding, ...]
    score: int
    goal: prompts.Goal | None
    aspect: Aspect
    seconds: int
    variations: int
    provider: str
    model: str | None
    estimated_cost: float
    estimate_summary: str
    filled: tuple[str, ...]
    prompt: str
    safety: tuple[SafetyFinding, ...] = ()
    notes: tuple[str, ...] = ()
    has_reference: bool = False
    status: str = "open"
    explore: prompts.Explore | None = None  # None: the round re-rolls one prompt

    @property
    def blocked(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.safety)


@dataclass(frozen=True)
class PatternCard:
    pattern_id: int
    title: str
    prompt: str
    spec: PromptSpec
    winner_number: int
    votes: int
    voters: int
    rounds_closed_at: str
    settings: dict[str, object]
    rhythm: tuple[dict[str, object], ...]
    saved_by: str | None = None  # saved with *Save* by this person; None: the round's winner
    round_place: int = 1  # the round's place in its thread: a later round's winner is a later version


@dataclass(frozen=True)
class StatusReport:
    providers: tuple[str, ...]
    default_provider: str
    queued: int
    running: int
    mine: int
    open_rounds: int


@dataclass(frozen=True)
class ChannelDefaults:
    channel_id: str
    provider: str
    model: str | None
    goal: prompts.Goal | None
    vote_minutes: int
    blind: bool
    daily_budget: float | None
    spent_today: float
    vote_emoji: frozenset[str] = votes.VOTE_EMOJI
    multi: bool = False
    owner_votes: bool = True
    quorum: int | None = None
    tie_minutes: int = votes.DEFAULT_TIE_MINUTES

    @property
    def rules(self) -> votes.VoteRules:
        """The voting rules a round started here now copies."""
        return votes.VoteRules(
            emoji=self.vote_emoji,
            multi=self.multi,
            owner_votes=self.owner_votes,
            minutes=self.vote_minutes,
            quorum=self.quorum,
            blind=self.blind,
            tie_minutes=self.tie_minutes,
        )


@dataclass(frozen=True)
class VariationView:
    """Everything a variation message shows. `votes` is None while a blind round is open."""

    round_id: int
    generation_id: int
    number: int
    kind: GenerationKind
    prompt: str
    status: JobStatus
    progress: int
    seconds: int
    aspect: Aspect
    provider: str
    parent_number: int | None = None
    change: str | None = None
    error: str | None = None
    votes: int | None = None
    vote_button: bool = False  # a blind round, open, and this clip is ready: votes are cast with a button
    is_winner: bool = False
    queue_position: int | None = None
    changed: tuple[
        str, ...
    ] = ()  # the prompt layers that differ from the parent's (a remix should change one)
    diff: tuple[prompts.LayerChange, ...] = ()  # those layers, before and after
    # What the clip is long in seconds: measured once it is finished, else what was asked (a recut's cut, an
    # extension joined to its source). `seconds` stays what the provider was asked for.
    length: float = 0.0
    round_open: bool = True
    # An exploring round's layer and this variation's value of it; `drafted`: the value the draft had.
    varies: prompts.LayerChange | None = None
    drafted: bool = False


@dataclass(frozen=True)
class RoundView:
    """Everything the round's parent message and its winner announcement show."""

    round_id: int
    channel_id: str
    owner_id: str
    title: str
    status: RoundStatus
    closes_at_epoch: int
    blind: bool
    estimated_cost: float
    variations: tuple[VariationView, ...]
    winner_number: int | None = None
    voters: int = 0
    rules: votes.VoteRules = field(default_factory=votes.VoteRules)
    tied: tuple[int, ...] = ()  # the variations level at the top, when the vote ended in a tie
    tie_votes: int = 0
    close_reason: str | None = None  # deadline | quorum | owner | pick | tie_pick | tie_rule
    pick_reason: str | None = None
    closed_by: str | None = None
    # The uploaded still of the winner (this close), once Slack has it: the round message shows it by its id.
    winner_still_file_id: str | None = None
    # Rounds follow each other in a thread: this one's place (1 started the thread), the round it follows and
    # how that one ended, and the place of the round that follows it, once one has opened.
    place: int = 1
    previous: PreviousRound | None = None
    next_place: int | None = None


@dataclass(frozen=True)
class PreviousRound:
    """The round a following round follows, as its message shows it."""

    place: int
    status: RoundStatus
    winner_number: int | None = None


def winner_still_key(round_id: int, close_number: int) -> str:
    """The outbox key of a close's still of the winner (the round message shows the file once it is sent)."""
    return f"round-{round_id}/close-{close_number}/still"


def draft_card(row: Draft, *, estimated_cost: float, estimate_summary: str) -> DraftCard:
    assert row.id is not None
    spec = PromptSpec.from_dict(row.spec)
    findings = tuple(finding_from(f) for f in row.findings)
    return DraftCard(
        draft_id=row.id,
        idea=row.idea,
        spec=spec,
        findings=findings,
        score=prompts.score(findings),
        goal=prompts.Goal(row.goal) if row.goal else None,
        explore=prompts.parse_explore(row.explore) if row.explore else None,
        aspect=Aspect(row.aspect),
        seconds=row.seconds,
        variations=row.variations,
        provider=row.provider,
        model=row.model,
        estimated_cost=estimated_cost,
        estimate_summary=estimate_summary,
        filled=tuple(row.filled),
        prompt=prompts.render(spec, seconds=row.seconds),
        safety=tuple(
            SafetyFinding(
                rule=str(f["rule"]),
                message=str(f["message"]),
                safer=str(f["safer"]),
                severity=Severity(str(f["severity"])),
                term=str(f.get("term", "")),
            )
            for f in row.safety
        ),
        notes=tuple(row.notes),
        has_reference=row.reference_path is not None,
        status=row.status,
    )


def finding_dict(finding: Finding) -> dict[str, str]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": finding.message,
        "fix": finding.fix,
    }


def finding_from(data: dict[str, object]) -> Finding:
    return Finding(
        rule=str(data["rule"]),
        severity=Severity(str(data["severity"])),
        message=str(data["message"]),
        fix=str(data["fix"]),
    )


def rules_of(round_row: Round) -> votes.VoteRules:
    """The rules the round started with; a round from before rules were stored keeps the ones it ran under."""
    legacy = votes.VoteRules(multi=True, blind=round_row.blind)
    return votes.VoteRules.from_dict(round_row.rules, legacy=legacy)


def vote_records(repo: Repo, round_id: int, *, user_id: str | None = None) -> list[votes.VoteRecord]:
    return [
        votes.VoteRecord(generation_id=generation_id, user_id=user, emoji=emoji, event_ts=event_ts)
        for generation_id, user, emoji, event_ts in repo.votes.active_in_round(round_id, user_id=user_id)
    ]


def thread_rounds(repo: Repo, round_row: Round) -> list[Round]:
    """Every round of the round's thread, first to latest (only itself while its message is not posted)."""
    thread = round_row.thread
    return list(repo.rounds.in_thread(round_row.channel_id, thread)) if thread else [round_row]


def thread_generations(repo: Repo, rounds: Sequence[Round]) -> list[Generation]:
    """The variations of a thread's rounds, by number: `#5` names one of them, whichever round holds it."""
    rows = [g for r in rounds if r.id is not None for g in repo.generations.in_round(r.id)]
    return sorted(rows, key=lambda g: g.number)


def with_ancestors(repo: Repo, generations: Sequence[Generation]) -> dict[int | None, Generation]:
    """The variations by id, with every variation they come from, also those of earlier rounds in the thread
    (a remix in round 2 of round 1's #2 names #2): lineage reads across rounds."""
    known: dict[int | None, Generation] = {g.id: g for g in generations}
    missing = {g.parent_id for g in generations if g.parent_id and g.parent_id not in known}
    while missing:
        found = [row for pid in missing if pid is not None and (row := repo.generations.get(pid)) is not None]
        known |= {g.id: g for g in found}
        missing = {g.parent_id for g in found if g.parent_id and g.parent_id not in known}
    return known


def _winner_number(repo: Repo, round_row: Round) -> int | None:
    if round_row.winner_generation_id is None or round_row.status != RoundStatus.CLOSED.value:
        return None
    winner = repo.generations.get(round_row.winner_generation_id)
    return winner.number if winner else None


def _thread_place(repo: Repo, round_row: Round) -> tuple[int, PreviousRound | None, int | None]:
    """The round's place in its thread, the round it follows, and the place of the one following it."""
    assert round_row.id is not None
    following = repo.rounds.following(round_row.id)
    if round_row.previous_id is None:
        return 1, None, 2 if following is not None else None
    ids = [r.id for r in thread_rounds(repo, round_row)]
    place = ids.index(round_row.id) + 1 if round_row.id in ids else 2
    before = repo.rounds.get(round_row.previous_id)
    previous = (
        PreviousRound(
            place=ids.index(before.id) + 1 if before.id in ids else place - 1,
            status=RoundStatus(before.status),
            winner_number=_winner_number(repo, before),
        )
        if before is not None
        else None
    )
    return place, previous, place + 1 if following is not None else None


def round_tally(
    repo: Repo, round_row: Round, generations: list[Generation] | None = None
) -> votes.RoundTally:
    """The round's votes counted under its own rules."""
    assert round_row.id is not None
    rows = generations if generations is not None else list(repo.generations.in_round(round_row.id))
    numbers = {g.id: g.number for g in rows if g.id is not None}
    return votes.tally(
        vote_records(repo, round_row.id),
        numbers=numbers,
        rules=rules_of(round_row),
        owner_id=round_row.owner_id,
    )


def round_view(repo: Repo, round_row: Round) -> RoundView:
    """The round as its parent message, its variation messages and its announcement show it now."""
    assert round_row.id is not None
    generations = list(repo.generations.in_round(round_row.id))
    tally = round_tally(repo, round_row, generations)
    counts = {t.generation_id: t.votes for t in tally.tallies}
    is_open = round_row.status == RoundStatus.OPEN.value
    rules = rules_of(round_row)
    hide = rules.blind and is_open  # a blind round shows only how many have voted until voting ends
    by_id = with_ancestors(repo, generations)  # a remix of an earlier round's variation names it
    numbers = {i: g.number for i, g in by_id.items()}
    specs = {i: g.spec for i, g in by_id.items()}
    # A place in the provider's line, across every round waiting on it, not just this one.
    explored = _explored(generations)
    place = {
        g.id: repo.generations.queued_ahead(g.provider, g.id or 0) + 1
        for g in generations
        if g.status == JobStatus.QUEUED.value
    }
    variations = tuple(
        VariationView(
            round_id=round_row.id,
            generation_id=g.id or 0,
            number=g.number,
            kind=GenerationKind(g.kind),
            prompt=g.prompt,
            status=JobStatus(g.status),
            progress=g.progress,
            seconds=g.seconds,
            aspect=Aspect(g.aspect),
            provider=g.provider,
            parent_number=numbers.get(g.parent_id) if g.parent_id else None,
            change=g.change,
            error=g.error,
            votes=None if hide else counts.get(g.id or 0, 0),
            vote_button=hide and g.status == JobStatus.COMPLETED.value,
            is_winner=not is_open and g.id == round_row.winner_generation_id,
            queue_position=place.get(g.id),
            changed=prompts.changed_layers(
                PromptSpec.from_dict(specs[g.parent_id]), PromptSpec.from_dict(g.spec)
            )
            if g.parent_id in specs
            else (),
            diff=prompts.layer_diff(PromptSpec.from_dict(specs[g.parent_id]), PromptSpec.from_dict(g.spec))
            if g.parent_id in specs and g.kind == GenerationKind.REMIX.value
            else (),
            length=clip_length(g, by_id.get(g.parent_id) if g.parent_id else None),
            round_open=is_open,
            varies=explored.get(g.id or 0),
            drafted=g.id == next(iter(explored), None),
        )
        for g in generations
    )
    winner_number = numbers.get(round_row.winner_generation_id) if round_row.winner_generation_id else None
    in_thread, previous, next_place = _thread_place(repo, round_row)
    return RoundView(
        round_id=round_row.id,
        channel_id=round_row.channel_id,
        owner_id=round_row.owner_id,
        title=round_row.title,
        status=RoundStatus(round_row.status),
        closes_at_epoch=int(round_row.closes_at.timestamp()),
        blind=rules.blind,
        estimated_cost=round_row.estimated_cost,
        variations=variations,
        winner_number=None if is_open else winner_number,
        voters=tally.voters,
        rules=rules,
        tied=() if is_open else tally.tied,
        tie_votes=tally.winner.votes if tally.tie and tally.winner and not is_open else 0,
        close_reason=None if is_open else round_row.close_reason,
        pick_reason=None if is_open else round_row.pick_reason,
        closed_by=None if is_open else round_row.closed_by,
        winner_still_file_id=_still_file(repo, round_row)
        if round_row.status == RoundStatus.CLOSED.value
        else None,
        place=in_thread,
        previous=previous,
        next_place=next_place,
    )


def _still_file(repo: Repo, round_row: Round) -> str | None:
    assert round_row.id is not None
    row = repo.outbox.by_key(winner_still_key(round_row.id, round_row.closes))
    return row.file_id if row is not None and row.state == "sent" and row.file_id else None


def _explored(generations: Sequence[Generation]) -> dict[int, prompts.LayerChange]:
    """The round's first variations, by id, with the layer they vary and their value of it: the round explored
    that layer when they differ from the first on that layer alone. Remixes and later additions are not part."""
    firsts = [g for g in generations if g.parent_id is None and g.kind == GenerationKind.CREATE.value]
    specs = [PromptSpec.from_dict(g.spec) for g in firsts]
    layer = prompts.explored_layer(specs)
    if layer is None:
        return {}
    drafted = str(getattr(specs[0], layer))
    return {
        g.id or 0: prompts.LayerChange(layer=layer, before=drafted, after=str(getattr(s, layer)))
        for g, s in zip(firsts, specs, strict=True)
    }


def clip_length(generation: Generation, parent: Generation | None) -> float:
    """The clip's length in seconds: probed when it is finished, else what it will be."""
    if generation.clip_seconds:
        return generation.clip_seconds
    kind = generation.kind
    if (
        kind == GenerationKind.RECUT.value
        and generation.edit_start is not None
        and generation.edit_end is not None
    ):
        return generation.edit_end - generation.edit_start
    if kind == GenerationKind.EXTEND.value and parent is not None:
        return (parent.clip_seconds or parent.seconds) + generation.seconds
    if kind == GenerationKind.LOOP.value and parent is not None:
        return parent.clip_seconds or parent.seconds
    return float(generation.seconds)


def pattern_card(pattern: Pattern) -> PatternCard:
    assert pattern.id is not None
    outcome = pattern.outcome
    return PatternCard(
        pattern_id=pattern.id,
        title=pattern.title,
        prompt=pattern.prompt,
        spec=PromptSpec.from_dict(pattern.spec),
        winner_number=int(outcome.get("winner_number", 0)),
        votes=int(outcome.get("votes", 0)),
        voters=int(outcome.get("voters", 0)),
        rounds_closed_at=pattern.created_at.strftime("%Y-%m-%d"),
        settings=dict(pattern.settings),
        rhythm=tuple(pattern.rhythm),
        saved_by=pattern.saved_by,
        round_place=int(outcome.get("round", 1)),
    )

"""Patterns: a round's winner (or a variation someone saved) kept with its prompt, rhythm, settings, outcome and
lineage; `/sora recall`."""

from __future__ import annotations

from collections.abc import Sequence

from bot import votes
from bot.domain import JobStatus, PromptSpec
from bot.errors import InvalidInput, NotFound
from bot.ports import Clock
from bot.views import Outcome, PatternCard, pattern_card, round_tally, thread_rounds, with_ancestors
from storage.models import Generation, Pattern, Round
from storage.store import Repo, Store


class Patterns:
    def __init__(self, *, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def save_winner(
        self,
        repo: Repo,
        round_row: Round,
        winner_id: int,
        generations: Sequence[Generation],
        tally: votes.RoundTally,
    ) -> None:
        """Keep what won, inside the close's transaction. Every close is its own decision: the next round in the
        thread (work after a close opens one) adds a new version of the pattern when it closes, and the earlier
        one stays as it was."""
        assert round_row.id is not None
        winner = next(g for g in generations if g.id == winner_id)
        pattern = self._new(round_row, winner)
        _fill(pattern, winner, generations, tally, known=with_ancestors(repo, generations))
        ids = [r.id for r in thread_rounds(repo, round_row)]
        pattern.outcome |= {
            "round": ids.index(round_row.id) + 1
            if round_row.id in ids
            else 1,  # the version: its place in the thread
            "follows": round_row.previous_id,
            "close": round_row.closes,
            "tied": list(tally.tied),
            "closed_by": round_row.closed_by,
            "close_reason": round_row.close_reason,
            "reason": round_row.pick_reason,
        }
        repo.patterns.save(pattern)

    def save_variation(self, generation_id: int, *, actor: str) -> Outcome:
        """*Save*: keep one finished variation as a pattern now, without closing its round. Once per
        variation: the row says who saved it."""
        with self.store.transaction() as repo:
            generation = repo.generations.get(generation_id)
            if generation is None or generation.id is None:
                raise NotFound("That variation no longer exists.")
            round_row = repo.rounds.get_for_update(generation.round_id)  # one save at a time per round
            if round_row is None or round_row.id is None:
                raise NotFound("That round no longer exists.")
            if generation.status != JobStatus.COMPLETED.value:
                raise InvalidInput(
                    f"#{generation.number} has no finished clip yet; save it once it is posted."
                )
            if repo.patterns.saved(generation.id) is not None:
                return Outcome(False, f"#{generation.number} is already saved as a pattern.")
            generations = list(repo.generations.in_round(round_row.id))
            pattern = self._new(round_row, generation)
            pattern.saved_by = actor
            _fill(
                pattern,
                generation,
                generations,
                round_tally(repo, round_row, generations),
                known=with_ancestors(repo, generations),
            )
            pattern.outcome["saved_by"] = actor
            repo.patterns.save(pattern)
        return Outcome(
            True,
            f"Saved #{generation.number} as a pattern; the round stays open. "
            "Find it again with `/sora recall <words>`.",
        )

    def _new(self, round_row: Round, generation: Generation) -> Pattern:
        assert round_row.id is not None and generation.id is not None
        return Pattern(
            team_id=round_row.team_id,
            channel_id=round_row.channel_id,
            round_id=round_row.id,
            generation_id=generation.id,
            title=round_row.title,
            prompt=generation.prompt,
            private=round_row.private,
            created_at=self.clock.now(),
        )

    def recall(self, *, team_id: str, channel_id: str, query: str, limit: int = 3) -> list[PatternCard]:
        """Winners of this workspace that may be shown in `channel_id`: those saved in public channels, and
        those saved in this very conversation (a private channel's winners never leave it)."""
        if not query.strip():
            raise InvalidInput("Recall needs something to look for.", hint="Try `/sora recall neon robot`.")
        with self.store.read() as repo:
            hits = repo.patterns.search(team_id, query, visible_in=channel_id, limit=limit)
            return [pattern_card(hit.pattern) for hit in hits]


def _fill(
    pattern: Pattern,
    chosen: Generation,
    generations: Sequence[Generation],
    tally: votes.RoundTally,
    *,
    known: dict[int | None, Generation],
) -> None:
    """What a pattern keeps of a variation: prompt, rhythm, settings, how it did, where it came from (`known`:
    its round's variations and their ancestors, also in earlier rounds of the thread)."""
    spec = PromptSpec.from_dict(chosen.spec)
    chosen_tally = next((t for t in tally.tallies if t.generation_id == chosen.id), None)
    lineage = []
    cursor: Generation | None = chosen
    while cursor is not None:
        lineage.append(cursor.number)
        cursor = known.get(cursor.parent_id) if cursor.parent_id else None
    assert chosen.id is not None
    pattern.generation_id = chosen.id
    pattern.prompt = chosen.prompt
    pattern.spec = chosen.spec
    pattern.rhythm = [{"text": b.text, "start": b.start} for b in spec.beats]
    pattern.settings = {
        "seconds": chosen.seconds,
        "aspect": chosen.aspect,
        "provider": chosen.provider,
        "model": chosen.model,
        "kind": chosen.kind,
    }
    pattern.outcome = {
        "winner_number": chosen.number,
        "votes": chosen_tally.votes if chosen_tally else 0,
        "voters": tally.voters,
        "variations": len(generations),
        "tie": tally.tie,
    }
    pattern.lineage = lineage
    pattern.tags = " ".join(filter(None, [chosen.kind, chosen.aspect.replace(":", "x"), spec.camera]))

"""Patterns: a round's winner saved with its prompt, rhythm, settings, outcome and lineage; `/sora recall`."""

from __future__ import annotations

from collections.abc import Sequence

from bot import votes
from bot.domain import PromptSpec
from bot.errors import InvalidInput
from bot.ports import Clock
from bot.views import PatternCard, pattern_card
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
        """Keep what won, inside the close's transaction."""
        assert round_row.id is not None
        winner = next(g for g in generations if g.id == winner_id)
        spec = PromptSpec.from_dict(winner.spec)
        winner_tally = next((t for t in tally.tallies if t.generation_id == winner_id), None)
        lineage = []
        by_id = {g.id: g for g in generations}
        cursor: Generation | None = winner
        while cursor is not None:
            lineage.append(cursor.number)
            cursor = by_id.get(cursor.parent_id) if cursor.parent_id else None
        pattern = repo.patterns.for_round(round_row.id) or Pattern(
            team_id=round_row.team_id,
            channel_id=round_row.channel_id,
            round_id=round_row.id,
            generation_id=winner_id,
            title=round_row.title,
            prompt=winner.prompt,
            private=round_row.private,
            created_at=self.clock.now(),
        )
        pattern.generation_id = winner_id
        pattern.prompt = winner.prompt
        pattern.spec = winner.spec
        pattern.rhythm = [{"text": b.text, "start": b.start} for b in spec.beats]
        pattern.settings = {
            "seconds": winner.seconds,
            "aspect": winner.aspect,
            "provider": winner.provider,
            "model": winner.model,
            "kind": winner.kind,
        }
        pattern.outcome = {
            "winner_number": winner.number,
            "votes": winner_tally.votes if winner_tally else 0,
            "voters": tally.voters,
            "variations": len(generations),
            "tie": tally.tie,
            "tied": list(tally.tied),
            "closed_by": round_row.closed_by,
            "close_reason": round_row.close_reason,
            "reason": round_row.pick_reason,
        }
        pattern.lineage = lineage
        pattern.tags = " ".join(filter(None, [winner.kind, winner.aspect.replace(":", "x"), spec.camera]))
        repo.patterns.save(pattern)

    def recall(self, *, team_id: str, channel_id: str, query: str, limit: int = 3) -> list[PatternCard]:
        """Winners of this workspace that may be shown in `channel_id`: those saved in public channels, and
        those saved in this very conversation (a private channel's winners never leave it)."""
        if not query.strip():
            raise InvalidInput("Recall needs something to look for.", hint="Try `/sora recall neon robot`.")
        with self.store.read() as repo:
            hits = repo.patterns.search(team_id, query, visible_in=channel_id, limit=limit)
            return [pattern_card(hit.pattern) for hit in hits]

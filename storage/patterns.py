"""Pattern queries: saved winners and full-text search over them (FTS5 on SQLite, tsvector on PostgreSQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import col, select

from storage.models import Pattern
from storage.sql import Queries

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS pattern_fts USING fts5("
    "title, prompt, tags, content='pattern', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS pattern_fts_ai AFTER INSERT ON pattern BEGIN "
    "INSERT INTO pattern_fts(rowid, title, prompt, tags) VALUES (new.id, new.title, new.prompt, new.tags); END",
    "CREATE TRIGGER IF NOT EXISTS pattern_fts_ad AFTER DELETE ON pattern BEGIN "
    "INSERT INTO pattern_fts(pattern_fts, rowid, title, prompt, tags) "
    "VALUES ('delete', old.id, old.title, old.prompt, old.tags); END",
    "CREATE TRIGGER IF NOT EXISTS pattern_fts_au AFTER UPDATE ON pattern BEGIN "
    "INSERT INTO pattern_fts(pattern_fts, rowid, title, prompt, tags) "
    "VALUES ('delete', old.id, old.title, old.prompt, old.tags); "
    "INSERT INTO pattern_fts(rowid, title, prompt, tags) VALUES (new.id, new.title, new.prompt, new.tags); END",
]
_PG_DOCUMENT = (
    "to_tsvector('english', coalesce(title,'') || ' ' || coalesce(prompt,'') || ' ' || coalesce(tags,''))"
)
PG_SEARCH_INDEX = f"CREATE INDEX IF NOT EXISTS ix_pattern_search ON pattern USING gin (({_PG_DOCUMENT}))"

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class PatternHit:
    pattern: Pattern
    rank: float


class Patterns(Queries):
    def for_round(self, round_id: int) -> Pattern | None:
        """The round's winner (a variation someone saved with *Save* is a row of its own)."""
        statement = select(Pattern).where(Pattern.round_id == round_id, col(Pattern.saved_by).is_(None))
        return self.session.exec(statement).first()

    def saved(self, generation_id: int) -> Pattern | None:
        """The row *Save* made of this variation, if anyone saved it."""
        statement = select(Pattern).where(
            Pattern.generation_id == generation_id, col(Pattern.saved_by).is_not(None)
        )
        return self.session.exec(statement).first()

    def save(self, pattern: Pattern) -> Pattern:
        return self._insert(pattern)  # type: ignore[no-any-return]

    def search(self, team_id: str, query: str, *, visible_in: str, limit: int = 5) -> list[PatternHit]:
        """Full-text search over the team's saved winners that may be shown in the channel `visible_in`:
        public ones, and private ones saved there. User text is never parsed as query syntax."""
        words = _WORD.findall(query.lower())[:20]
        if not words:
            return []
        for joiner in (" AND ", " OR "):  # every word first; any word when that finds nothing
            hits = self._search(team_id, visible_in, words, joiner=joiner, limit=limit)
            if hits:
                return hits
        return []

    def _search(
        self, team_id: str, channel_id: str, words: list[str], *, joiner: str, limit: int
    ) -> list[PatternHit]:
        visible = {"team": team_id, "channel": channel_id, "limit": limit}
        if self.dialect == "postgresql":
            # websearch_to_tsquery never raises on user syntax; quoting each word keeps operators out.
            query = (" or " if joiner == " OR " else " ").join(f'"{w}"' for w in words)
            sql = text(
                f"SELECT id, ts_rank_cd({_PG_DOCUMENT}, q) AS rank FROM pattern, "
                "websearch_to_tsquery('english', :q) AS q "
                f"WHERE team_id = :team AND (NOT private OR channel_id = :channel) AND {_PG_DOCUMENT} @@ q "
                "ORDER BY rank DESC, id DESC LIMIT :limit"
            )
            rows = self.session.execute(sql, {"q": query, **visible}).all()
            ranked = [(int(r[0]), float(r[1])) for r in rows]
        else:
            match = joiner.join('"' + w.replace('"', '""') + '"' for w in words)
            sql = text(
                "SELECT pattern.id, bm25(pattern_fts, 5.0, 1.0, 2.0) AS rank FROM pattern_fts "
                "JOIN pattern ON pattern.id = pattern_fts.rowid "
                "WHERE pattern_fts MATCH :match AND pattern.team_id = :team "
                "AND (NOT pattern.private OR pattern.channel_id = :channel) ORDER BY rank, pattern.id DESC "
                "LIMIT :limit"
            )
            rows = self.session.execute(sql, {"match": match, **visible}).all()
            ranked = [(int(r[0]), -float(r[1])) for r in rows]
        hits = []
        for pattern_id, rank in ranked:
            pattern = self.session.get(Pattern, pattern_id)
            if pattern is not None:
                hits.append(PatternHit(pattern=pattern, rank=rank))
        return hits

"""A round's decision record: every variation with its votes, the winner and why, lineage and cost; and exports.

Built from rows, like every view, so the record posted in the thread and the file `/sora export` sends say the
same thing. A blind round's record carries counts only, never who voted for what: the ballots were secret.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from bot.domain import CloseReason, GenerationKind, RoundStatus
from bot.views import round_tally, rules_of, with_ancestors
from storage.models import Round
from storage.store import Repo


class ExportFormat(StrEnum):
    MARKDOWN = "md"
    CSV = "csv"
    JSON = "json"


FORMAT_WORDS: dict[str, ExportFormat] = {
    "md": ExportFormat.MARKDOWN,
    "markdown": ExportFormat.MARKDOWN,
    "csv": ExportFormat.CSV,
    "json": ExportFormat.JSON,
}


@dataclass(frozen=True)
class VariationRecord:
    number: int
    kind: str
    parent_number: int | None
    change: str | None
    status: str
    prompt: str
    provider: str
    seconds: int
    charged: float
    refunded: float
    votes: int | None  # None: a blind round still open (counts stay hidden until it closes)
    voters: tuple[str, ...]  # always empty in a blind round
    winner: bool


@dataclass(frozen=True)
class DecisionRecord:
    round_id: int
    title: str
    channel_id: str
    owner_id: str
    private: bool
    blind: bool
    status: str
    created_at: str
    closed_at: str | None
    closed_by: str | None
    close_reason: str | None
    pick_reason: str | None
    winner_number: int | None
    tied: tuple[int, ...]
    voters: int
    charged: float
    refunded: float
    variations: tuple[VariationRecord, ...]

    @property
    def net_cost(self) -> float:
        return round(self.charged - self.refunded, 6)

    def why(self) -> str:
        """How the round ended, in one sentence (no user text inside)."""
        if self.status == RoundStatus.OPEN.value:
            return "Voting is still open."
        if self.status == RoundStatus.TIED.value:
            return f"The vote ended in a tie ({_numbers(self.tied)}); the owner is picking the winner."
        if self.winner_number is None:
            return "Voting closed with no votes, so there is no winner."
        reason = self.close_reason
        tie = f" from a tie ({_numbers(self.tied)})" if self.tied else ""
        if reason == CloseReason.TIE_RULE:
            return f"A tie ({_numbers(self.tied)}) nobody broke in time: the earliest tied variation wins."
        if reason in (CloseReason.PICK, CloseReason.TIE_PICK):
            return f"Picked by the round's owner{tie}."
        if reason == CloseReason.QUORUM:
            return "Most votes when the quorum was reached."
        if reason == CloseReason.OWNER:
            return "Most votes when the owner closed voting."
        return "Most votes at the deadline."


def decision_record(repo: Repo, round_row: Round) -> DecisionRecord:
    """The round as it stands: after a close, what decided it; before, the votes so far (hidden when blind)."""
    assert round_row.id is not None
    generations = list(repo.generations.in_round(round_row.id))
    tally = round_tally(repo, round_row, generations)
    rules = rules_of(round_row)
    is_open = round_row.status == RoundStatus.OPEN.value
    numbers = {i: g.number for i, g in with_ancestors(repo, generations).items()}  # lineage across rounds
    by_id = {t.generation_id: t for t in tally.tallies}
    refunds = {g.id: repo.ledger.refunded(g.id) for g in generations if g.id is not None}
    variations = tuple(
        VariationRecord(
            number=g.number,
            kind=g.kind,
            parent_number=numbers.get(g.parent_id) if g.parent_id else None,
            change=g.change,
            status=g.status,
            prompt=g.prompt,
            provider=g.provider,
            seconds=g.seconds,
            charged=g.charged,
            refunded=refunds.get(g.id or 0, 0.0),
            votes=None if rules.blind and is_open else (by_id[g.id].votes if g.id in by_id else 0),
            voters=() if rules.blind or g.id not in by_id else by_id[g.id].voters,
            winner=not is_open and g.id == round_row.winner_generation_id,
        )
        for g in generations
    )
    charged, refunded = repo.ledger.round_costs(round_row.id)
    return DecisionRecord(
        round_id=round_row.id,
        title=round_row.title,
        channel_id=round_row.channel_id,
        owner_id=round_row.owner_id,
        private=round_row.private,
        blind=rules.blind,
        status=round_row.status,
        created_at=round_row.created_at.isoformat(),
        closed_at=round_row.closed_at.isoformat() if round_row.closed_at and not is_open else None,
        closed_by=None if is_open else round_row.closed_by,
        close_reason=None if is_open else round_row.close_reason,
        pick_reason=None if is_open else round_row.pick_reason,
        winner_number=None if is_open else numbers.get(round_row.winner_generation_id),
        tied=() if is_open else tally.tied,
        voters=tally.voters,
        charged=charged,
        refunded=refunded,
        variations=variations,
    )


def lineage(variation: VariationRecord) -> str:
    if variation.parent_number is not None:
        return f"{variation.kind} of #{variation.parent_number}"
    if variation.kind == GenerationKind.AGAIN.value:
        return "again of the round's prompt"
    return "from the draft"


# --- exports ------------------------------------------------------------------------------------


def export_filename(record: DecisionRecord, fmt: ExportFormat) -> str:
    return f"round-{record.round_id}-decision.{fmt.value}"


def export(record: DecisionRecord, fmt: ExportFormat) -> bytes:
    if fmt is ExportFormat.CSV:
        return as_csv(record).encode()
    if fmt is ExportFormat.JSON:
        return as_json(record).encode()
    return as_markdown(record).encode()


def as_json(record: DecisionRecord) -> str:
    data: dict[str, Any] = asdict(record)
    data["net_cost"] = record.net_cost
    data["why"] = record.why()
    for variation, source in zip(data["variations"], record.variations, strict=True):
        variation["voters"] = list(source.voters)
        variation["lineage"] = lineage(source)
    data["tied"] = list(record.tied)
    return json.dumps(data, ensure_ascii=False, indent=2)


CSV_COLUMNS = (
    "round_id",
    "number",
    "lineage",
    "change",
    "status",
    "votes",
    "voters",
    "winner",
    "charged",
    "refunded",
    "provider",
    "seconds",
    "prompt",
)


def as_csv(record: DecisionRecord) -> str:
    """One row per variation. Cells that a spreadsheet would run as a formula are quoted with a `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for v in record.variations:
        writer.writerow(
            [
                record.round_id,
                v.number,
                lineage(v),
                _cell(v.change or ""),
                v.status,
                "" if v.votes is None else v.votes,
                " ".join(v.voters),
                "yes" if v.winner else "",
                f"{v.charged:.2f}",
                f"{v.refunded:.2f}",
                _cell(v.provider),
                v.seconds,
                _cell(v.prompt),
            ]
        )
    return out.getvalue()


def as_markdown(record: DecisionRecord) -> str:
    lines = [
        f"# Round {record.round_id}: {_md(record.title)}",
        "",
        f"- Started by {record.owner_id} on {record.created_at}",
        f"- Status: {record.status}" + (f", closed {record.closed_at}" if record.closed_at else ""),
        f"- Winner: {'#' + str(record.winner_number) if record.winner_number else 'none'} — {record.why()}",
    ]
    if record.pick_reason:
        lines.append(f"- Reason given: {_md(record.pick_reason)}")
    lines.append(
        f"- Voters: {record.voters}"
        + (" (blind round: who voted for what is not recorded)" if record.blind else "")
    )
    lines.append(
        f"- Cost: ${record.net_cost:,.2f} (charged ${record.charged:,.2f}, refunded ${record.refunded:,.2f})"
    )
    lines += ["", "| # | lineage | votes | voters | status | prompt |", "|---|---|---|---|---|---|"]
    for v in record.variations:
        votes = "hidden" if v.votes is None else str(v.votes)
        mark = " (winner)" if v.winner else ""
        change = f": {_md(v.change)}" if v.change else ""
        lines.append(
            f"| #{v.number}{mark} | {lineage(v)}{change} | {votes} | {', '.join(v.voters)} | {v.status} "
            f"| {_md(v.prompt)} |"
        )
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _numbers(numbers: tuple[int, ...]) -> str:
    return " and ".join(f"#{n}" for n in numbers)

"""Votes: a round's rules, which reactions count, each person's vote under those rules, the tally and ties.

A vote row is what a person holds: a reaction Slack shows, or a blind round's button. The rules are applied
when counting, so the rows can stay exactly what Slack (or the button) says, in whatever order events came:
under one vote per round, a person's vote is their latest one still held — a new vote moves it, and taking the
newest back leaves the one before.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bot.domain import Tally
from storage.votes import ts_order  # Slack ts strings in order: the one parser the rows use too

VOTE_EMOJI: frozenset[str] = frozenset(
    {"+1", "thumbsup", "heart", "fire", "star", "white_check_mark", "raised_hands", "star-struck", "100"}
)

# Slack names one emoji several ways (`thumbsup` and `+1` are one reaction); votes compare canonical names.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "thumbsup": "+1",
        "thumbs_up": "+1",
        "thumbs-up": "+1",
        "-1": "thumbsdown",
        "thumbs_down": "thumbsdown",
        "red_heart": "heart",
        "heavy_check_mark": "white_check_mark",
        "white_heavy_check_mark": "white_check_mark",
        "star_struck": "star-struck",
        "hundred_points": "100",
        "raising_hands": "raised_hands",
    }
)
_SKIN_TONE = re.compile(r"::skin-tone-\d$")
# ❌ on a variation cancels it: never a vote.
CANCEL_EMOJI: frozenset[str] = frozenset({"x", "heavy_multiplication_x", "negative_squared_cross_mark"})
# A blind round's votes are buttons, stored with this name: no Slack emoji has parentheses in its name.
BALLOT = "(ballot)"
MAX_RULE_EMOJI = 10
DEFAULT_TIE_MINUTES = 10


def normalise_emoji(name: str) -> str:
    """The canonical name of a reaction: no colons, no skin tone, one spelling per emoji."""
    name = name.strip().strip(":").lower()
    name = _SKIN_TONE.sub("", name)
    return _ALIASES.get(name, name)


_SHOWN_FIRST = ("+1", "heart", "fire", "star", "white_check_mark", "raised_hands", "star-struck", "100")


def shown_order(emoji: Collection[str]) -> list[str]:
    """A set of vote emoji as people read it: one name per emoji, the familiar ones first."""
    names = {normalise_emoji(e) for e in emoji}
    first = [e for e in _SHOWN_FIRST if e in names]
    return first + sorted(names - set(first))


def is_vote(name: str, *, allowed: Collection[str] = VOTE_EMOJI) -> bool:
    return normalise_emoji(name) in {normalise_emoji(a) for a in allowed}


@functools.lru_cache(maxsize=256)
def _names(emoji: frozenset[str]) -> frozenset[str]:
    return frozenset(normalise_emoji(e) for e in emoji)


@dataclass(frozen=True)
class VoteRules:
    """A round's voting rules, copied from its channel when it starts (a later settings change leaves it be).

    `multi` False: one vote per person per round (a new vote moves it); True: one per variation.
    `quorum`: the round closes as soon as this many people have voted. `tie_minutes`: how long the owner has to
    break a tie before the earliest tied variation wins (0: at once).
    """

    emoji: frozenset[str] = VOTE_EMOJI
    multi: bool = False
    owner_votes: bool = True
    minutes: int = 30
    quorum: int | None = None
    blind: bool = False
    tie_minutes: int = DEFAULT_TIE_MINUTES

    def counts(self, emoji: str) -> bool:
        """Whether a reaction is a vote in this round (never in a blind one: there, buttons are the votes)."""
        return not self.blind and normalise_emoji(emoji) in self.names

    @property
    def names(self) -> frozenset[str]:
        """The vote emoji by their canonical names (worked out once per rules: a tally asks for every vote)."""
        return _names(self.emoji)

    def as_dict(self) -> dict[str, Any]:
        return {
            "emoji": sorted(self.emoji),
            "multi": self.multi,
            "owner_votes": self.owner_votes,
            "minutes": self.minutes,
            "quorum": self.quorum,
            "blind": self.blind,
            "tie_minutes": self.tie_minutes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, legacy: VoteRules) -> VoteRules:
        """A round's stored rules; a round from before rules were stored keeps the ones it ran under (`legacy`)."""
        if not data or not isinstance(data, Mapping):
            return legacy
        quorum = data.get("quorum")
        return cls(
            emoji=frozenset(str(e) for e in data.get("emoji") or legacy.emoji),
            multi=bool(data.get("multi", legacy.multi)),
            owner_votes=bool(data.get("owner_votes", legacy.owner_votes)),
            minutes=int(data.get("minutes", legacy.minutes)),
            quorum=int(quorum) if quorum else None,
            blind=bool(data.get("blind", legacy.blind)),
            tie_minutes=int(data.get("tie_minutes", legacy.tie_minutes)),
        )


@dataclass(frozen=True)
class VoteRecord:
    """One held vote: who reacted with what (or pressed a blind round's button) on which variation, and when."""

    generation_id: int
    user_id: str
    emoji: str
    event_ts: str = field(default="", compare=False)


def counted(
    votes: Iterable[VoteRecord],
    *,
    numbers: Mapping[int, int],
    rules: VoteRules,
    owner_id: str | None = None,
    ignore_users: Collection[str] = (),
) -> dict[str, frozenset[int]]:
    """Each voter's counted votes (generation ids) under `rules`.

    One vote per round: the vote held with the latest event ts (equal ts, e.g. both reconciled from Slack: the
    later variation). The owner counts only where the rules let them; `ignore_users` (bots) never do.
    """
    ignored = set(ignore_users)
    if owner_id is not None and not rules.owner_votes:
        ignored.add(owner_id)
    held: dict[str, list[VoteRecord]] = {}
    for vote in votes:
        if vote.generation_id not in numbers or vote.user_id in ignored:
            continue
        valid = vote.emoji == BALLOT if rules.blind else rules.counts(vote.emoji)
        if valid:
            held.setdefault(vote.user_id, []).append(vote)
    result: dict[str, frozenset[int]] = {}
    for user_id, records in held.items():
        if rules.multi:
            result[user_id] = frozenset(r.generation_id for r in records)
        else:
            latest = max(records, key=lambda r: (ts_order(r.event_ts), numbers[r.generation_id]))
            result[user_id] = frozenset({latest.generation_id})
    return result


@dataclass(frozen=True)
class RoundTally:
    """Every variation's votes (in number order), distinct voters, and the leader.

    `winner` is the leader, and in a tie the earliest tied variation (the stated rule once nobody picks);
    `tie` and `tied` let the round say it is a tie.
    """

    tallies: tuple[Tally, ...]
    voters: int
    winner: Tally | None
    tie: bool
    tied: tuple[int, ...]


def tally(
    votes: Iterable[VoteRecord],
    *,
    numbers: Mapping[int, int],
    allowed: Collection[str] = VOTE_EMOJI,
    ignore_users: Collection[str] = (),
    rules: VoteRules | None = None,
    owner_id: str | None = None,
) -> RoundTally:
    """Count votes for the variations in `numbers` (generation_id → variation number).

    Without `rules`, a person counts once per variation however many vote emoji they used (the `allowed` ones).
    With them, the round's rules decide (see `counted`). Reactions that are not votes, on generations outside
    the round, or by `ignore_users` (the bot itself) never count.
    """
    effective = rules or VoteRules(emoji=frozenset(allowed), multi=True)
    per_voter = counted(votes, numbers=numbers, rules=effective, owner_id=owner_id, ignore_users=ignore_users)
    voters_of: dict[int, set[str]] = {generation_id: set() for generation_id in numbers}
    for user_id, generation_ids in per_voter.items():
        for generation_id in generation_ids:
            voters_of[generation_id].add(user_id)

    tallies = tuple(
        Tally(
            generation_id=generation_id,
            number=numbers[generation_id],
            votes=len(voters),
            voters=tuple(sorted(voters)),
        )
        for generation_id, voters in sorted(voters_of.items(), key=lambda item: (numbers[item[0]], item[0]))
    )
    everyone: set[str] = set()
    for voters in voters_of.values():
        everyone |= voters
    top = max((t.votes for t in tallies), default=0)
    if top == 0:
        return RoundTally(tallies=tallies, voters=0, winner=None, tie=False, tied=())
    leaders = [t for t in tallies if t.votes == top]
    return RoundTally(
        tallies=tallies,
        voters=len(everyone),
        winner=leaders[0],
        tie=len(leaders) > 1,
        tied=tuple(t.number for t in leaders) if len(leaders) > 1 else (),
    )

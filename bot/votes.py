"""Votes: which reactions count, one person one vote per variation, the tally, the winner and the tie rule."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot.domain import Tally

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


def normalise_emoji(name: str) -> str:
    """The canonical name of a reaction: no colons, no skin tone, one spelling per emoji."""
    name = name.strip().strip(":").lower()
    name = _SKIN_TONE.sub("", name)
    return _ALIASES.get(name, name)


def is_vote(name: str, *, allowed: Collection[str] = VOTE_EMOJI) -> bool:
    return normalise_emoji(name) in {normalise_emoji(a) for a in allowed}


@dataclass(frozen=True)
class VoteRecord:
    """One stored reaction: who reacted with what on which variation."""

    generation_id: int
    user_id: str
    emoji: str


@dataclass(frozen=True)
class RoundTally:
    """Every variation's votes (in number order), distinct voters, and the winner.

    Ties go to the earliest variation number; `tie` and `tied` let the announcement say so.
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
) -> RoundTally:
    """Count votes for the variations in `numbers` (generation_id → variation number).

    A person counts once per variation however many vote emoji they used; reactions that are not votes,
    on generations outside the round, or by `ignore_users` (the bot itself) do not count.
    """
    allowed_names = {normalise_emoji(a) for a in allowed}
    ignored = set(ignore_users)
    voters_of: dict[int, set[str]] = {generation_id: set() for generation_id in numbers}
    for vote in votes:
        if vote.generation_id not in voters_of or vote.user_id in ignored:
            continue
        if normalise_emoji(vote.emoji) not in allowed_names:
            continue
        voters_of[vote.generation_id].add(vote.user_id)

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

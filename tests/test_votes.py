"""Unit tests for bot.votes: which reactions count, one vote per person per variation, winners and ties."""

from __future__ import annotations

from bot.domain import Tally
from bot.votes import VOTE_EMOJI, RoundTally, VoteRecord, is_vote, normalise_emoji, tally

# generation_id → variation number, deliberately not in the same order
NUMBERS = {30: 3, 10: 1, 20: 2}


def vote(generation_id: int, user_id: str, emoji: str = "+1") -> VoteRecord:
    return VoteRecord(generation_id=generation_id, user_id=user_id, emoji=emoji)


def test_normalise_emoji_maps_thumbsup_and_plus_one_to_one_name() -> None:
    assert normalise_emoji("thumbsup") == normalise_emoji("+1") == "+1"


def test_normalise_emoji_strips_skin_tones_and_colons() -> None:
    assert normalise_emoji("thumbsup::skin-tone-6") == "+1"
    assert normalise_emoji(":raised_hands::skin-tone-2:") == "raised_hands"
    assert normalise_emoji("Heart") == "heart"


def test_is_vote_accepts_the_default_vote_emoji_in_any_spelling() -> None:
    for name in VOTE_EMOJI:
        assert is_vote(name)
    assert is_vote("+1::skin-tone-3")
    assert is_vote("thumbsup")


def test_is_vote_rejects_other_reactions() -> None:
    assert not is_vote("x")
    assert not is_vote("thumbsdown")
    assert not is_vote("eyes")


def test_is_vote_uses_a_configured_set() -> None:
    assert is_vote("tada", allowed={"tada"})
    assert not is_vote("heart", allowed={"tada"})
    assert is_vote("+1", allowed={"thumbsup"})


def test_tally_lists_every_variation_in_number_order_including_zero_votes() -> None:
    result = tally([vote(20, "U1")], numbers=NUMBERS)
    assert [(t.number, t.generation_id, t.votes) for t in result.tallies] == [
        (1, 10, 0),
        (2, 20, 1),
        (3, 30, 0),
    ]


def test_tally_counts_one_person_once_per_variation_whatever_emoji_they_used() -> None:
    result = tally(
        [vote(20, "U1", "+1"), vote(20, "U1", "heart"), vote(20, "U1", "thumbsup"), vote(20, "U2", "fire")],
        numbers=NUMBERS,
    )
    assert result.tallies[1] == Tally(generation_id=20, number=2, votes=2, voters=("U1", "U2"))
    assert result.voters == 2


def test_tally_counts_skin_toned_votes_once() -> None:
    result = tally([vote(10, "U1", "+1::skin-tone-4"), vote(10, "U1", "thumbsup")], numbers=NUMBERS)
    assert result.tallies[0].votes == 1


def test_tally_lets_one_person_vote_for_several_variations() -> None:
    result = tally([vote(10, "U1"), vote(20, "U1")], numbers=NUMBERS)
    assert [t.votes for t in result.tallies] == [1, 1, 0]
    assert result.voters == 1


def test_tally_of_remaining_records_after_a_vote_is_removed() -> None:
    records = [vote(10, "U1"), vote(20, "U2"), vote(20, "U3")]
    before = tally(records, numbers=NUMBERS)
    after = tally([r for r in records if r != vote(20, "U3")], numbers=NUMBERS)
    assert before.winner is not None and before.winner.number == 2
    assert after.winner is not None and after.winner.number == 1
    assert after.tie and after.tied == (1, 2)


def test_tally_ignores_reactions_that_are_not_votes() -> None:
    result = tally([vote(10, "U1", "eyes"), vote(10, "U2", "x")], numbers=NUMBERS)
    assert result.winner is None
    assert result.voters == 0


def test_tally_ignores_votes_on_generations_outside_the_round() -> None:
    result = tally([vote(99, "U1"), vote(10, "U2")], numbers=NUMBERS)
    assert result.voters == 1
    assert sum(t.votes for t in result.tallies) == 1


def test_tally_ignores_the_bot_itself() -> None:
    result = tally([vote(10, "UBOT"), vote(20, "U1")], numbers=NUMBERS, ignore_users={"UBOT"})
    assert result.winner is not None and result.winner.number == 2
    assert result.voters == 1


def test_tally_with_a_custom_vote_set() -> None:
    result = tally([vote(10, "U1", "tada"), vote(20, "U2", "+1")], numbers=NUMBERS, allowed={"tada"})
    assert result.winner is not None and result.winner.number == 1


def test_tally_picks_the_variation_with_most_votes() -> None:
    result = tally([vote(30, "U1"), vote(30, "U2"), vote(10, "U3")], numbers=NUMBERS)
    assert result.winner == Tally(generation_id=30, number=3, votes=2, voters=("U1", "U2"))
    assert result.tie is False
    assert result.tied == ()
    assert result.voters == 3


def test_tally_tie_goes_to_the_earliest_variation_number_and_says_so() -> None:
    result = tally([vote(30, "U1"), vote(20, "U2"), vote(30, "U3"), vote(20, "U4")], numbers=NUMBERS)
    assert result.winner is not None and result.winner.number == 2
    assert result.tie is True
    assert result.tied == (2, 3)


def test_tally_with_zero_votes_has_no_winner() -> None:
    assert tally([], numbers=NUMBERS) == RoundTally(
        tallies=(
            Tally(generation_id=10, number=1, votes=0),
            Tally(generation_id=20, number=2, votes=0),
            Tally(generation_id=30, number=3, votes=0),
        ),
        voters=0,
        winner=None,
        tie=False,
        tied=(),
    )


def test_tally_of_an_empty_round_is_empty() -> None:
    assert tally([vote(1, "U1")], numbers={}) == RoundTally(
        tallies=(), voters=0, winner=None, tie=False, tied=()
    )

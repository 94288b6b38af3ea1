"""Unit tests for bot.storyboard: every spacing rule both ways, the timed prompt, rhythm, the modal's rows."""

from __future__ import annotations

import pytest

from bot.domain import Beat, Finding, Severity
from bot.storyboard import (
    RULES,
    BeatErrors,
    lint_beats,
    parse_beats,
    rhythm,
    spread,
)

STRONG = (
    "A small delivery robot rolls through a rain-soaked neon alley at night, puddles reflecting pink signs; "
    "slow dolly-in at robot height; shallow depth of field, soft film grain; 8-second product teaser."
)
GOOD = (
    Beat("the robot rolls into frame", 0.0),
    Beat("it stops at a puddle", 3.0),
    Beat("its sign lights up pink", 6.0),
)


def only(findings: tuple[Finding, ...], rule: str) -> Finding:
    (found,) = [f for f in findings if f.rule == rule]
    return found


def test_a_well_spaced_storyboard_has_no_findings() -> None:
    assert lint_beats(GOOD, seconds=8) == ()
    assert lint_beats((), seconds=8) == ()


def test_cards_closer_than_the_gap_warn_about_hard_cuts() -> None:
    beats = (Beat("the robot rolls in", 0.0), Beat("it stops", 1.0), Beat("its light blinks", 4.0))

    finding = only(lint_beats(beats, seconds=8), "beats_too_close")

    assert finding.severity is Severity.WARNING
    assert finding.message == "Cards 1 and 2 are 1 s apart; dense cards cause hard cuts."
    assert "at least 1.5 s" in finding.fix and "merge" in finding.fix
    assert "beats_too_close" not in {f.rule for f in lint_beats(beats, seconds=8, min_gap=1.0)}


def test_more_than_four_cards_is_too_many() -> None:
    five = tuple(Beat(f"moment {i}", i * 2.0) for i in range(5))

    assert only(lint_beats(five, seconds=12), "too_many_beats").severity is Severity.WARNING
    assert "too_many_beats" not in {f.rule for f in lint_beats(five[:4], seconds=12)}


def test_a_card_with_two_motions_asks_for_one_action_per_card() -> None:
    beats = (Beat("the robot rolls forward and spins around", 0.0), Beat("it stops", 4.0))

    finding = only(lint_beats(beats, seconds=8), "several_actions_in_a_beat")

    assert "card 1: rolls, spins" in finding.message and "only 'rolls'" in finding.fix
    assert "several_actions_in_a_beat" not in {f.rule for f in lint_beats(GOOD, seconds=8)}


def test_cards_entered_out_of_time_order_are_pointed_out() -> None:
    beats = (Beat("the robot rolls in", 0.0), Beat("it glows", 6.0), Beat("it stops", 3.0))

    finding = only(lint_beats(beats, seconds=8), "beats_out_of_order")

    assert finding.message.startswith("Card 3 starts before card 2")
    assert "beats_out_of_order" not in {
        f.rule for f in lint_beats(sorted(GOOD, key=lambda b: b.start), seconds=8)
    }


def test_a_card_at_or_after_the_end_never_plays_and_is_an_error() -> None:
    beats = (*GOOD, Beat("a logo fades in", 8.0))

    findings = lint_beats(beats, seconds=8)

    assert findings[0].rule == "beat_beyond_duration" and findings[0].severity is Severity.ERROR
    assert "Card 4 starts at or after the end of the 8-second clip" in findings[0].message
    assert "beat_beyond_duration" not in {f.rule for f in lint_beats(beats, seconds=10)}


def test_a_first_card_after_zero_warns_that_the_model_invents_an_opening() -> None:
    late = (Beat("the robot rolls in", 2.0), Beat("it stops", 5.0))

    finding = only(lint_beats(late, seconds=8), "first_beat_late")

    assert "starts at 2 s" in finding.message and "invents" in finding.message
    assert "first_beat_late" not in {f.rule for f in lint_beats(GOOD, seconds=8)}


def test_every_rule_is_listed_and_errors_come_first() -> None:
    messy = (
        Beat("it rolls and spins", 1.0),
        Beat("a", 0.5),
        Beat("b", 2.0),
        Beat("c", 3.0),
        Beat("d", 9.0),
    )

    findings = lint_beats(messy, seconds=8)

    assert {f.rule for f in findings} == set(RULES)
    assert findings[0].severity is Severity.ERROR


def test_a_rhythm_is_the_cards_start_times_as_fractions_of_the_clip() -> None:
    assert rhythm(GOOD, seconds=8) == (0.0, 0.375, 0.75)


def test_a_rhythm_keeps_only_cards_that_play_and_rejects_nonsense() -> None:
    assert rhythm((Beat("a", 4.0), Beat("b", 0.0), Beat("late", 9.0)), seconds=8) == (0.0, 0.5)
    with pytest.raises(ValueError):
        rhythm(GOOD, seconds=0)


def test_spread_spaces_untimed_cards_evenly_from_zero() -> None:
    assert [b.start for b in spread(["a", "b", "c"], seconds=8)] == [0.0, 2.5, 5.0]
    assert spread(["", "  "], seconds=8) == ()


def test_parse_beats_reads_the_modal_rows_in_order_and_skips_empty_ones() -> None:
    rows = [
        ("the robot rolls into frame", "0"),
        ("  it stops   at a puddle ", "2,5"),
        ("", ""),
        ("its sign lights up", "0:05"),
        ("a logo appears", "7 s"),
    ]

    assert parse_beats(rows) == (
        Beat("the robot rolls into frame", 0.0),
        Beat("it stops at a puddle", 2.5),
        Beat("its sign lights up", 5.0),
        Beat("a logo appears", 7.0),
    )
    assert parse_beats([("", ""), ("", " ")]) == ()


def test_parse_beats_gives_an_error_per_wrong_row_keyed_by_its_index() -> None:
    rows = [
        ("the robot rolls into frame", "0"),
        ("", "2"),
        ("it stops", "soon"),
        ("it glows", "-1"),
        ("it turns", ""),
    ]

    result = parse_beats(rows)

    assert isinstance(result, BeatErrors)
    assert set(result.errors) == {1, 2, 3, 4}
    assert result.errors[1] == "Say what happens in this card, or clear its start time."
    assert result.errors[2] == "“soon” is not a time; write the start in seconds, like 2 or 2.5."
    assert result.errors[3] == "A start time can't be negative; the clip starts at 0 s."
    assert "start time" in result.errors[4]

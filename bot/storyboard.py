"""Storyboards: beat cards parsed from the modal, their spacing lint, the timed prompt and the saved rhythm."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.domain import Beat, Finding, Severity
from bot.prompts.vocabulary import motion_verbs

MAX_BEATS = 4
MIN_GAP = 1.5

RULES: tuple[str, ...] = (
    "beat_beyond_duration",
    "beats_too_close",
    "too_many_beats",
    "several_actions_in_a_beat",
    "beats_out_of_order",
    "first_beat_late",
)
_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _fmt(value: float) -> str:
    return f"{value:g}"


def _card(index: int) -> str:
    """Cards are counted from 1, as the modal shows them."""
    return f"card {index + 1}"


def _cards(indexes: Sequence[int]) -> str:
    names = [str(i + 1) for i in indexes]
    return f"card {names[0]}" if len(names) == 1 else f"cards {', '.join(names[:-1])} and {names[-1]}"


def lint_beats(beats: Sequence[Beat], *, seconds: int, min_gap: float = MIN_GAP) -> tuple[Finding, ...]:
    """Check a storyboard's cards (in the order they were entered) against a clip of `seconds`; worst first."""
    if not beats:
        return ()
    findings: list[Finding] = []
    order = sorted(range(len(beats)), key=lambda i: beats[i].start)

    beyond = [i for i in order if beats[i].start >= seconds]
    if beyond:
        findings.append(
            Finding(
                rule="beat_beyond_duration",
                severity=Severity.ERROR,
                message=f"{_cards(beyond).capitalize()} start{'s' if len(beyond) == 1 else ''} at or after the "
                f"end of the {seconds}-second clip, so {'it' if len(beyond) == 1 else 'they'} never play.",
                fix=f"Start every card before {seconds} s, or make the clip longer.",
            )
        )

    playing = [i for i in order if beats[i].start < seconds]
    close = [(a, b) for a, b in itertools.pairwise(playing) if beats[b].start - beats[a].start < min_gap]
    if close:
        a, b = close[0]
        gap = beats[b].start - beats[a].start
        more = f" (and {len(close) - 1} more pair{'s' if len(close) > 2 else ''})" if len(close) > 1 else ""
        findings.append(
            Finding(
                rule="beats_too_close",
                severity=Severity.WARNING,
                message=f"{_cards([a, b]).capitalize()} are {_fmt(round(gap, 2))} s apart{more}; "
                "dense cards cause hard cuts.",
                fix=f"Space the cards at least {_fmt(min_gap)} s apart, or merge them into one.",
            )
        )

    if len(beats) > MAX_BEATS:
        findings.append(
            Finding(
                rule="too_many_beats",
                severity=Severity.WARNING,
                message=f"{len(beats)} cards in {seconds} s; past {MAX_BEATS} the model skips or blurs beats.",
                fix=f"Keep {MAX_BEATS} cards at most: merge small moments, or split the idea into two clips.",
            )
        )

    busy = [i for i, beat in enumerate(beats) if len(motion_verbs(beat.text)) > 1]
    if busy:
        verbs = motion_verbs(beats[busy[0]].text)
        findings.append(
            Finding(
                rule="several_actions_in_a_beat",
                severity=Severity.WARNING,
                message=f"{_cards(busy).capitalize()} ask{'s' if len(busy) == 1 else ''} for more than one "
                f"action ({_card(busy[0])}: {', '.join(verbs)}); one card should be one motion.",
                fix=f"Keep one action per card (e.g. only '{verbs[0]}'), and give the next one its own card.",
            )
        )

    if order != sorted(order):
        first_wrong = next(i for i in range(1, len(beats)) if beats[i].start < beats[i - 1].start)
        findings.append(
            Finding(
                rule="beats_out_of_order",
                severity=Severity.WARNING,
                message=f"{_card(first_wrong).capitalize()} starts before {_card(first_wrong - 1)}; "
                "the clip follows the start times, not the card order.",
                fix="Reorder the cards, or fix the start times so they rise from card to card.",
            )
        )

    first = beats[order[0]].start
    if 0 < first < seconds:
        findings.append(
            Finding(
                rule="first_beat_late",
                severity=Severity.WARNING,
                message=f"The first card starts at {_fmt(first)} s; the model invents the opening before it.",
                fix="Start the first card at 0 s (move its start time, or add an opening card).",
            )
        )

    return tuple(sorted(findings, key=lambda f: _RANK[f.severity]))


def rhythm(beats: Sequence[Beat], *, seconds: int) -> tuple[float, ...]:
    """Start times as fractions of the clip (0 ≤ f < 1), sorted; what a saved pattern keeps of its beats."""
    if seconds <= 0:
        raise ValueError(f"a rhythm needs a clip longer than 0 s, not {seconds}")
    return tuple(
        round(b.start / seconds, 4) for b in sorted(beats, key=lambda b: b.start) if 0 <= b.start < seconds
    )


def spread(texts: Sequence[str], *, seconds: int) -> tuple[Beat, ...]:
    """Cards with no times of their own (an AI draft's beats) spaced evenly from 0, on half seconds."""
    texts = [t.strip() for t in texts if t.strip()]
    if not texts or seconds <= 0:
        return ()
    step = seconds / len(texts)
    return tuple(Beat(text=text, start=math.floor(i * step * 2) / 2) for i, text in enumerate(texts))


# --- the storyboard modal --------------------------------------------------------------------------


@dataclass(frozen=True)
class BeatErrors:
    """Per-row messages for Slack's inline modal errors, keyed by the row's index (0-based)."""

    errors: Mapping[int, str]


# "2", "2.5", "2,5" (a decimal comma), "2s", "2 sec", "2 seconds", and "0:02" as minutes:seconds.
# ASCII digits only, a few of them: "²" or a hundred nines is not a start time.
_SECONDS = re.compile(
    r"^(?P<n>\d{1,4}(?:[.,]\d{1,3})?|[.,]\d{1,3})\s*(?:s|secs?|seconds?)?$", re.IGNORECASE | re.ASCII
)
_CLOCK = re.compile(r"^(?P<m>\d{1,3}):(?P<s>[0-5]\d(?:[.,]\d{1,3})?)$", re.ASCII)
_NEGATIVE = re.compile(r"^[-−–]\s*(?:\d|[.,]\d)", re.ASCII)
MAX_BEAT_CHARS = 200


def _start(text: str) -> float | str:
    """Seconds from what someone typed, or the message explaining what is wrong with it."""
    value = text.strip()
    if _NEGATIVE.match(value):
        return "A start time can't be negative; the clip starts at 0 s."
    if match := _SECONDS.match(value):
        return float(match.group("n").replace(",", "."))
    if match := _CLOCK.match(value):
        return int(match.group("m")) * 60 + float(match.group("s").replace(",", "."))
    shown = value if len(value) <= 20 else value[:19] + "…"
    return f"“{shown}” is not a time; write the start in seconds, like 2 or 2.5."


def parse_beats(rows: Sequence[tuple[str, str]]) -> tuple[Beat, ...] | BeatErrors:
    """(text, start) rows from the modal → beats in row order, or an error for each row that is wrong.

    Rows left completely empty are skipped: the modal always shows four.
    """
    beats: list[Beat] = []
    errors: dict[int, str] = {}
    for index, (raw_text, raw_start) in enumerate(rows):
        text = " ".join(raw_text.split())
        start_text = raw_start.strip()
        if not text and not start_text:
            continue
        if not text:
            errors[index] = "Say what happens in this card, or clear its start time."
            continue
        if len(text) > MAX_BEAT_CHARS:
            errors[index] = (
                f"Keep a card under {MAX_BEAT_CHARS} characters (it is {len(text):,}): one action."
            )
            continue
        if not start_text:
            errors[index] = "Give this card a start time in seconds, like 0 or 2.5."
            continue
        start = _start(start_text)
        if isinstance(start, str):
            errors[index] = start
            continue
        beats.append(Beat(text=text, start=start))
    if errors:
        return BeatErrors(errors=errors)
    return tuple(beats)

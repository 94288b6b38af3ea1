"""Rendering a spec into the one paragraph (and timed beats) a provider is sent."""

from __future__ import annotations

from bot.domain import PromptSpec
from bot.prompts.vocabulary import _INTENT_SECONDS, _STOPWORDS, LAYERS, _clean, _words

# --- render ----------------------------------------------------------------------------------------


def _sentence_part(text: str) -> str:
    text = _clean(text)
    words = _words(text)
    # Mid-sentence "At night" reads as a typo; proper nouns and acronyms ("NYC", "Tokyo") keep their case.
    if words and words[0][:1].isupper() and words[0][1:].islower() and words[0].lower() in _STOPWORDS:
        text = text[0].lower() + text[1:]
    return text


def _seconds_of(spec: PromptSpec) -> float | None:
    match = _INTENT_SECONDS.search(spec.intent)
    return float(match.group(1)) if match else None


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def render(spec: PromptSpec, *, seconds: int | None = None) -> str:
    """The provider prompt: subject+action; camera; environment; finish; intent — then timed beats if any."""
    lead = " ".join(p for p in (_sentence_part(spec.subject), _sentence_part(spec.action)) if p)
    parts = [p for p in (lead, *(_sentence_part(getattr(spec, n)) for n in LAYERS[2:])) if p]
    text = "; ".join(parts)
    if text:
        text = text[0].upper() + text[1:] + "."
    beats = sorted(spec.beats, key=lambda b: b.start)
    if not beats:
        return text
    end_of_clip = float(seconds) if seconds is not None else _seconds_of(spec)
    timed = []
    for index, beat in enumerate(beats):
        end = beats[index + 1].start if index + 1 < len(beats) else end_of_clip
        words = _sentence_part(beat.text)
        if end is None or end <= beat.start:
            timed.append(f"from {_fmt(beat.start)} s: {words}")
        else:
            timed.append(f"{_fmt(beat.start)}–{_fmt(end)} s: {words}")
    return f"{text} Beats: {'; '.join(timed)}.".strip()

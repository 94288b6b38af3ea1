"""Remix edits: one plain-language change applied to the layer it is about, and the diff it makes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import PromptSpec
from bot.prompts.drafter import _kind_of, _same_subject, _subject_verb
from bot.prompts.vocabulary import (
    _DETERMINERS,
    _FILM_FORMAT,
    _INTENT_SECONDS,
    _LENS,
    _STYLE,
    LAYERS,
    _clean,
    _has_camera,
    _words,
    camera_moves,
)

# --- remix -----------------------------------------------------------------------------------------

_LEAD_INS = re.compile(
    r"^(?:(?:please|pls|can you|could you|let's|lets|now|ok|okay)\s+)*"
    r"(?:make it|make this|make|switch to|switch it to|change it to|change to|go with|go|set it to|use|try|"
    r"turn it into|add some|add a|add an|add|give it|with|put it in|set it in|move it to|"
    r"shoot it on|shoot on|shoot it in|film it on|film on|shot on)\s+",
    re.IGNORECASE,
)
_INSTEAD = re.compile(r"\s*\binstead(?:\s+of\b.*)?$|^\s*instead of\b[^,]*,?\s*", re.IGNORECASE)
_APPENDS_TIGHTLY = ("with", "wearing", "holding", "carrying", "in", "who", "that", "made", "covered")


def _classify_change(change: str) -> str:
    if _has_camera(change):
        return "camera"
    kind = _kind_of(change)
    if kind in ("event", "action"):
        return "action"
    if kind == "intent" or _INTENT_SECONDS.search(change):
        return "intent"
    if kind in ("environment", "finish"):
        return kind
    if _STYLE.search(change):
        return "finish"
    return "subject"


def _lens(text: str) -> str:
    return re.sub(r"\b(\d{2,3})\s?mm\b(?!\s+lens)", r"\1mm lens", text) if _LENS.search(text) else text


def _about_subject(change: str, subject: str) -> str | None:
    """ "the robot red" (from "make the robot red") → "red"; None if the change does not name the subject."""
    words = _words(subject)
    if not words:
        return None
    head = re.escape(words[-1])
    match = re.match(rf"^(?:(?:the|a|an|our|my|this)\s+)?(?:[\w-]+\s+)?{head}s?\b\s*(.*)$", change, re.I)
    return _clean(match.group(1)) if match else None


def _with_article(new: str, old: str) -> str:
    words = _words(new)
    if words and words[0].lower() in _DETERMINERS:
        return new
    old_words = _words(old)
    if not old_words or old_words[0].lower() not in ("a", "an", "the"):
        return new
    article = old_words[0].lower()
    if article in ("a", "an"):
        article = "an" if new[:1].lower() in "aeiou" else "a"
    return f"{article.capitalize() if old[:1].isupper() else article} {new}"


_TIME_OF_DAY = re.compile(
    r"(?:\b(?:at|in the|during|by)\s+)?\b(?:golden hour|blue hour|night|nighttime|midnight|dusk|dawn|twilight|"
    r"sunrise|sunset|noon|midday|morning|afternoon|evening|daytime|daybreak|nightfall)\b",
    re.IGNORECASE,
)
_COLOURS = frozenset(
    {"red", "blue", "green", "yellow", "orange", "purple", "pink", "black", "white", "grey", "gray", "silver",
     "gold", "golden", "brown", "teal", "turquoise", "violet", "crimson", "beige", "cream", "navy"}
)  # fmt: skip
_SIZES = frozenset(
    {"small", "big", "tiny", "large", "little", "huge", "giant", "tall", "short", "old", "young"}
)
_SPLIT = re.compile(
    r"\s*(?:;|,\s*(?:and\s+)?|\s+and\s+(?=(?:make|shoot|film|add|switch|change|use|set|"
    r"give|put|move|the camera|camera|then)\b)|\s+then\s+)\s*",
    re.IGNORECASE,
)


def split_change(change: str) -> tuple[str, ...]:
    """The separate changes in one instruction, when they touch more than one layer; else ()."""
    parts = [p for p in (_clean(x) for x in _SPLIT.split(change)) if p]
    if len(parts) < 2:
        return ()
    layers = {_classify_change(_clean(_LEAD_INS.sub("", p)) or p) for p in parts}
    return tuple(parts) if len(layers) > 1 else ()


def _recolour(subject: str, colour: str) -> str:
    """ "A service robot" + red → "A red service robot"; a colour already there is replaced."""
    words = subject.split()
    for index, word in enumerate(words):
        if word.lower().strip(",") in _COLOURS:
            words[index] = colour
            return " ".join(words)
    at = 1 if words and words[0].lower() in _DETERMINERS else 0
    while at < len(words) - 1 and words[at].lower() in _SIZES:
        at += 1
    words.insert(at, colour)
    if at == 1 and words[0].lower() in ("a", "an"):
        article = "an" if colour[:1].lower() in "aeiou" else "a"
        words[0] = article.capitalize() if words[0][:1].isupper() else article
    return " ".join(words)


def apply_change(spec: PromptSpec, change: str) -> PromptSpec:
    """One remix change applied to the layer it is about; every other layer stays exactly as it was. An
    instruction with several changes (`split_change`) applies each to its own layer."""
    parts = split_change(change)
    if parts:
        for part in parts:
            spec = apply_change(spec, part)
        return spec
    text = _clean(change)
    instead = bool(_INSTEAD.search(text))
    text = _clean(_INSTEAD.sub("", text))
    described = re.match(r"^with\s", text, re.IGNORECASE) is not None
    text = _clean(_LEAD_INS.sub("", text)) or text
    if not text:
        return spec
    layer = _classify_change(text)
    old = str(getattr(spec, layer))
    if layer == "camera":
        new_text = _lens(text)
        # A lens or framing adds to the existing move; a new move replaces it, since two moves would conflict.
        new = new_text if (camera_moves(new_text) or instead or not old) else f"{old}, {new_text}"
    elif layer == "action":
        split = _subject_verb(text)
        if split and split[0] and _same_subject(split[0], spec.subject):
            text = split[1]
        joined = re.match(r"^(and then|then|and|also)\s+(.*)$", text, re.IGNORECASE)
        if joined and old and not instead:
            new = f"{old}, {text}" if joined.group(1).lower() != "and" else f"{old} {text}"
        else:
            new = text
    elif layer == "intent":
        # "make it 6 seconds" changes the duration, not what the clip is for.
        seconds = _INTENT_SECONDS.search(text)
        if seconds and _INTENT_SECONDS.search(old) and len(_words(text)) <= 3:
            new = _INTENT_SECONDS.sub(f"{seconds.group(1)}-second", old, count=1)
        else:
            new = text
    elif layer == "environment" and _TIME_OF_DAY.search(text) and _TIME_OF_DAY.search(old) and not instead:
        # "make it golden hour" on "at night": a clip has one time of day, so the new one replaces the old.
        found = _TIME_OF_DAY.search(text)
        assert found is not None
        when = found.group(0)
        when = when if re.match(r"(?:at|in the|during|by)\s", when, re.I) else f"at {when}"
        new = _TIME_OF_DAY.sub(when, old, count=1)
    elif layer == "finish" and _FILM_FORMAT.search(text) and len(_words(text)) <= 3:
        new = f"{old}, shot on {text}" if old and not instead else f"shot on {text}"
    elif layer in ("environment", "finish"):
        new = text if instead or not old else f"{old}, {text}"
    elif instead or not old:
        new = _with_article(text, old)
    elif (rest := _about_subject(text, old)) is not None and rest.lower() in _COLOURS:
        new = _recolour(old, rest.lower())
    elif rest is not None:
        new = f"{old}, {rest}" if rest else old
    else:
        # "with a yellow scarf" describes the subject; the "with" that was stripped to classify it goes back.
        text = f"with {text}" if described else text
        first = _words(text)[0].lower() if _words(text) else ""
        new = f"{old} {text}" if first in _APPENDS_TIGHTLY else f"{old}, {text}"
    return _with_layer(spec, layer, _clean(new))


def _with_layer(spec: PromptSpec, layer: str, value: str) -> PromptSpec:
    values = {name: str(getattr(spec, name)) for name in LAYERS}
    values[layer] = value
    return PromptSpec(
        subject=values["subject"],
        action=values["action"],
        camera=values["camera"],
        environment=values["environment"],
        finish=values["finish"],
        intent=values["intent"],
        beats=spec.beats,
    )


def changed_layers(before: PromptSpec, after: PromptSpec) -> tuple[str, ...]:
    """The layers that differ, in layer order ("beats" last)."""
    names = [name for name in LAYERS if getattr(before, name) != getattr(after, name)]
    if before.beats != after.beats:
        names.append("beats")
    return tuple(names)


@dataclass(frozen=True)
class LayerChange:
    """One layer as a remix changed it: what it said, what it says now."""

    layer: str
    before: str
    after: str


def layer_diff(before: PromptSpec, after: PromptSpec) -> tuple[LayerChange, ...]:
    """The layers a remix changed, each with its old and new text, in layer order."""
    return tuple(
        LayerChange(layer=name, before=str(getattr(before, name)), after=str(getattr(after, name)))
        for name in LAYERS
        if getattr(before, name) != getattr(after, name)
    )

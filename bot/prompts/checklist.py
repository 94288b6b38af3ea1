"""The checklist: lint rules over a spec, each with a fix written for the idea, and the score."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from bot.domain import Finding, PromptSpec, Severity
from bot.prompts.presets import DEFAULT_CAMERAS
from bot.prompts.render import render
from bot.prompts.vocabulary import (
    _CHARACTERS,
    _CLASHES,
    _CONCURRENT,
    _DETERMINERS,
    _HYPE,
    _MEDIA,
    LAYERS,
    _clean,
    _words,
    camera_moves,
    hype_words,
    language_of,
    motion_verbs,
    style_cues,
)

# --- lint ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    spec: PromptSpec
    filled: frozenset[str]

    def given(self, layer: str) -> str:
        """The layer's text when the user wrote it; defaults are ours, so they are never held against them."""
        return "" if layer in self.filled else str(getattr(self.spec, layer))


_Rule = Callable[[_Subject], Finding | None]


def _short(text: str, limit: int = 60) -> str:
    """User text quoted in a finding: enough to recognise, never a wall on the draft card."""
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lint_subject_missing(s: _Subject) -> Finding | None:
    if s.spec.subject.strip():
        return None
    return Finding(
        rule="subject_missing",
        severity=Severity.ERROR,
        message="There is no subject: the model will invent one.",
        fix="Start with one concrete subject, e.g. 'A small delivery robot…'.",
    )


def _lint_multiple_subjects(s: _Subject) -> Finding | None:
    parts = re.split(r"\s*(?:,|;|&|\band\b|\bplus\b|\balong with\b|\btogether with\b)\s*", s.spec.subject)
    primaries = [
        p for p in parts if (words := _words(p)) and (words[0].lower() in _DETERMINERS or words[0].isdigit())
    ]
    if len(primaries) < 2:
        return None
    return Finding(
        rule="multiple_subjects",
        severity=Severity.WARNING,
        message=f"{len(primaries)} subjects compete for the frame: "
        + "; ".join(_short(p, 30) for p in primaries[:4])
        + ".",
        fix=f"Keep one subject ('{_short(primaries[0], 30)}'); move the rest to the environment or drop it.",
    )


# A motion that suits what the subject is, so a fix reads as written for this idea ("the rain runs down the
# glass"), never as a stock example.
_MOTION_FOR: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"rain", "raindrops", "drops", "tears", "water", "droplets"}), "runs down the glass"),
    (frozenset({"snow", "snowflakes", "leaves", "petals", "feathers", "dust", "ash"}), "drifts slowly down"),
    (frozenset({"fog", "mist", "smoke", "steam", "clouds", "cloud"}), "curls slowly upward"),
    (frozenset({"wind", "breeze"}), "ripples through the grass"),
    (frozenset({"ocean", "sea", "waves", "wave", "lake", "river", "stream"}), "rolls gently toward the shore"),
    (frozenset({"candle", "candles", "flame", "flames", "fire", "lamp", "neon", "lantern", "lights"}), "flickers"),
    (frozenset({"flower", "flowers", "tree", "trees", "grass", "wheat", "plant", "plants"}), "sways in a light breeze"),
    (
        frozenset({"lighthouse", "house", "castle", "tower", "building", "bridge", "city", "skyline", "mountain"}),
        "stands still as clouds drift past",
    ),
    (
        frozenset({"car", "train", "boat", "robot", "bike", "bus", "truck", "ship", "tram", "drone", "plane"}),
        "rolls slowly forward",
    ),
    (
        frozenset({"cat", "dog", "owl", "bird", "fox", "horse", "deer", "rabbit", "wolf", "bear", "puppy", "kitten"}),
        "turns its head toward the camera",
    ),
    (
        frozenset({"man", "woman", "person", "girl", "boy", "child", "kid", "chef", "dancer", "people", "crowd"}),
        "turns toward the camera",
    ),
)  # fmt: skip


def _head_of(subject: str) -> str:
    """The noun the subject is about: "A small delivery robot with a scarf" → "robot"."""
    subject = _HYPE.sub(" ", subject)
    before = re.split(r"\s(?:with|in|on|at|of|wearing|holding|who|that)\s", _clean(subject), maxsplit=1)[0]
    words = [w for w in _words(before) if w.lower() not in _DETERMINERS and w.isalpha()]
    return words[-1].lower() if words else ""


def _the(subject: str) -> str:
    head = _head_of(subject)
    return f"the {head}" if head else "the subject"


def _motion_for(subject: str) -> str:
    head = _head_of(subject)
    person = head.endswith(("er", "ist", "or", "ian")) and head not in {"water", "river", "flower", "tower"}
    for heads, motion in _MOTION_FOR:
        if head in heads:
            return f"{_the(subject)} {motion}"
    if person:
        return f"{_the(subject)} turns toward the camera"
    return f"{_the(subject)} turns slowly on the spot" if head else "a small robot rolls slowly forward"


def _lint_no_motion(s: _Subject) -> Finding | None:
    if motion_verbs(s.spec.action) or (not s.spec.action.strip() and motion_verbs(s.spec.subject)):
        return None
    if any(motion_verbs(b.text) for b in s.spec.beats):
        return None
    who = _short(s.spec.subject) or "the subject"
    return Finding(
        rule="no_motion",
        severity=Severity.WARNING,
        message=f"{who[:1].upper()}{who[1:]} has no observable motion, so the model will guess one.",
        fix=f"Give {_the(s.spec.subject)} one observable motion, e.g. '{_motion_for(s.spec.subject)}'.",
    )


def _lint_simultaneous_actions(s: _Subject) -> Finding | None:
    verbs = motion_verbs(s.spec.action)
    concurrent = _CONCURRENT.search(s.spec.action)
    if len(verbs) < 3 and not (concurrent and len(verbs) >= 2):
        return None
    return Finding(
        rule="simultaneous_actions",
        severity=Severity.WARNING,
        message=f"{len(verbs)} actions at once ({', '.join(verbs[:6])}); a short clip blurs or cuts them.",
        fix=f"Keep one action ('{verbs[0]}'), or give each its own storyboard beat.",
    )


def _lint_camera_missing(s: _Subject) -> Finding | None:
    camera = s.spec.camera.strip()
    if camera and "camera" not in s.filled and camera not in DEFAULT_CAMERAS:
        return None
    using = f" (using the default: '{_short(camera)}')" if camera else ""
    return Finding(
        rule="camera_missing",
        severity=Severity.WARNING,
        message=f"No camera behaviour was given{using}.",
        fix=f"Name one camera behaviour for {_the(s.spec.subject)}, e.g. 'slow dolly-in at "
        f"{_head_of(s.spec.subject) or 'eye'} height' or 'locked-off wide shot of {_the(s.spec.subject)}'.",
    )


# A mount (handheld, drone) carries a move rather than competing with it: "drone pulls back" is one move.
_MOUNTS = frozenset({"handheld", "aerial"})


def _lint_camera_conflict(s: _Subject) -> Finding | None:
    moves = camera_moves(s.given("camera"))
    if "static" in moves and len(moves) > 1:
        moving = [m for m in moves if m != "static"]
        return Finding(
            rule="camera_conflict",
            severity=Severity.ERROR,
            message=f"The camera is both static and moving ({', '.join(moving)}).",
            fix=f"Either lock the camera off or keep the {moving[0]}, not both.",
        )
    if {"push-in", "pull-back"} <= set(moves):
        return Finding(
            rule="camera_conflict",
            severity=Severity.ERROR,
            message="The camera pushes in and pulls back at once; the moves cancel out.",
            fix="Choose one direction: a slow push-in or a slow pull-back.",
        )
    carried = [m for m in moves if m not in _MOUNTS] or list(moves)
    if len(carried) < 2 and len(moves) - len(carried) <= 1:
        return None
    return Finding(
        rule="camera_conflict",
        severity=Severity.WARNING,
        message=f"{len(moves)} camera moves ({', '.join(moves)}); more than one move reads as a cut.",
        fix=f"Keep one camera behaviour, e.g. only the {carried[0]}, or give each move its own beat.",
    )


def _lint_environment_competes(s: _Subject) -> Finding | None:
    environment = s.given("environment")
    if not environment:
        return None
    subject = s.spec.subject.lower()
    # "a sheepdog" in "a muddy dog park" is the subject at home, not a second character.
    others = [
        m.group(0) for m in _CHARACTERS.finditer(environment) if m.group(0).lower().rstrip("s") not in subject
    ]
    items = [p for p in re.split(r"\s*(?:,|;|\band\b|\bwith\b)\s*", environment) if p.strip()]
    words = len(_words(environment))
    crowded = len(items) >= 4 or words > max(15, 2 * len(_words(s.spec.subject)))
    if not others and not crowded:
        return None
    reason = (
        f"it brings in other characters ({', '.join(dict.fromkeys(others[:6]))})"
        if others
        else f"it has {len(items)} details in {words} words, more than the subject"
    )
    return Finding(
        rule="environment_competes",
        severity=Severity.WARNING,
        message=f"The environment competes with the subject: {reason}.",
        fix=f"Keep {_the(s.spec.subject)} the only character, with one or two details of place, time or weather.",
    )


def _lint_style_stack(s: _Subject) -> Finding | None:
    cues = style_cues(" ; ".join(s.given(layer) for layer in ("subject", "environment", "finish")))
    media = [c for c in cues if c in _MEDIA]
    clashes = [(a, b) for a in cues for b in cues if a < b and a in media and b in media]
    for left, right in _CLASHES:
        clashes += [(a, b) for a in cues if a in left for b in cues if b in right and a != b]
    if clashes:
        a, b = clashes[0]
        return Finding(
            rule="style_stack",
            severity=Severity.ERROR,
            message=f"The finish mixes styles that pull apart: {a} and {b}.",
            fix=f"Pick one look: '{a}' or '{b}', not both.",
        )
    if len(cues) <= 2:
        return None
    return Finding(
        rule="style_stack",
        severity=Severity.WARNING,
        message=f"{len(cues)} style cues stacked ({', '.join(cues)}); the model averages them.",
        fix=f"Keep at most two, e.g. '{cues[0]}, {cues[1]}'.",
    )


def _lint_keyword_pile(s: _Subject) -> Finding | None:
    given = [s.given(layer) for layer in LAYERS]
    hype = [w for text in given for w in hype_words(text)]
    fragments = [
        f
        for layer in ("subject", "environment", "finish")
        for f in re.split(r"\s*[,;]\s*", s.given(layer))
        if f.strip() and len(_words(f)) <= 2 and not motion_verbs(f)
    ]
    if len(hype) < 3 and len(fragments) < 4:
        return None
    if len(hype) >= 3:
        message = f"Hype words carry no picture: {', '.join(dict.fromkeys(hype))}."
    else:
        message = f"A pile of tags ({', '.join(fragments[:6])}) instead of a description."
    return Finding(
        rule="keyword_pile",
        severity=Severity.WARNING,
        message=message,
        fix=f"Rewrite it in the formula's order (subject, action, camera, place, look): '{_skeleton(s)}'.",
    )


def _skeleton(s: _Subject) -> str:
    """The user's own words, hype removed, laid out as subject + action; camera; environment; finish."""

    def kept(layer: str) -> str:
        text = _HYPE.sub(" ", s.given(layer))
        return ", ".join(p for p in (_clean(x) for x in re.split(r"\s*[,;]\s*", text)) if p and _words(p))

    subject = kept("subject") or "[one subject]"
    action = kept("action") or "[does one thing]"
    parts = [
        f"{subject[:1].upper()}{subject[1:]} {action}",
        kept("camera") or "[one camera move]",
        kept("environment") or "[where and when]",
        kept("finish") or "[one look]",
    ]
    return "; ".join(parts)


MAX_PROMPT_WORDS = 90
MAX_PROMPT_CHARS = 600


def _lint_too_long(s: _Subject) -> Finding | None:
    # Beats are measured by the storyboard lint; here only the paragraph that describes the shot.
    text = render(replace(s.spec, beats=()))
    words = len(_words(text))
    if words <= MAX_PROMPT_WORDS and len(text) <= MAX_PROMPT_CHARS:
        return None
    return Finding(
        rule="too_long",
        severity=Severity.WARNING,
        message=f"The prompt is {words} words ({len(text)} characters); dense prompts cause hard cuts.",
        fix=f"Cut it below {MAX_PROMPT_WORDS} words: one subject, one action, one camera move, one finish.",
    )


_OPEN_LAYERS = ("environment", "finish", "intent")


def _lint_layers_open(s: _Subject) -> Finding | None:
    # A clean score must mean every layer is the user's own: a defaulted or empty layer is a guess we made.
    open_layers = [n for n in _OPEN_LAYERS if n in s.filled or not str(getattr(s.spec, n)).strip()]
    if not open_layers:
        return None
    named = " and ".join(open_layers).replace("intent", "output intent")
    advice = {
        "environment": f"where and when {_the(s.spec.subject)} is (e.g. 'on a rain-soaked street at night')",
        "finish": "one look (e.g. 'soft film grain, warm light')",
        "intent": "what the clip is for (e.g. '8-second product teaser')",
    }
    return Finding(
        rule="layers_open",
        severity=Severity.INFO,
        message=f"The {named} {'was' if len(open_layers) == 1 else 'were'} not given; the draft guesses.",
        fix="Say " + "; ".join(advice[n] for n in open_layers) + ".",
    )


_RULES: tuple[_Rule, ...] = (
    _lint_subject_missing,
    _lint_multiple_subjects,
    _lint_no_motion,
    _lint_simultaneous_actions,
    _lint_camera_missing,
    _lint_camera_conflict,
    _lint_environment_competes,
    _lint_style_stack,
    _lint_keyword_pile,
    _lint_too_long,
    _lint_layers_open,
)
RULES: tuple[str, ...] = (
    "subject_missing",
    "multiple_subjects",
    "no_motion",
    "simultaneous_actions",
    "camera_missing",
    "camera_conflict",
    "environment_competes",
    "style_stack",
    "keyword_pile",
    "too_long",
    "layers_open",
    "not_checked",
)
_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_COST = {Severity.ERROR: 30, Severity.WARNING: 12, Severity.INFO: 3}


def lint(spec: PromptSpec, *, filled: Iterable[str] = ()) -> tuple[Finding, ...]:
    """Check a spec against the checklist; most serious first. `filled` names layers the drafter defaulted."""
    subject = _Subject(spec=spec, filled=frozenset(filled))
    language = language_of(spec.subject)
    if language is not None and not any(str(getattr(spec, n)).strip() for n in LAYERS[1:]):
        # An idea kept whole in another language: the English checklist would only invent problems.
        return (
            Finding(
                rule="not_checked",
                severity=Severity.INFO,
                message=f"The idea is in {language}; the checklist reads English only and did not check it.",
                fix="Review it yourself, or write the idea in English for a layer-by-layer check.",
            ),
        )
    findings = [f for rule in _RULES if (f := rule(subject)) is not None]
    return tuple(sorted(findings, key=lambda f: _RANK[f.severity]))


def score(findings: Iterable[Finding]) -> int:
    """100 for a clean spec; each error costs more than a warning, which costs more than an info."""
    return max(0, 100 - sum(_COST[f.severity] for f in findings))

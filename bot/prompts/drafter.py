"""The offline drafter: a free-text idea read into the six layers, a sequence into beats."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import PromptSpec
from bot.prompts.presets import (
    DEFAULT_CAMERA,
    DEFAULT_ENVIRONMENT,
    DEFAULT_FINISH,
    DEFAULT_INTENT,
    PRESETS,
    Goal,
)
from bot.prompts.vocabulary import (
    _ANY_VERB,
    _AT_HEIGHT,
    _CAMERA,
    _DETERMINERS,
    _ENVIRONMENT,
    _FILM_FORMAT,
    _FINISH,
    _HYPE,
    _INTENT,
    _LENS,
    _PREPOSITIONS,
    _PRONOUNS,
    LAYERS,
    _clean,
    _content_words,
    _has_camera,
    _verbs_in,
    _words,
    motion_verbs,
)

# --- drafting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A drafted spec plus the layers that were defaulted (so lint can say "you gave no camera")."""

    spec: PromptSpec
    filled: tuple[str, ...]
    goal: Goal | None = None


@dataclass(frozen=True)
class _Clause:
    text: str
    joiner: str  # the word that introduced it ("while", "and"…), or "" after punctuation


_WORD_JOINERS = ("and then", "then", "while", "whilst", "as", "meanwhile", "and", "with", "plus")
_COARSE = re.compile(
    r"(\s*;\s*|\s*(?<!\d),\s*|\s*,(?!\d)\s*|\s*:(?!\d)\s*|(?<=\S)[.!?…]+(?:\s+|$)|\s+[–—]\s+"
    r"|\s+(?:and then|then|while|whilst|meanwhile)\s+"
    r"|(?<!\bsuch)(?<!\bas well)\s+as\s+(?!if\b|though\b|well\b))",
    re.IGNORECASE,
)
_FINE = re.compile(r"(\s+(?:and|with|plus)\s+)", re.IGNORECASE)


def _split_clauses(text: str) -> list[_Clause]:
    parts = _COARSE.split(text)
    coarse: list[_Clause] = []
    joiner = ""
    for index, part in enumerate(parts):
        if index % 2:
            joiner = part.strip().lower() if part.strip().lower() in _WORD_JOINERS else ""
            continue
        if part.strip():
            coarse.append(_Clause(part.strip(), joiner))
    clauses: list[_Clause] = []
    for clause in coarse:
        pieces = _FINE.split(clause.text)
        current = _Clause(pieces[0], clause.joiner)
        for conjunction, piece in zip(pieces[1::2], pieces[2::2], strict=True):
            # Split off "with shallow depth of field" or "and rain", but keep "a robot and a dog" or
            # "rolls forward and turns" whole: without layer words of its own, a piece belongs to the last.
            if _kind_of(piece) in ("camera", "environment", "finish") and not _verbs_in(piece, _ANY_VERB):
                if current.text.strip():
                    clauses.append(current)
                current = _Clause(piece, conjunction.strip().lower())
            else:
                current = _Clause(f"{current.text}{conjunction}{piece}", current.joiner)
        if current.text.strip():
            clauses.append(current)
    return clauses


def _subject_verb(text: str) -> tuple[str, str] | None:
    """Split "a small robot slowly rolls through…" into ("a small robot", "slowly rolls through…")."""
    # Words inside a layer term are not verbs ("film look", "slow motion"); neither is an -ing word with no
    # noun before it ("our new running shoe").
    vocabularies = (_CAMERA, _ENVIRONMENT, _FINISH)
    taken = [m.span() for v in vocabularies for m in v.finditer(text) if " " in m.group(0)]
    verbs = [
        m
        for m in _verbs_in(text, _ANY_VERB)
        if not any(start <= m.start() < end for start, end in taken)
        and not (
            m.group(0).lower().endswith("ing")
            and text[: m.start()].strip()
            and not _content_words(text[: m.start()])
        )
    ]
    if not verbs:
        return None
    cut = verbs[0].start()
    subject = text[:cut].rstrip()
    # Adverbs and relative pronouns right before the verb belong to the action: "a robot that slowly rolls".
    while True:
        trailing = re.search(r"(?:^|\s)([\w'-]+)$", subject)
        if not trailing:
            break
        word = trailing.group(1).lower()
        if word in {"that", "which", "who", "then", "also", "just", "now"} or (
            word.endswith("ly") and word not in {"fly", "early", "only", "holy", "jelly", "belly", "lily"}
        ):
            cut = trailing.start(1)
            subject = text[:cut].rstrip()
            continue
        break
    return subject.strip(" ,"), text[cut:].strip()


def _without_phrases(text: str, vocabulary: re.Pattern[str]) -> str:
    return vocabulary.sub(lambda m: " " if len(_words(m.group(0))) > 1 else m.group(0), text)


def _kind_of(text: str) -> str:
    if _has_camera(text):
        return "camera"
    split = _subject_verb(text)
    if split and split[0] and (_content_words(split[0]) or split[0].lower() in _PRONOUNS):
        return "event"
    if split and not split[0] and motion_verbs(text):
        return "action"
    if _INTENT.search(text) and not motion_verbs(text):
        return "intent"
    # A multi-word term owns its words: "depth of field" is a finish, not a field; "golden hour" not a light.
    places = list(_ENVIRONMENT.finditer(_without_phrases(text, _FINISH)))
    looks = [*_FINISH.finditer(_without_phrases(text, _ENVIRONMENT)), *_FILM_FORMAT.finditer(text)]
    if len(looks) != len(places):
        return "finish" if len(looks) > len(places) else "environment"
    if places:
        # The head noun comes last, before any prepositional phrase: "studio lighting" is a look, "dust
        # floating in the light" a place.
        phrase = re.search(r"\s(?:in|on|at|of|through|under|over|with|by|from|into)\s", text)
        head_end = phrase.start() if phrase else len(text)
        looks_before = [m.end() for m in looks if m.end() <= head_end]
        places_before = [m.end() for m in places if m.end() <= head_end]
        if not looks_before and not places_before:
            looks_before, places_before = [m.end() for m in looks], [m.end() for m in places]
        return "finish" if max(looks_before, default=-1) > max(places_before, default=-1) else "environment"
    if _HYPE.search(text):
        return "finish"
    if split and motion_verbs(text):
        return "action"
    return "other"


def _peel_camera(clause: _Clause) -> list[_Clause]:
    """ "a robot rolls toward us in a low-angle tracking shot" → the event, then the camera phrase."""
    if not _has_camera(clause.text):
        return [clause]
    split = _subject_verb(clause.text)
    if not split or not split[0] or not _content_words(split[0]):
        return [clause]
    found = _CAMERA.search(clause.text) or _LENS.search(clause.text) or _AT_HEIGHT.search(clause.text)
    assert found is not None
    head = clause.text[: found.start()]
    verb_at = len(clause.text) - len(split[1])
    preposition = None
    for match in re.finditer(r"\s(in|with|on|from|via|using|through|as)\s", head):
        if match.start() > verb_at:
            preposition = match
    cut = preposition.start() if preposition else found.start()
    event, camera = clause.text[:cut].strip(), clause.text[cut:].strip()
    camera = re.sub(r"^(?:in|with|on|from|via|using|through|as)\s+(?:an?\s+|the\s+)?", "", camera, flags=re.I)
    if not event or not camera or cut <= verb_at:
        return [clause]
    return [_Clause(event, clause.joiner), _Clause(camera, "")]


_OBJECT_LEAD = re.compile(
    r"^(?:\s*(?:around|round|past|toward|towards|over|across|on|onto|to|into|in|along|alongside|behind|"
    r"through|up|down|left|right|away|from|out|of|above|under|at|slowly|gently)\b)*\s*",
    re.IGNORECASE,
)


def _camera_object(clause: _Clause) -> tuple[_Clause, _Clause] | None:
    """ "the camera slowly orbits a vintage car" → ("the camera slowly orbits", "a vintage car")."""
    ends = [m.end() for v in (_CAMERA, _LENS, _AT_HEIGHT) for m in v.finditer(clause.text)]
    if not ends:
        return None
    rest = clause.text[max(ends) :]
    lead = _OBJECT_LEAD.match(rest)
    target = rest[lead.end() if lead else 0 :].strip()
    words = _words(target)
    named = bool(lead) and re.search(r"\bof\b", lead.group(0) if lead else "") is not None
    if not words or not (named or words[0].lower() in _DETERMINERS) or not _content_words(target):
        return None
    camera = clause.text[: len(clause.text) - len(rest)].strip()
    return _Clause(camera, clause.joiner), _Clause(target, "")


def _join(parts: list[_Clause]) -> str:
    text = ""
    for part in parts:
        if not text:
            text = part.text
        elif part.joiner in ("", "with", "plus"):
            text = f"{text}, {part.text}" if part.joiner == "" else f"{text} {part.joiner} {part.text}"
        else:
            text = f"{text} {part.joiner} {part.text}"
    return _clean(text)


def _same_subject(candidate: str, subject: str) -> bool:
    words = [w.lower() for w in _words(candidate)]
    if not words:
        return False
    if len(words) == 1 and words[0] in _PRONOUNS:
        return True
    head = words[-1].rstrip("s")
    return bool(head) and head in {w.lower().rstrip("s") for w in _words(subject)}


def _split_subject_setting(text: str) -> tuple[str, str]:
    """ "a lonely lighthouse on a cliff at sunset" → ("a lonely lighthouse", "on a cliff at sunset")."""
    for match in re.finditer(r"\s(" + "|".join(sorted(_PREPOSITIONS - {"of", "with"})) + r")\s", text):
        rest = text[match.start() :].strip()
        if _ENVIRONMENT.search(rest) and _content_words(text[: match.start()]):
            return text[: match.start()].strip(), rest
    return text, ""


def draft_with_notes(idea: str, *, goal: Goal | None = None) -> Draft:
    """Restructure a free-text idea into the six layers; defaulted layers are named in `filled`."""
    text = _clean(idea)
    clauses = [piece for clause in _split_clauses(text) for piece in _peel_camera(clause)]
    kinds = [_kind_of(c.text) for c in clauses]
    if "event" not in kinds:
        # With no "X does Y" clause, the subject may be the camera's target: "slow push-in on a sleeping cat".
        for index, kind in enumerate(kinds):
            found = _camera_object(clauses[index]) if kind == "camera" else None
            if found:
                clauses[index : index + 1] = list(found)
                kinds[index : index + 1] = ["camera", "object"]
                break
    layers: dict[str, list[_Clause]] = {name: [] for name in LAYERS}

    subject_at = next((i for i, kind in enumerate(kinds) if kind == "event"), None)
    if subject_at is None:
        subject_at = next((i for i, kind in enumerate(kinds) if kind == "object"), None)
    if subject_at is None:
        subject_at = next((i for i, kind in enumerate(kinds) if kind == "other"), None)
    if subject_at is None:
        described = (
            i
            for i, k in enumerate(kinds)
            if k in ("environment", "finish") and _content_words(clauses[i].text)
        )
        subject_at = next(described, None)

    subject = ""
    for index, (clause, kind) in enumerate(zip(clauses, kinds, strict=True)):
        if index == subject_at:
            split = _subject_verb(clause.text) if kind in ("event", "object") else None
            if split and split[0]:
                subject = split[0]
                layers["action"].append(_Clause(split[1], ""))
            elif kind == "other":
                subject = clause.text
            else:
                # A target or a place-or-look clause may carry its setting: "a car parked in a desert".
                subject, setting = _split_subject_setting(clause.text)
                if setting:
                    layers["environment"].append(_Clause(setting, ""))
            layers["subject"].append(_Clause(subject, ""))
            continue
        if kind == "event":
            split = _subject_verb(clause.text)
            assert split is not None
            if subject and _same_subject(split[0], subject) and split[0].lower() not in _PRONOUNS:
                layers["action"].append(_Clause(split[1], clause.joiner))
            elif split[0].lower() in _PRONOUNS or clause.joiner in ("while", "whilst", "as", "meanwhile"):
                layers["action"].append(clause)
            else:
                # Someone else doing something is background, where the lint can weigh it against the subject.
                layers["environment"].append(clause)
        elif kind == "action" or (kind == "other" and clause.joiner in ("then", "and then")):
            layers["action"].append(clause)
        elif kind == "other":
            if (
                subject_at is not None
                and index == subject_at + 1
                and clause.joiner in ("with", "and", "plus")
            ):
                layers["subject"].append(clause)
            else:
                layers["environment"].append(clause)
        else:
            layers[kind if kind in layers else "environment"].append(clause)

    values = {name: _join(parts) for name, parts in layers.items()}
    preset = PRESETS[goal] if goal else None
    defaults = {
        "camera": preset.camera if preset else DEFAULT_CAMERA,
        "environment": preset.environment if preset else DEFAULT_ENVIRONMENT,
        "finish": preset.finish if preset else DEFAULT_FINISH,
        "intent": preset.intent if preset else DEFAULT_INTENT,
    }
    if _ENVIRONMENT.search(f"{values['subject']} {values['action']}"):
        # "pours latte art in a sunlit cafe" already sets the scene; a default setting would contradict it.
        del defaults["environment"]
    filled = tuple(name for name in LAYERS if name in defaults and not values[name])
    for name in filled:
        values[name] = defaults[name]
    return Draft(spec=PromptSpec.from_dict(dict(values)), filled=filled, goal=goal)


def draft(idea: str, *, goal: Goal | None = None) -> PromptSpec:
    """The deterministic offline drafter: any string in, a complete spec out (missing layers defaulted)."""
    return draft_with_notes(idea, goal=goal).spec

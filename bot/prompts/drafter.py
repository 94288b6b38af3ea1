"""The offline drafter: a free-text idea read into the six layers, a sequence into beats."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bot.domain import Beat, PromptSpec
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
    _INTENT_SECONDS,
    _LENS,
    _MOTION,
    _MOTION_BASES,
    _NOUN_LIKE,
    _PREPOSITIONS,
    _PRONOUNS,
    _STOPWORDS,
    _WORD,
    LAYERS,
    _clean,
    _content_words,
    _has_camera,
    _verbs_in,
    _words,
    language_of,
    motion_verbs,
)
from bot.storyboard import MAX_BEATS, spread

# --- drafting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A drafted spec plus the layers that were defaulted (so lint can say "you gave no camera")."""

    spec: PromptSpec
    filled: tuple[str, ...]
    goal: Goal | None = None
    notes: tuple[str, ...] = ()  # what the card should say about the drafting: a condensed brief, a language
    kept_whole: bool = False  # the idea is the prompt as written (another language): no layers to check


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
    bare = _bare_plural_verb(text)
    if bare is None:
        bare = _unknown_verb(text)
    if bare is not None and (not verbs or bare < verbs[0].start() or verbs[0].start() == 0):
        cut = bare
    elif verbs:
        cut = verbs[0].start()
        # "Waves crash against…": a plural noun that is also a verb is the subject when a verb follows it.
        if cut == 0 and len(verbs) > 1 and not text[verbs[0].end() : verbs[1].start()].strip():
            cut = verbs[1].start()
    else:
        return None
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
    action = re.sub(r"^(?:who|that|which)\s+", "", text[cut:].strip(), flags=re.IGNORECASE)
    return subject.strip(" ,"), action


def _without_phrases(text: str, vocabulary: re.Pattern[str]) -> str:
    return vocabulary.sub(lambda m: " " if len(_words(m.group(0))) > 1 else m.group(0), text)


def _bare_plural_verb(text: str) -> int | None:
    """Where "pulse" in "neon jellyfish pulse through…" starts: a bare verb that is also a noun, after a plural."""
    tokens = list(_WORD.finditer(text))
    for index in range(1, len(tokens)):
        word = tokens[index].group(0).lower()
        if word not in _NOUN_LIKE or word not in _MOTION_BASE_SET:
            continue
        before = tokens[index - 1].group(0).lower()
        plural = (before.endswith("s") and not before.endswith("ss")) or before in _PLURALS
        after = tokens[index + 1].group(0).lower() if index + 1 < len(tokens) else ""
        if (
            plural
            and before not in _STOPWORDS
            and (not after or after in _PREPOSITIONS | _DETERMINERS | _AWAY or after.endswith("ly"))
        ):
            return tokens[index].start()
    return None


_RELATIVE = re.compile(r"\s(?:who|that|which)\s+([a-z][\w-]*)\b", re.IGNORECASE)


def _unknown_verb(text: str) -> int | None:
    """A verb the vocabulary lacks, placed by grammar: after "who"/"that", or an -s word between a singular
    noun and an object ("an old fisherman hauls a net")."""
    relative = _RELATIVE.search(text)
    if relative and _content_words(text[: relative.start()]):
        return relative.start(1)
    tokens = list(_WORD.finditer(text))
    for index in range(1, len(tokens) - 1):
        word = tokens[index].group(0)
        before = tokens[index - 1].group(0).lower()
        after = tokens[index + 1].group(0).lower()
        if (
            word.islower()
            and word.endswith("s")
            and not word.endswith(("ss", "us", "is"))
            and not before.endswith("s")
            and before not in _STOPWORDS
            and after in (_DETERMINERS - {"one"}) | {"his", "her", "its", "their"}
        ):
            return tokens[index].start()
    return None


_PLURALS = frozenset(
    {"fish", "jellyfish", "sheep", "deer", "people", "children", "men", "women", "geese", "mice", "feet",
     "cattle", "police", "crew", "bison", "salmon", "shrimp", "squid", "aircraft"}
)  # fmt: skip
_AWAY = frozenset({"away", "up", "down", "back", "forward", "forwards", "out", "off", "by", "past", "in"})
_MOTION_BASE_SET = frozenset(_MOTION_BASES)
# The head noun of a verbless phrase says what it is: "warm home-video feel" is a look, "a quiet counter" a place.
_FINISH_HEADS = frozenset(
    {"look", "looks", "feel", "style", "tone", "tones", "palette", "grade", "grading", "lighting", "light",
     "glow", "texture", "textures", "finish", "aesthetic", "aesthetics", "vibe", "mood", "colours", "colors",
     "colour", "color", "grain", "bokeh", "contrast", "detail", "details", "shading", "render", "filter",
     "stock", "treatment", "hues", "hue", "highlights", "shadows", "saturation", "sheen", "haze",
     "reflections", "flares", "glints"}
)  # fmt: skip
_INTENT_HEADS = frozenset(
    {"teaser", "trailer", "ad", "advert", "commercial", "promo", "spot", "reel", "short", "loop", "intro",
     "outro", "bumper", "video", "gif", "explainer", "announcement", "packshot", "clip"}
)  # fmt: skip
_TOWARD_VIEWER = re.compile(
    r"\b(?:toward|towards|to|at|into|in)\s+(?:the\s+)?(?:lens|camera|viewer)\b", re.IGNORECASE
)


def _is_camera(text: str) -> bool:
    """Shot, lens and movement language, wherever it is: "the camera glides low", but not "turns to the lens"."""
    text = _TOWARD_VIEWER.sub(" ", text)
    return _has_camera(text) or re.search(r"\bcamera\b|\bshot on\b", text, re.IGNORECASE) is not None


def _head(text: str) -> str:
    """The last word before the first preposition: the noun a verbless phrase is about."""
    cut = re.search(r"\s(?:in|on|at|of|through|under|over|with|by|from|into|for|against)\s", text, re.I)
    words = _words(text[: cut.start()] if cut else text)
    return words[-1].lower() if words else ""


def _kind_of(text: str) -> str:
    if _is_camera(text):
        return "camera"
    head = _head(text)
    verbs = {m.group(0).lower() for m in _verbs_in(text, _ANY_VERB)}
    if head in _FINISH_HEADS and verbs <= {head} and _bare_plural_verb(text) is None:
        return "finish"
    split = _subject_verb(text)
    if split and split[0]:
        first = _words(split[0])[0].lower() if _words(split[0]) else ""
        if _content_words(split[0]) or split[0].lower() in _PRONOUNS:
            return "event"
        # "Wind ripples", "rain runs down the glass": a place or weather word can be the one doing it.
        if first not in _PREPOSITIONS and len(_words(split[0])) <= 4 and motion_verbs(split[1]):
            return "event"
    if split and not split[0] and motion_verbs(text):
        return "action"
    if head in _FINISH_HEADS and not _verbs_in(text, _MOTION):
        return "finish"
    if (_INTENT.search(text) and not motion_verbs(text)) and (
        head in _INTENT_HEADS or _INTENT_SECONDS.search(text)
    ):
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
    if not _is_camera(clause.text):
        return [clause]
    split = _subject_verb(clause.text)
    if not split or not split[0] or not _content_words(split[0]):
        return [clause]
    masked = _TOWARD_VIEWER.sub(lambda m: " " * len(m.group(0)), clause.text)
    found = _CAMERA.search(masked) or _LENS.search(masked) or _AT_HEIGHT.search(masked)
    if found is None:
        return [clause]
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


# Prepositions of a path keep a short back-reference in the action ("trots across the field"); prepositions of a
# place hand the whole phrase to the environment ("in a dim kitchen").
_PATH = frozenset(
    {"through", "across", "along", "over", "past", "around", "up", "down", "into", "onto", "toward", "towards",
     "alongside", "round", "off"}
)  # fmt: skip
_PLACE = frozenset(
    {"in", "at", "on", "inside", "under", "beneath", "below", "by", "beside", "near", "among", "amid", "atop",
     "from", "within", "outside", "above", "behind", "against", "amongst", "underneath"}
)  # fmt: skip
_PHRASE = re.compile(r"\s(" + "|".join(sorted(_PATH | _PLACE | {"of", "with", "until", "to"})) + r")\s", re.I)


def _is_place(text: str) -> bool:
    """A noun phrase naming where or when: a place, a surface, the time or the weather."""
    text = _TOWARD_VIEWER.sub(" ", text)
    if _ENVIRONMENT.search(_without_phrases(text, _FINISH)):
        return True
    # A capitalised name after "in"/"at" is a place: "in Tokyo", "at Shibuya".
    words = _words(text)
    return bool(words) and all(w[:1].isupper() for w in words if w.lower() not in _DETERMINERS)


# What "in a …" names when it is not a place: a hand, a circle, slow motion.
_NOT_PLACES = frozenset(
    {"hand", "hands", "mouth", "arms", "circle", "circles", "place", "time", "line", "row", "loop", "unison",
     "motion", "focus", "frame", "shot", "style", "air", "slow", "silence", "sync", "half", "pieces", "one"}
)  # fmt: skip


def _is_setting(preposition: str, phrase: str) -> bool:
    """ "in a graffiti-covered underpass": after in/inside/at, a noun phrase is where it happens."""
    words = _words(phrase)
    head = _head(phrase)
    return (
        preposition in ("in", "inside", "within", "at")
        and bool(words)
        and words[0].lower() in ("a", "an", "the")
        and head not in _NOT_PLACES
        and head not in _FINISH_HEADS
        and not _is_camera(phrase)
    )


def _moving(phrase: str) -> bool:
    """A clause hiding in a phrase ("a tower that topples"); participles used as adjectives ("a dimly lit bar",
    "a frozen lake") do not count."""
    for match in _verbs_in(phrase, _MOTION):
        word = match.group(0).lower()
        before = _words(phrase[: match.start()])
        if (
            word.endswith(("ed", "en"))
            or word in ("lit", "burst")
            or (before and before[-1].lower().endswith("ly"))
        ):
            continue
        return True
    return False


def _the(phrase: str) -> str:
    """A short back-reference to a noun phrase: "a switchback mountain road in heavy fog" → "the road"."""
    head = _head(phrase)
    return f"the {head}" if head else ""


def _split_place(action: str) -> tuple[str, list[str]]:
    """The action without its setting, and the setting: "slices tuna at a quiet counter in Tokyo" →
    ("slices tuna", ["at a quiet counter in Tokyo"]); a place it moves through leaves a reference behind."""
    pieces = _PHRASE.split(f" {action} ")
    head = pieces[0].strip()
    phrases = [(pieces[i].lower(), pieces[i + 1].strip()) for i in range(1, len(pieces) - 1, 2)]
    kept: list[str] = []
    places: list[str] = []
    # The verb's own object can be the place: "climbs a switchback mountain road".
    verb = _verbs_in(head, _ANY_VERB)
    if (verb and verb[0].start() == 0) or (verb and not _content_words(head[: verb[0].start()])):
        obj = head[verb[0].end() :].strip() if verb else ""
        if (
            obj
            and _words(obj)[0].lower() in _DETERMINERS
            and _is_place(obj)
            and not _verbs_in(obj, _ANY_VERB)
        ):
            places.append(obj)
            head = f"{head[: verb[0].end()]} {_the(obj)}".strip()
    in_place = bool(places)
    for preposition, phrase in phrases:
        if not phrase:
            continue
        if in_place and preposition in _PLACE | {"of", "over", "with"} and preposition != "from":
            places[-1] = f"{places[-1]} {preposition} {phrase}"
            continue
        if (
            preposition in _PLACE | _PATH
            and (_is_place(phrase) or _is_setting(preposition, phrase))
            and not (_moving(phrase))
        ):
            if preposition in _PATH:
                places.append(phrase)
                kept.append(f"{preposition} {_the(phrase)}")
            else:
                places.append(f"{preposition} {phrase}")
            in_place = True
            continue
        in_place = False
        kept.append(f"{preposition} {phrase}")
    if not places:
        return action, []
    return _clean(" ".join([head, *kept])), [_clean(p) for p in places]


def _reveal(clause: _Clause) -> list[_Clause]:
    """ "close-up of a strawberry dropping into milk" → the camera on its subject, then what it does."""
    found = re.search(
        r"\s(?:of|on|to reveal|revealing|reveals|as it reveals|finding|onto)\s+(.+)$", clause.text, re.I
    )
    if not found:
        return [clause]
    target = found.group(1)
    split = _subject_verb(target)
    words = _words(target)
    if not split or not split[0] or not words or words[0].lower() not in _DETERMINERS | {"two", "three"}:
        return [clause]
    camera = f"{clause.text[: found.start(1)].strip()} {_the(split[0])}"
    return [_Clause(camera, clause.joiner), _Clause(target, "")]


def _head_noun(subject: str) -> str:
    words = [w for w in _words(subject) if w.lower() not in _STOPWORDS]
    return words[-1].lower() if words else "subject"


@dataclass(frozen=True)
class _Layers:
    values: dict[str, str]
    steps: list[str]


def _read(text: str) -> _Layers:
    """One shot's sentence read into layers; `steps` are the actions in order when it is a sequence."""
    clauses = [piece for clause in _split_clauses(text) for piece in _peel_camera(clause)]
    clauses = [
        piece for clause in clauses for piece in (_reveal(clause) if _is_camera(clause.text) else [clause])
    ]
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
    steps: list[str] = []

    subject_at = next((i for i, kind in enumerate(kinds) if kind == "event"), None)
    if subject_at is None:
        subject_at = next((i for i, kind in enumerate(kinds) if kind == "object"), None)
    if subject_at is None:
        subject_at = next((i for i, kind in enumerate(kinds) if kind == "other"), None)
    if subject_at is None:
        described = (
            i
            for i, k in enumerate(kinds)
            if (k in ("environment", "finish") and _content_words(clauses[i].text))
            # "rain on a window": with nothing else named, the weather is the subject.
            or (k == "environment" and _words(clauses[i].text)[0].lower() not in _PREPOSITIONS)
        )
        subject_at = next(described, None)
    # "A chef, a waiter, a cat and three customers argue…": a list of names before the verb is the subject.
    listed: list[str] = []
    if subject_at is not None and kinds[subject_at] == "event":
        start = subject_at
        while (
            start > 0
            and kinds[start - 1] == "other"
            and _words(clauses[start - 1].text)[:1]
            and (_words(clauses[start - 1].text)[0].lower() in _DETERMINERS)
        ):
            start -= 1
        listed = [clauses[i].text for i in range(start, subject_at)]
        for i in range(start, subject_at):
            kinds[i] = "listed"

    subject = ""
    main_moves = False
    for index, (clause, kind) in enumerate(zip(clauses, kinds, strict=True)):
        if kind == "listed":
            continue
        if index == subject_at:
            split = _subject_verb(clause.text) if kind in ("event", "object") else None
            if split and split[0]:
                subject = ", ".join([*listed, split[0]])
                action, places = _split_place(split[1])
                layers["action"].append(_Clause(action, ""))
                layers["environment"] += [_Clause(p, "") for p in places]
                steps.append(action)
                main_moves = bool(motion_verbs(action))
            elif kind == "other":
                subject, setting = _split_subject_setting(clause.text)
                if setting:
                    layers[
                        _kind_of(setting) if _kind_of(setting) in ("finish", "camera") else "environment"
                    ].append(_Clause(setting, ""))
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
            own = subject and _same_subject(split[0], subject) and split[0].lower() not in _PRONOUNS
            concurrent = clause.joiner in ("while", "whilst", "as", "meanwhile")
            if own or split[0].lower() in _PRONOUNS:
                action, places = _split_place(split[1] if own else clause.text)
                layers["action"].append(_Clause(action, clause.joiner))
                layers["environment"] += [_Clause(p, "") for p in places]
                steps.append(action if own or clause.joiner else clause.text)
                main_moves = main_moves or bool(motion_verbs(action))
            elif concurrent and not main_moves and motion_verbs(split[1]):
                # "sits on black velvet while gold dust swirls around it": what moves in the frame is the action.
                layers["action"].append(clause)
                main_moves = True
            else:
                # Someone else doing something is background, where the lint can weigh it against the subject.
                layers["environment"].append(clause)
        elif kind == "action" or (kind == "other" and clause.joiner in ("then", "and then")):
            action, places = _split_place(clause.text)
            layers["action"].append(_Clause(action, clause.joiner))
            layers["environment"] += [_Clause(p, "") for p in places]
            steps.append(action)
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
    return _Layers(values={name: _join(parts) for name, parts in layers.items()}, steps=steps)


# --- sequences, long briefs, other languages -------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=\S)|\n+|\s*(?:^|\s)\(?\d{1,2}[.)]\s+")
_SEQUENCE = re.compile(
    r"\b(?:then|and then|after that|afterwards|afterward|next|finally|after|before|until|once|later|"
    r"first|at the end|in the end)\b|(?:^|\s)\(?\d{1,2}[.)]\s",
    re.IGNORECASE,
)
_STEP = re.compile(
    r"\s*(?:[.!?;]\s+|\n+|(?:^|\s)\(?\d{1,2}[.)]\s+|,?\s+(?:and then|then|after that|afterwards|next|finally|"
    r"until|before|later)\s+)",
    re.IGNORECASE,
)
LONG_BRIEF_WORDS = 60


def _steps(text: str) -> list[str]:
    """A sequence's moments in order: numbered steps, "then"/"after that"/"until", or one sentence each."""
    return [_clean(p) for p in _STEP.split(text) if _clean(p) and _words(p)]


def _beat_text(step: str, subject: str) -> str:
    """A step that starts with its verb gets the subject back: "stops at a puddle" → "the robot stops…"."""
    split = _subject_verb(step)
    if split is not None and not split[0] and subject:
        return f"the {_head_noun(subject)} {step}"
    return step


def _is_event(sentence: str) -> bool:
    return any(_kind_of(c.text) == "event" for c in _split_clauses(sentence))


@dataclass(frozen=True)
class Brief:
    """What was drafted from a long brief: the main shot, and the sentences left out of it."""

    main: str
    left_out: tuple[str, ...]


def condense(text: str, *, limit: int = LONG_BRIEF_WORDS) -> Brief:
    """A long brief cut down to its main shot: the first sentence where something happens, plus the short
    sentences that only say camera, place or look; everything else is listed as left out."""
    sentences = [s for s in (_clean(p) for p in re.split(r"(?<=[.!?…])\s+|\n+", text)) if s]
    if len(_words(text)) <= limit or len(sentences) < 2:
        return Brief(main=text, left_out=())
    main_at = next((i for i, s in enumerate(sentences) if _is_event(s)), 0)
    kept = [main_at]
    seen = {_kind_of(c.text) for c in _split_clauses(sentences[main_at])}
    for index, sentence in enumerate(sentences):
        if index == main_at or len(_words(sentence)) > 20:
            continue
        kinds = {_kind_of(c.text) for c in _split_clauses(sentence)}
        if kinds and kinds <= {"camera", "finish", "environment", "intent"} and not kinds & seen:
            kept.append(index)
            seen |= kinds
    kept.sort()
    main = ". ".join(sentences[i] for i in kept)
    return Brief(main=main, left_out=tuple(s for i, s in enumerate(sentences) if i not in kept))


def draft_with_notes(idea: str, *, goal: Goal | None = None) -> Draft:
    """Restructure a free-text idea into the six layers; defaulted layers are named in `filled`.

    A sequence ("then", numbered steps, several sentences of action) or the storyboard goal also gets 2–4
    beats; a long brief is condensed to its main shot (what was left out is in `notes`); an idea in another
    language is kept whole as the prompt, since a layer split of words this drafter cannot read would be fake.
    """
    text = _clean(idea)
    preset = PRESETS[goal] if goal else None
    language = language_of(text)
    if language is not None:
        note = (
            f"This idea looks like {language}; the offline drafter reads English only, so the idea is kept "
            "whole as the prompt instead of being split into layers."
        )
        spec = PromptSpec(subject=text, action="", camera="", environment="", finish="", intent="")
        return Draft(spec=spec, filled=(), goal=goal, notes=(note,), kept_whole=True)
    notes: list[str] = []
    brief = condense(text)
    if brief.left_out:
        shown = "; ".join(f"“{_short(s)}”" for s in brief.left_out[:6])
        more = f" and {len(brief.left_out) - 6} more" if len(brief.left_out) > 6 else ""
        notes.append(
            f"A long brief ({len(_words(text))} words) was condensed to its main shot. Left out: {shown}{more}."
        )
        text = brief.main
    sequence = (
        _SEQUENCE.search(text) is not None or sum(_is_event(s) for s in _SENTENCE.split(text) if s) >= 2
    )
    first = _steps(text)[0] if sequence and _steps(text) else text
    read = _read(text)
    values = dict(read.values)
    beats: tuple[Beat, ...] = ()
    if sequence or goal is Goal.STORYBOARD:
        steps = _steps(text) if sequence else []
        subject = values["subject"]
        if len(steps) >= 2:
            texts = [_beat_text(s, subject) for s in steps[:MAX_BEATS]]
            # The layers describe the opening shot; what follows lives in the beats.
            opening = _read(first).values["action"]
            values["action"] = opening or values["action"]
            if len(steps) > MAX_BEATS:
                notes.append(f"The idea has {len(steps)} steps; the storyboard keeps the first {MAX_BEATS}.")
        elif subject:
            # One action and the storyboard goal: an opening and a closing card the person can rewrite.
            head = _head_noun(subject)
            texts = [
                f"{subject} {values['action']}".strip(),
                f"the {head} comes to a stop and turns toward camera",
            ]
        else:
            texts = []
        beats = spread(texts, seconds=preset.seconds if preset else max(8, 2 * len(texts)))
    defaults = {
        "camera": preset.camera if preset else DEFAULT_CAMERA,
        "environment": preset.environment if preset else DEFAULT_ENVIRONMENT,
        "finish": preset.finish if preset else DEFAULT_FINISH,
        "intent": preset.intent if preset else DEFAULT_INTENT,
    }
    filled = tuple(name for name in LAYERS if name in defaults and not values[name])
    for name in filled:
        values[name] = defaults[name]
    spec = replace(PromptSpec.from_dict(dict(values)), beats=beats)
    return Draft(spec=spec, filled=filled, goal=goal, notes=tuple(notes))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def draft(idea: str, *, goal: Goal | None = None) -> PromptSpec:
    """The deterministic offline drafter: any string in, a complete spec out (missing layers defaulted)."""
    return draft_with_notes(idea, goal=goal).spec

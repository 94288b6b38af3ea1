"""Thread replies as commands (`remix #2 make it golden hour`, `recut #1 1.5-4`, `pick #2`…) or chat."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from bot.domain import GenerationKind

# Rounds hold a handful of variations, remixes add a few more; anything past this is a typo or a probe.
MAX_VARIATION_NUMBER = 999
# Clips are seconds long; a recut time past ten minutes can only be a mistake.
MAX_RECUT_SECONDS = 600.0
MIN_EXTEND_SECONDS = 1
MAX_EXTEND_SECONDS = 20
MAX_CHANGE_CHARS = 400  # a remix's change or an extension's direction; the edit modal's fields share the cap


class Verb(StrEnum):
    REMIX = "remix"
    RECUT = "recut"
    EXTEND = "extend"
    LOOP = "loop"
    BLEND = "blend"
    AGAIN = "again"
    PICK = "pick"
    HELP = "help"

    @property
    def kind(self) -> GenerationKind | None:
        """The generation this verb creates; None for `pick` and `help`, which create none."""
        return _KINDS.get(self)


_KINDS = MappingProxyType(
    {
        Verb.REMIX: GenerationKind.REMIX,
        Verb.RECUT: GenerationKind.RECUT,
        Verb.EXTEND: GenerationKind.EXTEND,
        Verb.LOOP: GenerationKind.LOOP,
        Verb.BLEND: GenerationKind.BLEND,
        Verb.AGAIN: GenerationKind.AGAIN,
    }
)

USAGE = MappingProxyType(
    {
        Verb.REMIX: "`remix #2 make it golden hour` — one change to one variation",
        Verb.RECUT: "`recut #1 1.5-4` — keep seconds 1.5 to 4 of a variation",
        Verb.EXTEND: "`extend #1 4s the robot turns to camera` — continue a variation (seconds optional)",
        Verb.LOOP: "`loop #3` — make a variation loop seamlessly",
        Verb.BLEND: "`blend #1 #3` — a transition from one variation into another",
        Verb.AGAIN: "`again` or `again #2` — re-roll the same prompt",
        Verb.PICK: "`pick #2` — the round's owner picks the winner (a reason after it is kept)",
        Verb.HELP: "`help` — this list",
    }
)

HELP_TEXT = "Reply in this thread with:\n" + "\n".join(f"• {usage}" for usage in USAGE.values())


@dataclass(frozen=True)
class ReplyCommand:
    """A parsed thread command. `change` is the remix change, the extend direction, or the pick reason."""

    verb: Verb
    numbers: tuple[int, ...] = ()
    change: str | None = None
    start: float | None = None
    end: float | None = None
    seconds: int | None = None

    @property
    def kind(self) -> GenerationKind | None:
        return self.verb.kind


@dataclass(frozen=True)
class ReplyError:
    """A known verb with unusable arguments: what is wrong, and how to write it."""

    verb: Verb
    message: str
    hint: str


# Slack sends user-typed `<`, `>`, `&` escaped, and a leading mention as a `<@U…>` token.
_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")
_VERB = re.compile(r"^([a-z]+)(?=$|[\s#\d!?.,:;])", re.IGNORECASE | re.ASCII)
_NUMBER = re.compile(r"^#\s*(\d+)\b", re.ASCII)
_HASH_OR_DIGIT = re.compile(r"^[#\d]", re.ASCII)
_RANGE = re.compile(
    r"^(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\s*(?:-|–|—|to)\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\b\s*",
    re.IGNORECASE | re.ASCII,
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b\s*", re.IGNORECASE | re.ASCII)
# Words so common in chat ("again, I think…", "help me out", "loop me in") that they only count as commands
# when the bot is clearly addressed: a mention, the verb on its own, or a `#N` right after it.
_CHATTY = frozenset({Verb.AGAIN, Verb.HELP, Verb.PICK, Verb.LOOP, Verb.EXTEND, Verb.BLEND})


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _normalise(text: str) -> str:
    text = "".join(" " if (ord(ch) < 32 or ord(ch) == 127) else ch for ch in text)
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def _error(verb: Verb, message: str) -> ReplyError:
    return ReplyError(verb=verb, message=message, hint=f"Try {USAGE[verb]}.")


def _take_numbers(rest: str, verb: Verb) -> tuple[tuple[int, ...], str] | ReplyError:
    """Leading `#N` references; what follows them is returned untouched."""
    numbers: list[int] = []
    while True:
        rest = rest.lstrip(" ,&")
        if rest.lower().startswith("and "):
            rest = rest[4:].lstrip()
        match = _NUMBER.match(rest)
        if match is None:
            if rest.startswith("#"):
                return _error(verb, "Variations are written `#` and a number, like `#2`.")
            return tuple(numbers), rest.strip()
        digits = match.group(1)
        if len(digits) > len(str(MAX_VARIATION_NUMBER)) or int(digits) > MAX_VARIATION_NUMBER:
            shown = digits if len(digits) <= 6 else digits[:6] + "…"
            return _error(verb, f"There is no variation #{shown}.")
        if int(digits) == 0:
            return _error(verb, "Variations are numbered from #1.")
        numbers.append(int(digits))
        rest = rest[match.end() :]


def _needs_one(verb: Verb, numbers: tuple[int, ...]) -> ReplyError | None:
    if not numbers:
        return _error(verb, f"Which variation? `{verb.value}` needs a number like `#2`.")
    if len(numbers) > 1:
        return _error(verb, f"`{verb.value}` works on one variation at a time.")
    return None


def parse_reply(text: str) -> ReplyCommand | ReplyError | None:
    """A thread reply as a command, an explained mistake, or None for ordinary conversation (stay silent)."""
    mention = _MENTION.match(text)
    body = _normalise(_unescape(text[mention.end() :] if mention else text))
    found = _VERB.match(body)
    if found is None:
        return None
    try:
        verb = Verb(found.group(1).lower())
    except ValueError:
        return None
    rest = body[found.end() :].strip()
    bare = not rest.strip(" !?.")
    if verb in _CHATTY and not (mention or bare or _HASH_OR_DIGIT.match(rest)):
        return None
    if verb is Verb.HELP:
        return ReplyCommand(verb=verb)
    taken = _take_numbers(rest, verb)
    if isinstance(taken, ReplyError):
        return taken
    numbers, rest = taken
    return _PARSERS[verb](verb, numbers, rest)


def _remix(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if problem := _needs_one(verb, numbers):
        return problem
    change = rest.strip(" :,-–—")
    if not change:
        return _error(verb, f"What should change in #{numbers[0]}?")
    if problem := _too_long(verb, change):
        return problem
    return ReplyCommand(verb=verb, numbers=numbers, change=change)


def _too_long(verb: Verb, text: str) -> ReplyError | None:
    if len(text) <= MAX_CHANGE_CHARS:
        return None
    return _error(
        verb, f"Keep it under {MAX_CHANGE_CHARS} characters (it is {len(text)}); nothing was started."
    )


def _recut(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if problem := _needs_one(verb, numbers):
        return problem
    match = _RANGE.match(rest)
    if match is None:
        return _error(verb, "Which part should stay? Give a start and end in seconds.")
    start, end = float(match.group(1)), float(match.group(2))
    if end > MAX_RECUT_SECONDS:
        return _error(verb, f"{end:g} s is longer than any clip here.")
    if end <= start:
        return _error(verb, f"The end ({end:g} s) must come after the start ({start:g} s).")
    return ReplyCommand(verb=verb, numbers=numbers, start=start, end=end)


def _extend(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if problem := _needs_one(verb, numbers):
        return problem
    seconds: int | None = None
    match = _DURATION.match(rest)
    if match:
        value = float(match.group(1))
        if not value.is_integer() or not MIN_EXTEND_SECONDS <= value <= MAX_EXTEND_SECONDS:
            return _error(
                verb,
                f"Extend by {MIN_EXTEND_SECONDS}–{MAX_EXTEND_SECONDS} whole seconds, not {match.group(1)} s.",
            )
        seconds = int(value)
        rest = rest[match.end() :]
    elif rest[:1].isdigit():  # a length we cannot read ("1e9s", "²s") must not become the direction
        return _error(verb, f"Extend by {MIN_EXTEND_SECONDS}–{MAX_EXTEND_SECONDS} whole seconds, like `4s`.")
    direction = rest.strip(" :,-–—")
    if problem := _too_long(verb, direction):
        return problem
    return ReplyCommand(verb=verb, numbers=numbers, change=direction or None, seconds=seconds)


def _loop(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if problem := _needs_one(verb, numbers):
        return problem
    return ReplyCommand(verb=verb, numbers=numbers)


def _blend(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if len(numbers) != 2:
        return _error(verb, f"`blend` needs exactly two variations (got {len(numbers)}).")
    if numbers[0] == numbers[1]:
        return _error(verb, "`blend` needs two different variations.")
    return ReplyCommand(verb=verb, numbers=numbers)


def _again(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if len(numbers) > 1:
        return _error(verb, "`again` re-rolls one variation at a time.")
    return ReplyCommand(verb=verb, numbers=numbers)


def _pick(verb: Verb, numbers: tuple[int, ...], rest: str) -> ReplyCommand | ReplyError:
    if problem := _needs_one(verb, numbers):
        return problem
    reason = rest.strip(" :,-–—")
    return ReplyCommand(verb=verb, numbers=numbers, change=reason or None)


_PARSERS = MappingProxyType(
    {
        Verb.REMIX: _remix,
        Verb.RECUT: _recut,
        Verb.EXTEND: _extend,
        Verb.LOOP: _loop,
        Verb.BLEND: _blend,
        Verb.AGAIN: _again,
        Verb.PICK: _pick,
    }
)


# --- the same commands from a variation's modal ---------------------------------------------------
# A modal names its variation already; its fields are checked here, by the same rules and caps as a reply,
# and a problem is keyed by the field so Slack shows it next to that field. Numbers are ASCII digits only
# ("²" and "٣" are digits to Python, not to someone reading them), as in the draft editor.

_FIELD_SECONDS = re.compile(r"\d{1,4}(?:\.\d{1,3})?", re.ASCII)


def field_seconds(text: str) -> float | None:
    """A time typed in a field ("1.5", "4 s"), else None."""
    text = text.strip().removesuffix("s").strip()
    return float(text) if _FIELD_SECONDS.fullmatch(text) else None


def remix_fields(change: str) -> ReplyCommand | dict[str, str]:
    change = _normalise(change).strip(" :,-–—")
    if not change:
        return {"change": "Say what should change, e.g. make it golden hour."}
    if len(change) > MAX_CHANGE_CHARS:
        return {"change": f"Keep it under {MAX_CHANGE_CHARS} characters (it is {len(change)})."}
    return ReplyCommand(verb=Verb.REMIX, change=change)


def recut_fields(start: str, end: str, *, length: float) -> ReplyCommand | dict[str, str]:
    """Keep `start`–`end` seconds of a clip `length` seconds long."""
    problems: dict[str, str] = {}
    first, last = field_seconds(start), field_seconds(end)
    shown = f"0–{length:.1f}"
    if first is None:
        problems["start"] = f"A time in seconds, like 1.5 (the clip runs {shown} s)."
    if last is None:
        problems["end"] = f"A time in seconds, like 4 (the clip runs {shown} s)."
    elif last > length + 0.05:
        problems["end"] = f"The clip is only {length:.1f} s long; end at {length:.1f} s or before."
    if first is not None and last is not None and "end" not in problems and last <= first:
        problems["end"] = f"The end must come after the start ({first:g} s)."
    if problems or first is None or last is None:
        return problems
    return ReplyCommand(verb=Verb.RECUT, start=first, end=last)


def extend_fields(seconds: str, direction: str) -> ReplyCommand | dict[str, str]:
    """Extend by `seconds` (blank: the reply's default) with `direction`, what happens next (optional)."""
    problems: dict[str, str] = {}
    count: int | None = None
    typed = seconds.strip().removesuffix("s").strip()
    if typed:
        if typed.isascii() and typed.isdigit() and MIN_EXTEND_SECONDS <= int(typed) <= MAX_EXTEND_SECONDS:
            count = int(typed)
        else:
            problems["seconds"] = f"{MIN_EXTEND_SECONDS}–{MAX_EXTEND_SECONDS} whole seconds, like 4."
    text = _normalise(direction).strip(" :,-–—")
    if len(text) > MAX_CHANGE_CHARS:
        problems["direction"] = f"Keep it under {MAX_CHANGE_CHARS} characters (it is {len(text)})."
    if problems:
        return problems
    return ReplyCommand(verb=Verb.EXTEND, change=text or None, seconds=count)

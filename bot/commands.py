"""`/sora` text as a typed command: draft, storyboard, recall, status, settings, help — or a mistake."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TypeAlias

from bot.prompts import Goal, parse_goal

# Long enough for a paragraph with a storyboard; longer than that is a pasted script, not an idea.
MAX_IDEA_CHARS = 2000
SUBCOMMANDS: tuple[str, ...] = ("draft", "storyboard", "recall", "status", "settings", "help")
EXAMPLE_IDEA = "a small delivery robot rolls through a rain-soaked neon alley at night"


@dataclass(frozen=True)
class DraftCommand:
    idea: str
    goal: Goal | None = None


@dataclass(frozen=True)
class RecallCommand:
    query: str


@dataclass(frozen=True)
class StatusCommand:
    pass


@dataclass(frozen=True)
class HelpCommand:
    pass


@dataclass(frozen=True)
class SettingsCommand:
    args: str = ""


@dataclass(frozen=True)
class StoryboardCommand:
    args: str = ""


@dataclass(frozen=True)
class CommandError:
    """What was wrong with the command, and what to type instead. Safe to echo: no raw user text inside."""

    message: str
    hint: str


Command: TypeAlias = (
    DraftCommand
    | RecallCommand
    | StatusCommand
    | HelpCommand
    | SettingsCommand
    | StoryboardCommand
    | CommandError
)

# Slack (and macOS) turn a typed "--" into an em or en dash, so every spelling of the flag is accepted.
_GOAL_FLAG = re.compile(
    r"(?:^|\s)(?:--|—|–|-)goal(?:\s*=\s*|\s+|$)(?:\"([^\"]*)\"|“([^”]*)”|'([^']*)'|([^\s\"“']+))?",
    re.IGNORECASE,
)


def _unescape(text: str) -> str:
    # `&amp;` last, so a user who typed "&lt;" literally gets "&lt;" back rather than "<".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _normalise(text: str) -> str:
    text = "".join(" " if (ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 else ch for ch in text)
    return text.replace("\u00a0", " ").strip()


def _shown(word: str) -> str:
    """User text echoed in an error, reduced to characters that cannot form a Slack mention or link."""
    safe = re.sub(r"[^\w.+#'-]", "", word)
    return safe[:24] + ("…" if len(safe) > 24 else "")


def _goal_list() -> str:
    return ", ".join(g.value for g in Goal)


def parse_command(text: str) -> Command:
    """Parse the text after `/sora`. Empty text is a request for help; mistakes come back as CommandError."""
    body = _normalise(_unescape(text))
    if not body:
        return HelpCommand()
    token, *tail = body.split(maxsplit=1)
    name = token.rstrip(":,").lower() or token
    rest = tail[0].strip() if tail else ""
    if name == "draft":
        return _draft(rest)
    if name == "recall":
        query = " ".join(rest.split())
        if not query:
            return CommandError(
                message="`/sora recall` needs something to look for.",
                hint="e.g. `/sora recall neon robot` or `/sora recall slow push-in`.",
            )
        return RecallCommand(query=query)
    if name == "status":
        return StatusCommand()
    if name in ("help", "?"):
        return HelpCommand()
    if name == "settings":
        return SettingsCommand(args=rest)
    if name == "storyboard":
        return StoryboardCommand(args=rest)
    return _unknown(name)


def _draft(rest: str) -> Command:
    goal: Goal | None = None
    flags = list(_GOAL_FLAG.finditer(rest))
    for flag in flags:
        value = next((g for g in flag.groups() if g is not None), "").strip()
        if not value:
            return CommandError(
                message="`--goal` needs a value.",
                hint=f"Goals: {_goal_list()}. e.g. `/sora draft --goal social {EXAMPLE_IDEA}`.",
            )
        goal = parse_goal(value)
        if goal is None:
            return CommandError(
                message=f"Unknown goal `{_shown(value)}`.",
                hint=f"Goals: {_goal_list()} (short forms work too: ad, social, hero, loop, story, style).",
            )
    idea = _GOAL_FLAG.sub(" ", rest) if flags else rest
    idea = re.sub(r"[ \t]+", " ", idea).strip()
    if not idea:
        return CommandError(
            message="`/sora draft` needs an idea.",
            hint=f"e.g. `/sora draft {EXAMPLE_IDEA}`.",
        )
    if len(idea) > MAX_IDEA_CHARS:
        return CommandError(
            message=f"That idea is {len(idea):,} characters; the limit is {MAX_IDEA_CHARS:,}.",
            hint="Keep it to one subject, one action and one camera move; use `/sora storyboard` for beats.",
        )
    return DraftCommand(idea=idea, goal=goal)


def _unknown(name: str) -> CommandError:
    known = ", ".join(f"`{c}`" for c in SUBCOMMANDS)
    guess = difflib.get_close_matches(name, SUBCOMMANDS, n=1, cutoff=0.6)
    if guess:
        return CommandError(
            message=f"Unknown command `{_shown(name)}`. Did you mean `{guess[0]}`?",
            hint=f"Commands: {known}.",
        )
    return CommandError(
        message=f"Unknown command `{_shown(name)}`.",
        hint=f"Commands: {known}. To draft an idea: `/sora draft {EXAMPLE_IDEA}`.",
    )

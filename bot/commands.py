"""`/sora` text as a typed command: draft, storyboard, recall, status, settings, export, help — or a mistake."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TypeAlias

from bot.prompts import Explore, Goal, parse_explore, parse_goal
from bot.votes import CANCEL_EMOJI, MAX_RULE_EMOJI, normalise_emoji

# Long enough for a paragraph with a storyboard; longer than that is a pasted script, not an idea.
MAX_IDEA_CHARS = 4000  # what Slack sends of a slash command's text; a long brief is condensed, not refused
SUBCOMMANDS: tuple[str, ...] = ("draft", "storyboard", "recall", "status", "settings", "export", "help")
EXAMPLE_IDEA = "a small delivery robot rolls through a rain-soaked neon alley at night"


@dataclass(frozen=True)
class DraftCommand:
    idea: str
    goal: Goal | None = None
    provider: str | None = None
    explore: Explore | None = None  # the layer the round varies; None: re-rolls of one prompt


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
    """`/sora settings` alone shows the channel's defaults; `key=value` pairs change them."""

    changes: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class StoryboardCommand:
    args: str = ""


@dataclass(frozen=True)
class ExportCommand:
    """`/sora export [round id] [md|csv|json]`: None is the latest round of the channel; Markdown by default."""

    round_id: int | None = None
    fmt: str = "md"


EXPORT_FORMATS: dict[str, str] = {"md": "md", "markdown": "md", "csv": "csv", "json": "json"}
MAX_ROUND_ID_DIGITS = 12


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
    | ExportCommand
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
        return parse_settings(rest)
    if name == "storyboard":
        return StoryboardCommand(args=rest)
    if name == "export":
        return parse_export(rest)
    return _unknown(name)


def parse_export(rest: str) -> ExportCommand | CommandError:
    """`12 csv`, `csv 12`, `#12`, `json` or nothing: at most a round id (ASCII digits) and a format, once each."""
    usage = "e.g. `/sora export` (this channel's latest round, Markdown), `/sora export 12 csv` or `json`."
    round_id: int | None = None
    fmt: str | None = None
    words = rest.split()
    if len(words) > 2:
        return CommandError(message="`/sora export` takes a round id and a format at most.", hint=usage)
    for word in words:
        lowered = word.lower().lstrip("#")
        if lowered in EXPORT_FORMATS and fmt is None:
            fmt = EXPORT_FORMATS[lowered]
        elif re.fullmatch(r"[0-9]+", lowered, re.ASCII) and round_id is None:
            if len(lowered) > MAX_ROUND_ID_DIGITS or int(lowered) == 0:
                return CommandError(message=f"`{_shown(word)}` is not a round id.", hint=usage)
            round_id = int(lowered)
        else:
            return CommandError(message=f"`{_shown(word)}` is not a round id or a format.", hint=usage)
    return ExportCommand(round_id=round_id, fmt=fmt or "md")


_PROVIDER_FLAG = re.compile(r"(?:^|\s)(?:--|—|–|-)provider(?:\s*=\s*|\s+|$)([a-z0-9_-]*)", re.IGNORECASE)
_EXPLORE_FLAG = re.compile(r"(?:^|\s)(?:--|—|–|-)explore(?:\s*=\s*|\s+|$)([^\s]*)", re.IGNORECASE)


def _explore_list() -> str:
    return ", ".join(f"`{layer.value}`" for layer in Explore)


def _draft(rest: str) -> Command:
    provider: str | None = None
    provider_flags = list(_PROVIDER_FLAG.finditer(rest))
    for flag in provider_flags:
        provider = flag.group(1).strip().lower()
        if not provider:
            return CommandError(
                message="`--provider` needs a name.",
                hint="e.g. `--provider local`; `/sora status` lists them.",
            )
    if provider_flags:
        rest = _PROVIDER_FLAG.sub(" ", rest)
    explore: Explore | None = None
    explore_flags = list(_EXPLORE_FLAG.finditer(rest))
    for flag in explore_flags:
        value = flag.group(1).strip()
        explore = parse_explore(value)
        if explore is None:
            said = (
                f"Unknown layer `{_shown(value)}` for `--explore`." if value else "`--explore` needs a layer."
            )
            return CommandError(
                message=said,
                hint=f"Layers a round can explore: {_explore_list()}. "
                f"e.g. `/sora draft --explore camera {EXAMPLE_IDEA}`.",
            )
    if explore_flags:
        rest = _EXPLORE_FLAG.sub(" ", rest)
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
    return DraftCommand(idea=idea, goal=goal, provider=provider, explore=explore)


SETTINGS_KEYS: dict[str, str] = {
    "provider": "the video provider drafts here start with (`/sora status` lists them)",
    "model": "the provider's model id, or `default`",
    "goal": "the goal preset drafts here start with, or `none`",
    "vote": "minutes a round stays open for votes (1–10080)",
    "emoji": f"the reactions that count as votes, up to {MAX_RULE_EMOJI} (e.g. `emoji=:+1: :fire:`), or `default`",
    "multi": "`off`: one vote per person per round (a new vote moves it); `on`: one vote per variation",
    "owner_votes": "`on` lets the round's owner vote, `off` doesn't count their vote",
    "quorum": "close a round as soon as this many people have voted (1–1000), or `off`",
    "blind": "`on`: votes are cast with a button, nobody sees who voted for what and counts stay hidden "
    "until the round closes; `off`: reactions, counted live",
    "tie": "minutes the owner has to break a tie before the earliest tied variation wins (0–1440), or `default`",
    "budget": "dollars this channel may spend per day (up to 999999.99), or `none` for no limit",
}
_ON = {"on", "yes", "true", "1"}
_OFF = {"off", "no", "false", "0"}
_CLEAR = {"none", "default", "unset", "off", "-"}


def parse_settings(rest: str) -> SettingsCommand | CommandError:
    """`provider=fal vote=30 blind=on budget=25 goal=social` → validated changes, or what is wrong.

    `emoji` takes several names: `emoji=:+1: :fire:`, `emoji=+1,fire` or Slack's `emoji=:+1::fire:`."""
    changes: list[tuple[str, object]] = []
    usage = "e.g. `/sora settings vote=30 quorum=3 multi=off blind=on` — keys: " + ", ".join(SETTINGS_KEYS)
    emoji: list[str] | None = None  # the names of the `emoji` key being read, while it is the last key
    for pair in rest.replace(",", " ").split():
        key, sep, value = pair.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep and emoji is not None:  # more names for `emoji=`
            problem = _more_emoji(emoji, pair)
            if problem is not None:
                return problem
            continue
        if emoji is not None:
            changes.append(("emoji", tuple(emoji) or None))
            emoji = None
        if key not in SETTINGS_KEYS:
            return CommandError(message=f"Unknown setting `{_shown(key)}`.", hint=usage)
        if not sep or not value:
            return CommandError(message=f"`{key}` needs a value: {SETTINGS_KEYS[key]}.", hint=usage)
        if key == "emoji":
            emoji = []
            if value.lower() not in _CLEAR and (problem := _more_emoji(emoji, value)) is not None:
                return problem
            continue
        parsed = _setting_value(key, value.lower() if key != "model" else value)
        if isinstance(parsed, CommandError):
            return parsed
        changes.append((key, parsed))
    if emoji is not None:
        changes.append(("emoji", tuple(emoji) or None))
    return SettingsCommand(changes=tuple(changes))


_EMOJI_NAME = re.compile(r"[a-z0-9+][a-z0-9_+'-]{0,39}", re.ASCII)


def _more_emoji(names: list[str], text: str) -> CommandError | None:
    """Add the emoji in `text` (`:+1::fire:`, `+1`, `:heart:`) to `names`, or say what is wrong."""
    hint = f"`emoji` is {SETTINGS_KEYS['emoji']}."
    if len(text) > MAX_SETTING_CHARS:
        return CommandError(message=f"`{_shown(text)}` is too long for a list of emoji.", hint=hint)
    for raw in (part for part in text.split(":") if part):
        if raw.startswith("skin-tone-"):
            continue  # `:+1::skin-tone-3:` is one emoji: a vote in any skin tone
        name = normalise_emoji(raw)
        if not _EMOJI_NAME.fullmatch(name):
            return CommandError(message=f"`{_shown(raw)}` is not an emoji name.", hint=hint)
        if name in CANCEL_EMOJI:
            return CommandError(message=f"`:{name}:` cancels a variation, so it cannot be a vote.", hint=hint)
        if name not in names:
            names.append(name)
        if len(names) > MAX_RULE_EMOJI:
            return CommandError(message=f"At most {MAX_RULE_EMOJI} emoji can be votes.", hint=hint)
    return None


_BUDGET = re.compile(r"\$?(\d{1,6}(?:\.\d{1,2})?)", re.ASCII)
_WHOLE = re.compile(r"\d{1,5}", re.ASCII)
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,63}", re.ASCII)
MAX_SETTING_CHARS = 64


def _setting_value(key: str, value: str) -> object:
    """One setting's value, read strictly: ASCII digits, a stated length, nothing Python merely tolerates
    ("1e9", "nan", "1_000", "²")."""
    wrong = CommandError(
        message=f"`{key}={_shown(value)}` is not valid.", hint=f"`{key}` is {SETTINGS_KEYS[key]}."
    )
    if len(value) > MAX_SETTING_CHARS:
        return CommandError(
            message=f"The value of `{key}` is {len(value):,} characters; a setting takes {MAX_SETTING_CHARS} at most.",
            hint=f"`{key}` is {SETTINGS_KEYS[key]}.",
        )
    if key == "vote":
        return int(value) if _WHOLE.fullmatch(value) and 1 <= int(value) <= 10080 else wrong
    if key == "quorum":
        if value in _CLEAR:
            return None
        return int(value) if _WHOLE.fullmatch(value) and 1 <= int(value) <= 1000 else wrong
    if key == "tie":
        if value in _CLEAR - {"off"}:
            return None
        return int(value) if _WHOLE.fullmatch(value) and 0 <= int(value) <= 1440 else wrong
    if key in ("blind", "multi", "owner_votes"):
        return True if value in _ON else False if value in _OFF else wrong
    if key == "budget":
        if value in _CLEAR:
            return None
        match = _BUDGET.fullmatch(value)
        return float(match.group(1)) if match else wrong
    if key == "goal":
        return None if value in _CLEAR else (parse_goal(value) or wrong)
    if key == "model":
        return None if value.lower() in _CLEAR else value if _MODEL.fullmatch(value) else wrong
    return value if re.fullmatch(r"[a-z0-9_-]{1,32}", value, re.ASCII) else wrong


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

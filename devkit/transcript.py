"""The fake Slack's channels as text, the way a Slack client shows them: threads, blocks, files, reactions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from devkit.slack_api import Ephemeral, FakeSlack, Message, ts_key


def transcript(fake: FakeSlack, *, show_ts: bool = False) -> str:
    """The workspace as a person reads it: channels, messages, threads, reactions, files, ephemerals."""
    lines: list[str] = []
    for channel in fake.channels():
        if lines:
            lines.append("")
        lines.append(f"#{fake.channel_name(channel)} ({channel})")
        ephemerals = fake.ephemerals(channel)
        top: list[Message | Ephemeral] = list(fake.messages(channel))
        top += [e for e in ephemerals if e.thread_ts is None]
        for item in sorted(top, key=lambda i: ts_key(i.ts)):
            lines += _render(fake, item, indent="  ", marker="", show_ts=show_ts)
            if isinstance(item, Message):
                replies: list[Message | Ephemeral] = list(fake.messages(channel, thread_ts=item.ts))
                replies += [e for e in ephemerals if e.thread_ts == item.ts]
                for reply in sorted(replies, key=lambda i: ts_key(i.ts)):
                    lines += _render(fake, reply, indent="    ", marker="↳ ", show_ts=show_ts)
    return "\n".join(lines) if lines else "(no messages)"


def render(fake: FakeSlack, item: Message | Ephemeral) -> str:
    """One message or ephemeral as `transcript()` shows it."""
    return "\n".join(_render(fake, item, indent="", marker="", show_ts=False))


def humanise(fake: FakeSlack, line: str) -> str:
    """What a Slack client shows for mention and date tokens, and for the three escaped characters."""
    line = _DATE_TOKEN.sub(
        lambda m: datetime.fromtimestamp(int(m.group(1)), UTC).strftime("%Y-%m-%d %H:%M UTC"), line
    )
    line = _USER_TOKEN.sub(lambda m: "@" + fake.user_name(m.group(1)), line)
    # After the tokens: an escaped "&lt;@U…&gt;" a person typed is text, never a mention.
    return line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _render(
    fake: FakeSlack, item: Message | Ephemeral, *, indent: str, marker: str, show_ts: bool
) -> list[str]:
    body = [humanise(fake, line) for line in _readable_lines(item.text, item.blocks)] or [""]
    stamp = f"[{item.ts}] " if show_ts else ""
    if isinstance(item, Ephemeral):
        who = f"(only {fake.user_name(item.user)} sees) {fake.bot_name}"
        edited = item.edited
    else:
        who = fake.user_name(item.user)
        edited = item.edited
        if item.deleted:
            who, body, edited = "(deleted)", [item.text], False
    head = f"{indent}{marker}{stamp}{who}: {body[0]}".rstrip() + (" (edited)" if edited else "")
    cont = indent + " " * len(marker) + "    "
    lines = [head] + [f"{cont}{line}".rstrip() for line in body[1:]]
    if isinstance(item, Message):
        for f in item.files:
            title = f' "{f.title}"' if f.title else ""
            lines.append(f"{cont}📎 {f.filename} ({_human_size(f.size)}){title}")
        if item.reactions:
            lines.append(
                cont
                + "  ".join(
                    f":{name}: ×{len(users)} ({', '.join(fake.user_name(u) for u in users)})"
                    for name, users in item.reactions.items()
                )
            )
    return lines


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _plain(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return str(obj or "")


def _element_label(element: Mapping[str, Any]) -> str | None:
    kind = element.get("type")
    if kind == "button":
        return f"[{_plain(element.get('text'))}]"
    if kind == "overflow":
        return "[⋯]"
    if isinstance(kind, str) and kind.endswith("select"):
        return f"[{_plain(element.get('placeholder')) or 'select'} ▾]"
    if kind in ("datepicker", "timepicker", "checkboxes", "radio_buttons"):
        return f"[{kind}]"
    return None


def _rich_text(element: Any) -> str:
    if isinstance(element, dict):
        kind = element.get("type")
        if kind == "text":
            return str(element.get("text") or "")
        if kind == "user":
            return f"<@{element.get('user_id')}>"
        if kind == "emoji":
            return f":{element.get('name')}:"
        if kind == "link":
            return str(element.get("text") or element.get("url") or "")
        return "".join(_rich_text(child) for child in element.get("elements") or [])
    return ""


_DATE_TOKEN = re.compile(r"<!date\^(\d+)\^[^|>]*(?:\|[^>]*)?>")
_USER_TOKEN = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _readable_lines(text: str, blocks: list[dict[str, Any]]) -> list[str]:
    """Blocks are what people see (text is only the notification fallback), so render them when present."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        chunk: list[str] = []
        if kind in ("header", "markdown"):
            chunk = [_plain(block.get("text"))]
        elif kind == "section":
            chunk = [_plain(block.get("text"))] if block.get("text") else []
            # One field per line, its own lines joined: "*Camera*\nslow dolly-in" reads "*Camera*: slow dolly-in".
            chunk += [": ".join(_plain(f).splitlines()) for f in block.get("fields") or []]
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and (label := _element_label(accessory)):
                chunk.append(label)
        elif kind == "context":
            parts = [_plain(e) if e.get("type") != "image" else "" for e in block.get("elements") or []]
            chunk = [" · ".join(p for p in parts if p)]
        elif kind == "actions":
            labels = [_element_label(e) for e in block.get("elements") or []]
            chunk = [" ".join(label for label in labels if label)]
        elif kind == "divider":
            chunk = ["―――"]
        elif kind == "image":
            chunk = [f"[image: {_plain(block.get('title')) or block.get('alt_text') or ''}]"]
        elif kind == "video":
            chunk = [f"▶ {_plain(block.get('title'))}"]
        elif kind == "rich_text":
            chunk = [_rich_text(block)]
        elif kind == "input":
            chunk = [f"{_plain(block.get('label'))}: [input]"]
        for piece in chunk:
            lines.extend(line for line in piece.splitlines() if line.strip())
    if lines:
        return lines
    return [line for line in text.splitlines() if line.strip()] or ([text] if text else [])

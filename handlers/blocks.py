"""Block Kit builders: every message and card the bot shows, from the core's views. User text is escaped here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot import prompts
from bot.domain import JobStatus, RoundStatus, Severity
from bot.views import ChannelDefaults, DraftCard, PatternCard, RoundView, StatusReport, VariationView

Message = dict[str, Any]

GENERATE = "draft_generate"
CANCEL = "draft_cancel"
EDIT = "draft_edit"
GOAL = "draft_goal"
CLOSE = "round_close"
CANCEL_JOB = "variation_cancel"

_SEVERITY_ICON = {Severity.ERROR: ":no_entry:", Severity.WARNING: ":warning:", Severity.INFO: ":bulb:"}
_LAYER_LABELS = (
    ("subject", "Subject"),
    ("action", "Action"),
    ("camera", "Camera"),
    ("environment", "Environment"),
    ("finish", "Finish"),
    ("intent", "Output intent"),
)


def escape(text: str) -> str:
    """Slack's three control characters, so user text can never become a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def money(amount: float) -> str:
    return "free (offline renderer)" if amount == 0 else f"${amount:,.2f}"


# --- draft ------------------------------------------------------------------------------------


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(text, 75)}, "value": value}


def goal_options() -> list[dict[str, Any]]:
    return [_option(preset.label, goal.value) for goal, preset in prompts.PRESETS.items()]


def draft_card(card: DraftCard, *, generating: bool = False) -> Message:
    """The private draft card; once generated, the same card without buttons, as a record of what ran."""
    fields = []
    for name, label in _LAYER_LABELS:
        value = getattr(card.spec, name) or "—"
        marker = " _(default)_" if name in card.filled else ""
        fields.append({"type": "mrkdwn", "text": clip(f"*{label}*\n{escape(value)}{marker}", 2000)})
    model = f" ({escape(card.model)})" if card.model else ""
    settings = (
        f"Checklist {card.score}/100 · {card.aspect.value} · {card.seconds} s · {card.variations} variations · "
        f"{card.provider}{model} · estimated cost {escape(card.estimate_summary)}"
    )
    if card.goal is not None:
        settings = f"Goal: {prompts.PRESETS[card.goal].label} · " + settings
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Draft"}},
        _section(f"*Idea:* {escape(clip(card.idea, 500))}"),
        {"type": "section", "fields": fields},
    ]
    if card.spec.beats:
        beats = "\n".join(f"`{b.start:g} s` {escape(clip(b.text, 200))}" for b in card.spec.beats)
        blocks.append(_section(f"*Storyboard*\n{beats}"))
    blocks.append(_context(settings))
    if card.has_reference:
        blocks.append(
            _context(":frame_with_picture: Image-to-video: the reference image is the first frame.")
        )
    for finding in card.safety:
        icon = ":no_entry:" if finding.severity is Severity.ERROR else ":warning:"
        verb = "Blocked" if finding.severity is Severity.ERROR else "Check"
        blocks.append(
            _section(
                f"{icon} *{verb} — {escape(finding.rule.replace('_', ' '))}:* {escape(finding.message)}\n"
                f"_Safer:_ {escape(clip(finding.safer, 600))}"
            )
        )
    if card.findings:
        lines = [
            f"{_SEVERITY_ICON[f.severity]} {escape(f.message)} _Fix:_ {escape(f.fix)}"
            for f in card.findings[:8]
        ]
        blocks.append(_section("*Checklist*\n" + "\n".join(lines)))
    else:
        blocks.append(_section(":white_check_mark: *Checklist:* nothing to fix."))
    for note in card.notes:
        blocks.append(_context(f":information_source: {escape(note)}"))
    subject = escape(clip(card.spec.subject or card.idea, 150))
    if generating:
        blocks.append(
            _context(f":arrow_down: Generating {card.variations} variations: follow the round's thread.")
        )
        return {"text": f"Generating: {subject}", "blocks": blocks}
    elements: list[dict[str, Any]] = []
    if not card.blocked:
        elements.append(_button("Generate", GENERATE, str(card.draft_id), style="primary"))
    elements.append(_button("Edit", EDIT, str(card.draft_id)))
    picker: dict[str, Any] = {
        "type": "static_select",
        "action_id": GOAL,
        "placeholder": {"type": "plain_text", "text": "Goal preset"},
        "options": goal_options(),
    }
    if card.goal is not None:
        picker["initial_option"] = _option(prompts.PRESETS[card.goal].label, card.goal.value)
    elements += [picker, _button("Cancel", CANCEL, str(card.draft_id))]
    blocks.append({"type": "actions", "block_id": f"draft-{card.draft_id}", "elements": elements})
    return {"text": f"Draft: {subject}", "blocks": blocks}


# --- round ------------------------------------------------------------------------------------


def _tally_line(view: RoundView) -> str:
    if view.blind and view.status == RoundStatus.OPEN:
        return f"Votes are hidden until the round closes · {view.voters} voted so far"
    parts = []
    for v in view.variations:
        count = v.votes or 0
        parts.append(f"#{v.number} {'▇' * min(count, 10)} {count}".replace("  ", " "))
    return " · ".join(parts) + f"  ({view.voters} voter{'s' if view.voters != 1 else ''})"


def round_message(view: RoundView) -> Message:
    title = escape(clip(view.title, 200))
    count = len(view.variations)
    blocks: list[dict[str, Any]] = [
        _section(f":clapper: *{title}*\nA round by <@{view.owner_id}> · {count} variations in the thread"),
    ]
    if view.status == RoundStatus.OPEN:
        closes = f"<!date^{view.closes_at_epoch}^{{date_short_pretty}} {{time}}|soon>"
        blocks.append(
            _section(f"*Vote* by reacting :+1: :heart: or :fire: on a variation's message. Closes {closes}.")
        )
    elif view.winner_number is not None:
        blocks.append(_section(f":trophy: *Closed.* #{view.winner_number} won."))
    else:
        blocks.append(_section("*Closed* with no winner."))
    blocks.append(_context(_tally_line(view) + f" · estimated cost {money(view.estimated_cost)}"))
    if view.status == RoundStatus.OPEN:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"round-{view.round_id}",
                "elements": [_button("Close voting", CLOSE, str(view.round_id), style="danger")],
            }
        )
    return {"text": f"Round: {title}", "blocks": blocks}


def _status_line(view: VariationView) -> str:
    if view.status == JobStatus.QUEUED:
        place = f" (#{view.queue_position} in line)" if view.queue_position else ""
        return f":hourglass_flowing_sand: queued{place}"
    if view.status == JobStatus.SUBMITTING:
        return ":outbox_tray: sending to the renderer…"
    if view.status == JobStatus.IN_PROGRESS:
        return f":film_projector: rendering {view.progress}%"
    if view.status == JobStatus.COMPLETED:
        return ":white_check_mark: ready — the clip is below"
    if view.status == JobStatus.CANCELLED:
        return ":no_entry_sign: cancelled"
    return f":x: failed: {escape(view.error or 'no reason given')}"


def _diff_line(change: prompts.LayerChange) -> str:
    label = dict(_LAYER_LABELS)[change.layer]
    before = f"~{escape(clip(change.before, 150))}~ → " if change.before else ""
    return f"*{label}:* {before}{escape(clip(change.after, 150))}"


def variation_message(view: VariationView) -> Message:
    heading = f"*#{view.number}*"
    if view.parent_number is not None:
        heading += f" · {view.kind.value} of #{view.parent_number}"
    if view.change:
        heading += f": “{escape(clip(view.change, 200))}”"
    if len(view.changed) > 1:  # the seed's advice: one well-defined change per remix, so the vote says which
        heading += f" _(changes {', '.join(view.changed)}: one change at a time compares better)_"
        parts = prompts.split_change(view.change or "")
        if parts and view.parent_number is not None:
            heading += "\nTry them one by one: " + " · ".join(
                f"`remix #{view.parent_number} {escape(clip(p, 80))}`" for p in parts
            )
    elif view.changed:
        heading += f" _(changes the {view.changed[0]})_"
    if view.is_winner:
        heading = ":trophy: " + heading + " · *winner*"
    lines = [heading, *(_diff_line(d) for d in view.diff), _status_line(view)]
    if view.votes is not None:
        lines.append(f"Votes: {view.votes}")
    details = f"{view.seconds} s · {view.aspect.value} · {view.provider}"
    blocks: list[dict[str, Any]] = [
        _section("\n".join(lines)),
        _context(f"{details}\n>{escape(clip(view.prompt, 2800))}"),
    ]
    if not view.status.is_terminal:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"variation-{view.generation_id}",
                "elements": [_button("Cancel", CANCEL_JOB, str(view.generation_id))],
            }
        )
    return {"text": f"Variation #{view.number}: {_status_line(view)}", "blocks": blocks}


def winner_message(view: RoundView) -> Message:
    if view.winner_number is None:
        text = (
            "Voting closed with no votes. The owner can still choose: reply `pick #N`, "
            "or `remix #N <change>` to try again."
        )
    else:
        winner = next(v for v in view.variations if v.number == view.winner_number)
        votes = winner.votes or 0
        text = (
            f":trophy: *#{winner.number} wins* with {votes} vote{'s' if votes != 1 else ''} "
            f"from {view.voters} voter{'s' if view.voters != 1 else ''}.\n"
            f"Saved as a pattern: find it again with `/sora recall <words>`. "
            f"Reply `remix #{winner.number} <one change>` to keep going."
        )
    return {"text": text, "blocks": [_section(text)]}


# --- recall, help, errors ---------------------------------------------------------------------


def recall_results(query: str, cards: Sequence[PatternCard]) -> Message:
    shown = escape(clip(query, 100))
    if not cards:
        text = f"No saved patterns match “{shown}” yet. Winners are saved when a round closes."
        return {"text": text, "blocks": [_section(text)]}
    blocks: list[dict[str, Any]] = [_section(f"*Patterns matching “{shown}”*")]
    for card in cards:
        outcome = (
            f"#{card.winner_number} won with {card.votes} of {card.voters} voters · {card.rounds_closed_at}"
        )
        settings = f"{card.settings.get('seconds', '?')} s · {card.settings.get('aspect', '?')}"
        if card.rhythm:
            settings += " · rhythm " + ", ".join(f"{float(str(b['start'])):g}s" for b in card.rhythm)
        blocks.append(_section(f"*{escape(clip(card.title, 150))}*\n>{escape(clip(card.prompt, 2000))}"))
        blocks.append(_context(f"{outcome} · {settings}"))
    return {"text": f"{len(cards)} pattern(s) match “{shown}”", "blocks": blocks[:50]}


HELP = (
    "*sora-bot* turns an idea into a few short video variations your team votes on.\n"
    "• `/sora draft <idea>` — a structured prompt, checklist and cost before anything is spent "
    "(add `--goal social`, `ad`, `product`, `loop`, `storyboard` or `style`)\n"
    "• *Generate* on the draft — variations arrive in a thread; react :+1: :heart: :fire: to vote\n"
    "• In the thread: `remix #2 make it golden hour`, `recut #1 1.5-4`, `extend #1 4s <next beat>`, "
    "`loop #3`, `blend #1 #3`, `again`, `pick #2`, `help`\n"
    "• `/sora storyboard` — beat cards with start times; `/sora settings` — channel defaults and budget\n"
    "• `/sora recall <words>` — find winning prompts again\n"
    "• `/sora status` — what is running"
)


def status_message(report: StatusReport) -> Message:
    providers = ", ".join(
        f"*{p}*" + (" (default)" if p == report.default_provider else "") for p in report.providers
    )
    text = (
        f"*Providers configured:* {providers}\n"
        f"*In this channel:* {report.queued} queued · {report.running} rendering · "
        f"{report.open_rounds} round{'s' if report.open_rounds != 1 else ''} open for votes\n"
        f"*Yours in progress:* {report.mine}"
    )
    return notice_mrkdwn(text)


def settings_message(defaults: ChannelDefaults, *, providers: Sequence[str], changed: bool) -> Message:
    goal = prompts.PRESETS[defaults.goal].label if defaults.goal else "none"
    budget = "no limit" if defaults.daily_budget is None else f"${defaults.daily_budget:,.2f} a day"
    lines = [
        "*Channel settings updated.*" if changed else "*This channel's settings*",
        f"• provider: *{defaults.provider}*"
        + (f" (model {escape(defaults.model)})" if defaults.model else "")
        + f" — configured: {', '.join(providers)}",
        f"• goal: {goal}",
        f"• vote: {defaults.vote_minutes} minutes · blind: {'on' if defaults.blind else 'off'}",
        f"• budget: {budget} · spent today: ${defaults.spent_today:,.2f}",
        "Change with e.g. `/sora settings vote=30 blind=on goal=social`. Budget, provider and model are for "
        "workspace admins; every change is announced in the channel.",
    ]
    return notice_mrkdwn("\n".join(lines))


def notice_mrkdwn(text: str) -> Message:
    """A message whose mrkdwn the bot wrote itself (no user text inside)."""
    return {"text": text, "blocks": [_section(text)]}


def notice(text: str) -> Message:
    """A plain notice written by the core; escaped whole."""
    safe = escape(text)
    return {"text": safe, "blocks": [_section(safe)]}


def notice_by(user_id: str, text: str) -> Message:
    """A notice about what a person did: their mention (a well-formed user id only), then the escaped text."""
    who = f"<@{user_id}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", user_id) else "Someone"
    safe = f"{who} {escape(text)}"
    return {"text": safe, "blocks": [_section(safe)]}


def user_error(message: str) -> Message:
    """An error for the person who caused it; the message may quote their text, so it is escaped."""
    safe = f":warning: {escape(message)}"
    return {"text": safe, "blocks": [_section(safe)]}

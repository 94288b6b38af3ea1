"""Block Kit builders: every message and card the bot shows, from the core's views. User text is escaped here."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot import prompts, records, votes
from bot.domain import CloseReason, GenerationKind, JobStatus, RoundStatus, Severity
from bot.records import DecisionRecord
from bot.views import ChannelDefaults, DraftCard, PatternCard, RoundView, StatusReport, VariationView

if TYPE_CHECKING:
    from bot.safety import SafetyFinding

Message = dict[str, Any]

GENERATE = "draft_generate"
CANCEL = "draft_cancel"
EDIT = "draft_edit"
GOAL = "draft_goal"
EXPLORE = "draft_explore"  # re-rolls, or a round that varies one layer
CLOSE = "round_close"
VOTE = "variation_vote"  # a blind round's vote button
TIE_PICK = "round_tie_pick"  # the owner breaks a tie: value "<round_id>:<number>"
CANCEL_JOB = "variation_cancel"
# A finished variation's buttons: each is the reply verb of the same name (`remix #N …`, `pick #N`…).
REMIX = "variation_remix"
RECUT = "variation_recut"
EXTEND = "variation_extend"
LOOP = "variation_loop"
AGAIN = "variation_again"
PICK = "variation_pick"
SAVE = "variation_save"

_SEVERITY_ICON = {Severity.ERROR: ":no_entry:", Severity.WARNING: ":warning:", Severity.INFO: ":bulb:"}
_LAYER_LABELS = (
    ("subject", "Subject"),
    ("action", "Action"),
    ("camera", "Camera"),
    ("environment", "Environment"),
    ("finish", "Finish"),
    ("intent", "Output intent"),
)


# Slack's limits (Block Kit reference; the JSON size is measured, see devkit.limits), with a little room spare.
MAX_BLOCKS = 50
MAX_BLOCKS_JSON = 13_000
SECTION_TEXT = 3_000
FIELD_TEXT = 2_000
HEADER_TEXT = 150
BUTTON_TEXT = 75
CONTEXT_ELEMENTS = 10
FALLBACK_TEXT = 3_000  # a message's top-level `text`; Slack advises staying well under 4,000
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ELLIPSIS = "…"


def escape(text: str) -> str:
    """Slack's three control characters, so user text can never become a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Plain text cut to `limit` characters (for plain_text objects, which are never escaped)."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def fit(text: str, limit: int) -> str:
    """User text for mrkdwn: escaped, and at most `limit` characters *after* escaping.

    The raw text is clipped before it is escaped, so a cut never lands inside `&lt;` (no `&l…` on screen) and
    text dense with `<&>` (each up to five characters once escaped) still fits the limit it was given.
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    pieces: list[str] = []
    used = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if used + len(piece) > limit - len(_ELLIPSIS):
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + _ELLIPSIS


def clip_mrkdwn(text: str, limit: int) -> str:
    """A last guard for assembled mrkdwn: cut to `limit` without splitting an entity or a `<…>` token."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(_ELLIPSIS)]
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi and len(cut) - amp < 5:  # inside &amp; / &lt; / &gt;
        cut = cut[:amp]
    opened, closed = cut.rfind("<"), cut.rfind(">")
    if opened > closed:  # inside one of our own <@U…> or <!date…> tokens
        cut = cut[:opened]
    return cut + _ELLIPSIS


def _mrkdwn(text: str, limit: int, *, verbatim: bool = False) -> dict[str, Any]:
    # verbatim: Slack shows the text as typed, without turning URLs, #channels or names into links.
    obj: dict[str, Any] = {"type": "mrkdwn", "text": clip_mrkdwn(text, limit) or " "}
    if verbatim:
        obj["verbatim"] = True
    return obj


def _section(text: str, *, verbatim: bool = False) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text, SECTION_TEXT, verbatim=verbatim)}


def _context(*texts: str, verbatim: bool = False) -> dict[str, Any]:
    elements = [_mrkdwn(t, SECTION_TEXT, verbatim=verbatim) for t in texts[:CONTEXT_ELEMENTS]]
    return {"type": "context", "elements": elements}


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, BUTTON_TEXT)},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _message(text: str, blocks: list[dict[str, Any]]) -> Message:
    return {"text": clip_mrkdwn(text, FALLBACK_TEXT), "blocks": blocks}


def _json_size(blocks: list[dict[str, Any]]) -> int:
    return len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))


def within_budget(
    head: list[dict[str, Any]], body: list[dict[str, Any]], tail: list[dict[str, Any]], *, left_out: str
) -> list[dict[str, Any]]:
    """`head + body + tail`, dropping `body`'s last blocks until Slack's block count and size allow it.

    Every piece is capped on its own, so this rarely drops anything; it is what makes the limits hold
    whatever the input. What was dropped is said in one line, so nothing vanishes silently.
    """
    kept = list(body)
    dropped = 0
    while kept:
        note = [_context(f"_{dropped} more {left_out} not shown._")] if dropped else []
        candidate = head + kept + note + tail
        if len(candidate) <= MAX_BLOCKS and _json_size(candidate) <= MAX_BLOCKS_JSON:
            return candidate
        kept.pop()
        dropped += 1
    note = [_context(f"_{dropped} more {left_out} not shown._")] if dropped else []
    return head + note + tail


def money(amount: float) -> str:
    return "free (offline renderer)" if amount == 0 else f"${amount:,.2f}"


# --- draft ------------------------------------------------------------------------------------


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(text, 75)}, "value": value}


def goal_options() -> list[dict[str, Any]]:
    return [_option(preset.label, goal.value) for goal, preset in prompts.PRESETS.items()]


REROLLS = "rerolls"  # the variations picker's value for "no layer explored"


def explore_option(layer: prompts.Explore | None) -> dict[str, Any]:
    return _option(
        f"Variations: explore {layer.value}" if layer else "Variations: re-rolls", layer or REROLLS
    )


def explore_options() -> list[dict[str, Any]]:
    return [explore_option(None), *(explore_option(layer) for layer in prompts.Explore)]


# How much of each part of a draft card is shown: with every part at its longest the card still fits Slack's
# ~13k characters of blocks, so `within_budget` has nothing to drop in practice.
_IDEA_SHOWN = 600
_LAYER_SHOWN = 400
_BEATS_SHOWN = 6
_FINDING_KINDS_SHOWN = 3
_TERMS_SHOWN = 6
_CHECKLIST_SHOWN = 8
_NOTES_SHOWN = 3


def draft_card(card: DraftCard, *, generating: bool = False) -> Message:
    """The private draft card; once generated, the same card without buttons, as a record of what ran."""
    fields = []
    for name, label in _LAYER_LABELS:
        value = getattr(card.spec, name) or "—"
        marker = " _(default)_" if name in card.filled else ""
        fields.append(_mrkdwn(f"*{label}*\n{fit(value, _LAYER_SHOWN)}{marker}", FIELD_TEXT, verbatim=True))
    model = f" ({fit(card.model, 80)})" if card.model else ""
    settings = (
        f"Checklist {card.score}/100 · {card.aspect.value} · {card.seconds} s · {card.variations} variations · "
        f"{fit(card.provider, 40)}{model} · estimated cost {fit(card.estimate_summary, 200)}"
    )
    if card.goal is not None:
        settings = f"Goal: {prompts.PRESETS[card.goal].label} · " + settings
    if card.explore is not None:
        settings += f" · each variation tries another {card.explore.value}"
    head: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Draft"}},
        _section(f"*Idea:* {fit(card.idea, _IDEA_SHOWN)}", verbatim=True),
        {"type": "section", "fields": fields},
    ]
    body: list[dict[str, Any]] = []
    if card.spec.beats:
        beats = [f"`{b.start:g} s` {fit(b.text, 200)}" for b in card.spec.beats[:_BEATS_SHOWN]]
        if len(card.spec.beats) > _BEATS_SHOWN:
            beats.append(f"_+{len(card.spec.beats) - _BEATS_SHOWN} more cards_")
        body.append(_section("*Storyboard*\n" + "\n".join(beats), verbatim=True))
    body.append(_context(settings))
    if card.has_reference:
        body.append(_context(":frame_with_picture: Image-to-video: the reference image is the first frame."))
    body += safety_sections(card.safety)
    if card.findings:
        lines = [
            f"{_SEVERITY_ICON[f.severity]} {fit(f.message, 160)} _Fix:_ {fit(f.fix, 160)}"
            for f in card.findings[:_CHECKLIST_SHOWN]
        ]
        if len(card.findings) > _CHECKLIST_SHOWN:
            lines.append(f"_+{len(card.findings) - _CHECKLIST_SHOWN} more_")
        body.append(_section("*Checklist*\n" + "\n".join(lines), verbatim=True))
    else:
        body.append(_section(":white_check_mark: *Checklist:* nothing to fix."))
    if card.notes:
        notes = [f":information_source: {fit(note, 400)}" for note in card.notes[:_NOTES_SHOWN]]
        if len(card.notes) > _NOTES_SHOWN:
            notes.append(f"_+{len(card.notes) - _NOTES_SHOWN} more notes_")
        body.append(_context(*notes, verbatim=True))
    subject = fit(card.spec.subject or card.idea, 150)
    if generating:
        tail = [_context(f":arrow_down: Generating {card.variations} variations: follow the round's thread.")]
        return _message(f"Generating: {subject}", within_budget(head, body, tail, left_out="details"))
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
    variations = {
        "type": "static_select",
        "action_id": EXPLORE,
        "options": explore_options(),
        "initial_option": explore_option(card.explore),
    }
    elements += [picker, variations, _button("Cancel", CANCEL, str(card.draft_id))]
    tail = [{"type": "actions", "block_id": f"draft-{card.draft_id}", "elements": elements}]
    return _message(f"Draft: {subject}", within_budget(head, body, tail, left_out="details"))


def safety_sections(findings: Sequence[SafetyFinding]) -> list[dict[str, Any]]:
    """One section per kind of finding (blocking kinds first), its words listed, each safer wording shown once;
    kinds past the first few are summed up in one line."""
    kinds: dict[str, list[SafetyFinding]] = {}
    for finding in findings:
        kinds.setdefault(finding.rule, []).append(finding)
    ordered = sorted(kinds.values(), key=lambda group: not any(f.severity is Severity.ERROR for f in group))
    shown_safer: set[str] = set()
    sections: list[dict[str, Any]] = []
    for group in ordered[:_FINDING_KINDS_SHOWN]:
        first = group[0]
        blocking = any(f.severity is Severity.ERROR for f in group)
        icon, verb = (":no_entry:", "Blocked") if blocking else (":warning:", "Check")
        lines = [f"{icon} *{verb} — {_rule_label(first.rule)}:* {fit(first.message, 400)}"]
        others = [f.term for f in group[1:] if f.term]
        if len(group) > 1:
            listed = ", ".join(f"“{term}”" for term in others[:_TERMS_SHOWN])
            more = len(group) - 1 - min(len(others), _TERMS_SHOWN)
            also = f"Also {fit(listed, 300)}" if listed else "Also"
            lines.append(also + (f" and {more} more" if more else "") + ".")
        if first.safer and first.safer not in shown_safer:
            shown_safer.add(first.safer)
            lines.append(f"_Safer:_ {fit(first.safer, 500)}")
        sections.append(_section("\n".join(lines), verbatim=True))
    rest = ordered[_FINDING_KINDS_SHOWN:]
    if rest:
        count = sum(len(group) for group in rest)
        labels = ", ".join(_rule_label(group[0].rule) for group in rest)
        sections.append(_context(f"+{count} more finding{'s' if count != 1 else ''}: {labels}."))
    return sections


def _rule_label(rule: str) -> str:
    return fit(rule.replace("_", " "), 60)


# --- round ------------------------------------------------------------------------------------


BAR_WIDTH = 5
MAX_BARS = 10  # variations shown with a bar on the round message; the rest are counted in "and N more"


def bar(count: int, top: int, *, width: int = BAR_WIDTH) -> str:
    """`▇▇▇▁▁`: `count` against the leader's `top`, never empty for a vote, never full unless leading."""
    if top <= 0:
        return "▁" * width
    filled = max(1 if count else 0, round(width * count / top))
    if count < top:
        filled = min(filled, width - 1)
    return "▇" * filled + "▁" * (width - filled)


def _tally_line(view: RoundView) -> str:
    """Live bars in number order (a bar never jumps place as votes arrive), the leader marked; a blind round
    says only how many have voted. The outbox paces its updates to one `chat.update` a second."""
    if view.blind and view.status == RoundStatus.OPEN:
        return f"Votes are hidden until the round closes · {_voters(view.voters)} so far"
    counts = [(v.number, v.votes or 0) for v in view.variations]
    top = max((c for _, c in counts), default=0)
    shown = counts
    if len(counts) > MAX_BARS:  # the most voted, still in number order
        kept = {n for n, _ in sorted(counts, key=lambda nc: (-nc[1], nc[0]))[:MAX_BARS]}
        shown = [(n, c) for n, c in counts if n in kept]
    if view.status == RoundStatus.CLOSED and view.winner_number is not None:
        marked, mark = [view.winner_number], "won"  # a pick may have chosen another than the most voted
    else:
        marked = [n for n, c in counts if c == top and top > 0]
        mark = "tied" if len(marked) > 1 else "leads"
    parts = []
    for number, count in shown:
        label = f"*#{number}*" if number in marked else f"#{number}"
        part = f"{label} {bar(count, top)} {count}"
        if number in marked:
            part += f" ◀ {mark}"
        parts.append(part)
    more = f" · and {len(counts) - len(shown)} more" if len(shown) < len(counts) else ""
    return " · ".join(parts) + more + f"  ({view.voters} voter{'s' if view.voters != 1 else ''})"


def _voters(count: int) -> str:
    return f"{count} {'person has' if count == 1 else 'people have'} voted"


_EMOJI_SHOWN = 5


def _how_to_vote(view: RoundView) -> str:
    """The round's rules in one line, as its voters need them."""
    rules = view.rules
    closes = f"<!date^{view.closes_at_epoch}^{{date_short_pretty}} {{time}}|soon>"
    if rules.blind:
        how = (
            "*Blind vote:* press *Vote* under a variation (again to take it back). Nobody sees who voted for "
            "what, and the counts stay hidden until the round closes."
        )
    else:
        emoji = votes.shown_order(rules.emoji)
        shown = " ".join(f":{e}:" for e in emoji[:_EMOJI_SHOWN]) + (" …" if len(emoji) > _EMOJI_SHOWN else "")
        how = f"*Vote* by reacting {shown} on a variation's message or its video."
    terms = [
        "one vote per variation" if rules.multi else "one vote per person (a new vote moves it)",
        *([] if rules.owner_votes else ["the owner's vote doesn't count"]),
        *([f"closes early once {rules.quorum} have voted"] if rules.quorum else []),
    ]
    return f"{how} {'; '.join(terms).capitalize()}. Closes {closes}."


def _tied(view: RoundView) -> str:
    numbers = " and ".join(f"#{n}" for n in view.tied)
    return f"{numbers} ({view.tie_votes} vote{'s' if view.tie_votes != 1 else ''} each)"


def tie_buttons(view: RoundView) -> list[dict[str, Any]]:
    """The owner's buttons to break a tie, one per tied variation (the round's `pick #N` in one click)."""
    if view.status != RoundStatus.TIED or not view.tied:
        return []
    elements = [
        _button(f"Pick #{n}", TIE_PICK, f"{view.round_id}:{n}", style="primary" if i == 0 else None)
        for i, n in enumerate(view.tied[:MAX_TIE_BUTTONS])
    ]
    return [{"type": "actions", "block_id": f"tie-{view.round_id}", "elements": elements}]


MAX_TIE_BUTTONS = 25  # an actions block's limit; a round has far fewer variations


def _closed_line(view: RoundView) -> str:
    """How the vote ended, for the round message."""
    if view.winner_number is None:
        return "*Closed* with no winner."
    said = f":trophy: *Closed.* #{view.winner_number} won"
    reason = view.close_reason
    if reason == CloseReason.TIE_RULE:
        said += f" — a tie ({_tied(view)}) settled by the rule: the earliest tied variation wins"
    elif reason in (CloseReason.PICK, CloseReason.TIE_PICK):
        said += " — picked by the round's owner" + (f" from a tie ({_tied(view)})" if view.tied else "")
    elif reason == CloseReason.QUORUM and view.rules.quorum:
        said += f" — closed early: {view.rules.quorum} had voted"
    said += "."
    if view.pick_reason:
        said += f" “{fit(view.pick_reason, 400)}”"
    return said


def _follows(view: RoundView) -> str:
    """What a following round follows, and how that one ended."""
    previous = view.previous
    if previous is None:
        return ""
    said = f"Follows round {previous.place}"
    if previous.status == RoundStatus.TIED:
        said += ", a tie its owner is picking"
    elif previous.status == RoundStatus.CLOSED:
        said += f", won by #{previous.winner_number}" if previous.winner_number is not None else ", no winner"
    return said + " · "


def round_message(view: RoundView) -> Message:
    title = fit(view.title, 200)
    count = len(view.variations)
    heading = f"Round {view.place} · {title}" if view.place > 1 else title
    blocks: list[dict[str, Any]] = [
        _section(
            f":clapper: *{heading}*\n{_follows(view)}A round by <@{view.owner_id}> · "
            f"{count} variation{'s' if count != 1 else ''} in the thread"
        ),
    ]
    if view.status == RoundStatus.OPEN:
        blocks.append(_section(_how_to_vote(view)))
    elif view.status == RoundStatus.TIED:
        until = f"<!date^{view.closes_at_epoch}^{{date_short_pretty}} {{time}}|soon>"
        blocks.append(
            _section(
                f":scales: *It's a tie:* {_tied(view)}. <@{view.owner_id}> picks the winner; if nobody has by "
                f"{until}, #{view.tied[0] if view.tied else '?'} wins (the earliest tied variation)."
            )
        )
    else:
        blocks.append(_section(_closed_line(view), verbatim=True))
    blocks.append(_context(_tally_line(view) + f" · estimated cost {money(view.estimated_cost)}"))
    if view.status == RoundStatus.OPEN:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"round-{view.round_id}",
                "elements": [_button("Close voting", CLOSE, str(view.round_id), style="danger")],
            }
        )
    blocks += tie_buttons(view)
    if view.next_place is not None:
        blocks.append(
            _context(f"Round {view.next_place} follows in the thread: later work is voted on there.")
        )
    if view.status == RoundStatus.CLOSED and view.winner_still_file_id and view.winner_number is not None:
        # An uploaded file shows in an image block by its id (`slack_file`): no public URL needed.
        blocks.append(
            {
                "type": "image",
                "slack_file": {"id": view.winner_still_file_id},
                "alt_text": f"A still frame from the winning clip, #{view.winner_number}",
                "title": {"type": "plain_text", "text": f"The winner, #{view.winner_number}"},
            }
        )
    return _message(f"Round {view.place}: {title}" if view.place > 1 else f"Round: {title}", blocks)


def vote_buttons(view: VariationView) -> list[dict[str, Any]]:
    """A blind round's vote button under a finished variation. It says nothing of the count or the voters."""
    if not view.vote_button:
        return []
    button = _button(f"Vote for #{view.number}", VOTE, str(view.generation_id))
    return [{"type": "actions", "block_id": f"vote-{view.generation_id}", "elements": [button]}]


def _status_line(view: VariationView) -> str:
    if view.status == JobStatus.QUEUED:
        place = f" (#{view.queue_position} in line)" if view.queue_position else ""
        return f":hourglass_flowing_sand: queued{place}"
    if view.status == JobStatus.SUBMITTING:
        return ":outbox_tray: sending to the renderer…"
    if view.status == JobStatus.IN_PROGRESS:
        return f":film_projector: rendering {view.progress}%"
    if view.status == JobStatus.COMPLETED:
        return ":white_check_mark: ready — the clip is below; react on it or here to vote"
    if view.status == JobStatus.CANCELLED:
        return ":no_entry_sign: cancelled"
    # A provider's message can be any length (a whole HTML error page): the gist is at its start.
    return f":x: failed: {fit(view.error or 'no reason given', 300)}"


def _diff_line(change: prompts.LayerChange) -> str:
    label = dict(_LAYER_LABELS)[change.layer]
    before = f"~{escape(clip(change.before, 150))}~ → " if change.before else ""
    return f"*{label}:* {before}{escape(clip(change.after, 150))}"


def seconds(value: float) -> str:
    """A length as people say it: 2.5, 4, 12.3 (seconds)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def variation_message(view: VariationView) -> Message:
    heading = f"*#{view.number}*"
    if view.parent_number is not None:
        heading += f" · {view.kind.value} of #{view.parent_number}"
    elif view.kind == GenerationKind.AGAIN:
        heading += " · again of the round's prompt"
    if view.change:
        heading += f": “{fit(view.change, 400)}”"
    if view.kind in (GenerationKind.RECUT, GenerationKind.LOOP, GenerationKind.BLEND):
        heading += f" → {seconds(view.length)} s"
    elif view.kind == GenerationKind.EXTEND:
        heading += f" → {seconds(view.length)} s in all"
    if len(view.changed) > 1:  # the seed's advice: one well-defined change per remix, so the vote says which
        heading += f" _(changes {', '.join(view.changed)}: one change at a time compares better)_"
        parts = prompts.split_change(view.change or "")
        if parts and view.parent_number is not None:
            heading += "\nTry them one by one: " + " · ".join(
                f"`remix #{view.parent_number} {escape(clip(p, 80))}`" for p in parts
            )
    elif view.changed:
        heading += f" _(changes the {view.changed[0]})_"
    if view.varies is not None:
        layer = dict(_LAYER_LABELS)[view.varies.layer].lower()
        said = "keeps the drafted" if view.drafted else "varies the"
        heading += f" · {said} {layer}: {escape(clip(view.varies.after, 150))}"
    if view.is_winner:
        heading = ":trophy: " + heading + " · *winner*"
    lines = [heading, *(_diff_line(d) for d in view.diff), _status_line(view)]
    if view.votes is not None:
        lines.append(f"Votes: {view.votes}")
    details = f"{seconds(view.length or view.seconds)} s · {view.aspect.value} · {fit(view.provider, 40)}"
    blocks: list[dict[str, Any]] = [
        _section("\n".join(lines), verbatim=True),
        _context(f"{details}\n>{fit(view.prompt, 2_800)}", verbatim=True),
    ]
    value = str(view.generation_id)
    if not view.status.is_terminal:
        elements = [_button("Cancel", CANCEL_JOB, value)]
    elif view.status == JobStatus.COMPLETED:
        elements = [
            _button("Remix…", REMIX, value),
            _button("Recut…", RECUT, value),
            _button("Extend…", EXTEND, value),
            _button("Loop", LOOP, value),
            _button("Again", AGAIN, value),
        ]
        if view.round_open:
            elements.append(_button("Pick", PICK, value, style="primary"))
        elements.append(_button("Save", SAVE, value))
    else:
        elements = []
    if elements:
        blocks.append(
            {"type": "actions", "block_id": f"variation-{view.generation_id}", "elements": elements}
        )
    blocks += vote_buttons(view)
    return _message(f"Variation #{view.number}: {_status_line(view)}", blocks)


def winner_message(view: RoundView) -> Message:
    """The announcement in the thread: the winner and how the vote ended, or a tie with the owner's buttons."""
    if view.status == RoundStatus.TIED:
        until = f"<!date^{view.closes_at_epoch}^{{date_short_pretty}} {{time}}|in a few minutes>"
        first = view.tied[0] if view.tied else "?"
        text = (
            f":scales: *It's a tie:* {_tied(view)}, from {_plural(view.voters, 'voter')}.\n"
            f"<@{view.owner_id}>, pick the winner with a button below or reply `pick #N &lt;why&gt;`. "
            f"If nobody has picked by {until}, #{first} wins: the earliest tied variation."
        )
        return _message(f"It's a tie: {_tied(view)}", [_section(text), *tie_buttons(view)])
    if view.winner_number is None:
        text = (
            "Voting closed with no votes. The owner can still choose: reply `pick #N`, "
            "or `remix #N &lt;change&gt;` to try again."
        )
        return _message(text, [_section(text)])
    winner = next(v for v in view.variations if v.number == view.winner_number)
    count = f"{_plural(winner.votes or 0, 'vote')} from {_plural(view.voters, 'voter')}"
    reason = view.close_reason
    if reason == CloseReason.TIE_RULE:
        how = (
            f":trophy: *#{winner.number} wins.* It was a tie ({_tied(view)}) and nobody picked in time, so the "
            "stated rule decided: the earliest tied variation wins."
        )
    elif reason == CloseReason.TIE_PICK:
        how = (
            f":trophy: *#{winner.number} wins*, picked by <@{view.owner_id}> to break a tie ({_tied(view)})."
        )
    elif reason == CloseReason.PICK:
        how = f":trophy: *#{winner.number} wins*, picked by <@{view.owner_id}> ({count})."
    elif reason == CloseReason.QUORUM:
        how = f":trophy: *#{winner.number} wins* with {count}: the quorum of {view.rules.quorum} was reached."
    else:
        how = f":trophy: *#{winner.number} wins* with {count}."
    if view.pick_reason:
        how += f"\n>{fit(view.pick_reason, 400)}"
    text = (
        f"{how}\nSaved as a pattern: find it again with `/sora recall &lt;words&gt;`. "
        f"Reply `remix #{winner.number} &lt;one change&gt;` to keep going."
    )
    return _message(text, [_section(text, verbatim=True)])


MAX_VOTERS_SHOWN = 12  # mentions per variation in the record; the rest are "and N more"


def decision_record_message(record: DecisionRecord) -> Message:
    """The decision record posted in the thread on close: each variation, its votes and voters (counts only in
    a blind round), the winner and why, lineage and what the round cost net of refunds."""
    winner = f"#{record.winner_number}" if record.winner_number is not None else "no winner"
    head_text = f":memo: *Decision record* · round {record.round_id}: *{fit(record.title, 200)}*\n"
    head_text += f"*Winner:* {winner}. {record.why()}"
    if record.pick_reason:
        head_text += f"\n*Why:* “{fit(record.pick_reason, 400)}”"
    head = [_section(head_text, verbatim=True)]
    body: list[dict[str, Any]] = []
    for v in record.variations:
        line = f"*#{v.number}*" + (" :trophy: winner" if v.winner else "") + f" · {records.lineage(v)}"
        if v.change:
            line += f": “{fit(v.change, 300)}”"
        if v.status != JobStatus.COMPLETED.value:
            line += f" · {v.status}"
        if v.votes is None:
            line += " · votes hidden"
        else:
            line += f" · {_plural(v.votes, 'vote')}"
        if v.voters:
            mentions = [f"<@{u}>" for u in v.voters[:MAX_VOTERS_SHOWN] if _USER_ID.fullmatch(u)]
            extra = len(v.voters) - len(mentions)
            line += ": " + ", ".join(mentions) + (f" and {extra} more" if extra else "")
        body.append(_section(line, verbatim=True))
    secret = " · blind round: who voted for what is not recorded" if record.blind else ""
    cost = f"Cost {money(record.net_cost)}"
    if record.refunded:
        cost += f" (charged {money(record.charged)}, refunded {money(record.refunded)})"
    tail = [
        _context(
            f"{_plural(record.voters, 'voter')}{secret} · {cost} · "
            f"`/sora export {record.round_id}` for Markdown, `csv` or `json`"
        )
    ]
    blocks = within_budget(head, body, tail, left_out="variations")
    return _message(f"Decision record for round {record.round_id}: {winner}", blocks)


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def export_sent(round_id: int, filename: str) -> Message:
    return notice_mrkdwn(
        f":page_facing_up: The decision record of round {round_id} is in your direct messages with me "
        f"(`{escape(filename)}`): only you can see it there."
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


# --- recall, help, errors ---------------------------------------------------------------------


def recall_results(query: str, cards: Sequence[PatternCard]) -> Message:
    shown = fit(query, 100)
    if not cards:
        text = (
            f"No saved patterns match “{shown}” yet. Winners are saved when a round closes, "
            "and any finished variation with its *Save* button."
        )
        return _message(text, [_section(text, verbatim=True)])
    head: list[dict[str, Any]] = [_section(f"*Patterns matching “{shown}”*", verbatim=True)]
    body: list[dict[str, Any]] = []
    for card in cards:
        saver = (
            card.saved_by if card.saved_by and re.fullmatch(r"[UW][A-Z0-9]{2,20}", card.saved_by) else None
        )
        outcome = (
            f"#{card.winner_number} won with {card.votes} of {card.voters} voters · {card.rounds_closed_at}"
        )
        if card.saved_by:
            outcome = f"#{card.winner_number} saved · {card.rounds_closed_at}"
        elif card.round_place > 1:  # a later round of its thread: a later version of the pattern
            outcome += f" · round {card.round_place} of its thread"
        settings = f"{card.settings.get('seconds', '?')} s · {card.settings.get('aspect', '?')}"
        if card.rhythm:
            settings += " · rhythm " + ", ".join(f"{float(str(b['start'])):g}s" for b in card.rhythm[:8])
        body.append(_section(f"*{fit(card.title, 150)}*\n>{fit(card.prompt, 2_000)}", verbatim=True))
        who = f"<@{saver}> " if saver else ""  # a well-formed user id only: the rest is escaped
        body.append(_context(who + fit(f"{outcome} · {settings}", 500)))
    blocks = within_budget(head, body, [], left_out="blocks of patterns")
    return _message(f"{len(cards)} pattern(s) match “{shown}”", blocks)


# Written as Slack mrkdwn: the placeholders' angle brackets are escaped, or Slack would read them as links.
HELP = (
    "*sora-bot* turns an idea into a few short video variations your team votes on.\n"
    "• `/sora draft &lt;idea&gt;` — a structured prompt, checklist and cost before anything is spent "
    "(add `--goal social`, `ad`, `product`, `loop`, `storyboard` or `style`; `--explore camera` or `finish` "
    "to vary that layer across the variations)\n"
    "• *Generate* on the draft — variations arrive in a thread; react :+1: :heart: :fire: on one (or its "
    "video) to vote (in a blind round, press *Vote*); the owner closes with *Close voting* or "
    "`pick #2 &lt;why&gt;`\n"
    "• In the thread: `remix #2 make it golden hour`, `recut #1 1.5-4`, `extend #1 4s &lt;next beat&gt;`, "
    "`loop #3`, `blend #1 #3`, `again`, `pick #2`, `help` — or a finished variation's buttons\n"
    "• `/sora storyboard` — beat cards with start times; `/sora settings` — channel defaults and budget\n"
    "• `/sora recall &lt;words&gt;` — find winning prompts again\n"
    "• `/sora export [round] [csv|json]` — a round's decision record as a file, sent to you alone\n"
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
        + (f" (model {fit(defaults.model, 100)})" if defaults.model else "")
        + f" — configured: {', '.join(providers)}",
        f"• goal: {goal}",
        f"• budget: {budget} · spent today: ${defaults.spent_today:,.2f}",
        "*Voting rules* (a round keeps the ones it started with):",
        f"• vote: {defaults.vote_minutes} minutes · quorum: "
        + ("off" if defaults.quorum is None else f"{defaults.quorum} voters")
        + f" · tie: the owner has {defaults.tie_minutes} minutes to pick, then the earliest tied variation wins",
        f"• emoji: {' '.join(f':{e}:' for e in votes.shown_order(defaults.vote_emoji))}",
        "• multi: "
        + (
            "on — one vote per variation"
            if defaults.multi
            else "off — one vote per person, a new one moves it"
        )
        + f" · owner_votes: {'on' if defaults.owner_votes else 'off'}"
        f" · blind: {'on — votes by button, hidden until close' if defaults.blind else 'off'}",
        "Change with e.g. `/sora settings vote=30 quorum=4 blind=on emoji=:+1: :fire:`. Budget, provider and "
        "model are for workspace admins; every change is announced in the channel.",
    ]
    return notice_mrkdwn("\n".join(lines))


def notice_mrkdwn(text: str) -> Message:
    """A message whose mrkdwn the bot wrote itself (no user text inside)."""
    return _message(text, [_section(text)])


def notice(text: str) -> Message:
    """A plain notice written by the core (it may quote user text or a provider's message): escaped whole."""
    safe = fit(text, SECTION_TEXT)
    return _message(safe, [_section(safe, verbatim=True)])


def notice_by(user_id: str, text: str) -> Message:
    """A notice about what a person did: their mention (a well-formed user id only), then the escaped text."""
    who = f"<@{user_id}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", user_id) else "Someone"
    safe = f"{who} {escape(text)}"
    return {"text": safe, "blocks": [_section(safe)]}


def user_error(message: str) -> Message:
    """An error for the person who caused it; the message may quote their text, so it is escaped."""
    safe = f":warning: {fit(message, SECTION_TEXT - 10)}"
    return _message(safe, [_section(safe, verbatim=True)])

"""Modals: the draft editor, the storyboard and a variation's Remix / Recut / Extend, their Block Kit views and
reading their submitted values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot import prompts, replies, storyboard
from bot.domain import Aspect
from bot.drafts import MAX_FIELD_CHARS, MAX_STORYBOARD_IDEA_CHARS, DraftEdit
from bot.variations import Target
from bot.views import DraftCard
from handlers.blocks import clip, goal_options, seconds

EDIT_CALLBACK = "draft_edit_modal"
STORYBOARD_CALLBACK = "storyboard_modal"
REMIX_CALLBACK = "variation_remix_modal"
RECUT_CALLBACK = "variation_recut_modal"
EXTEND_CALLBACK = "variation_extend_modal"
BEAT_ROWS = 4
IMAGE_TYPES = ("png", "jpg", "jpeg", "webp")
NUMBER_CHARS = 8  # "2.5 s", "0:02.5": a number field never needs more

_LAYERS = (
    ("subject", "Subject", "One clear subject, e.g. a small delivery robot"),
    ("action", "Action", "One observable motion, e.g. rolls through puddles"),
    ("camera", "Camera", "One camera behaviour, e.g. slow dolly-in at robot height"),
    ("environment", "Environment", "Where and when, supporting the subject"),
    ("finish", "Finish", "Light, colour, texture; at most two style cues"),
    ("intent", "Output intent", "What it is for, e.g. 8-second product teaser"),
)


def _text_input(
    block_id: str,
    label: str,
    *,
    max_length: int,
    initial: str = "",
    placeholder: str = "",
    optional: bool = False,
) -> dict[str, Any]:
    """A text field Slack itself stops at `max_length`; the core checks the same cap on submission."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": max_length}
    if initial:
        element["initial_value"] = clip(initial, max_length)
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": clip(placeholder, 150)}
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def _select(
    block_id: str, label: str, options: list[dict[str, Any]], *, initial: str | None, optional: bool = False
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "action_id": "value", "options": options}
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def _options(values: Sequence[str]) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values]


KEYFRAME = "make_keyframe"


def edit_modal(
    card: DraftCard, *, providers: Sequence[str], response_url: str | None, keyframes: bool = False
) -> dict[str, Any]:
    """Every field of a draft; the response_url lets the submission replace the private card."""
    blocks = [
        _text_input(
            name,
            label,
            initial=getattr(card.spec, name),
            placeholder=hint,
            max_length=MAX_FIELD_CHARS,
            optional=name not in ("subject", "action"),
        )
        for name, label, hint in _LAYERS
    ]
    blocks += [
        _select("aspect", "Aspect", _options([a.value for a in Aspect]), initial=card.aspect.value),
        _text_input(
            "seconds", "Seconds", initial=str(card.seconds), placeholder="2 to 20", max_length=NUMBER_CHARS
        ),
        _select("variations", "Variations", _options(["2", "3", "4"]), initial=str(card.variations)),
        _select("provider", "Provider", _options(list(providers)), initial=card.provider),
        _select(
            "goal",
            "Goal preset",
            goal_options(),
            initial=card.goal.value if card.goal else None,
            optional=True,
        ),
        {
            "type": "input",
            "block_id": "reference",
            "optional": True,
            "label": {"type": "plain_text", "text": "Reference image (first frame)"},
            "element": {
                "type": "file_input",
                "action_id": "value",
                "filetypes": list(IMAGE_TYPES),
                "max_files": 1,
            },
        },
    ]
    if keyframes:
        blocks.append(
            {
                "type": "input",
                "block_id": "keyframe",
                "optional": True,
                "label": {"type": "plain_text", "text": "Keyframe"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": "Make a first frame from the prompt"},
                            "value": KEYFRAME,
                        }
                    ],
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        "private_metadata": json.dumps({"draft_id": card.draft_id, "response_url": response_url}),
        "title": {"type": "plain_text", "text": "Edit draft"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def storyboard_modal(*, idea: str, response_url: str | None, channel_id: str) -> dict[str, Any]:
    """2–4 beat cards with start times; spacing is checked when it is submitted."""
    blocks: list[dict[str, Any]] = [
        _text_input(
            "idea",
            "Subject and idea",
            initial=idea,
            placeholder="a small delivery robot in a neon alley",
            max_length=MAX_STORYBOARD_IDEA_CHARS,
        ),
        _text_input(
            "seconds", "Clip length (seconds)", initial="8", placeholder="2 to 20", max_length=NUMBER_CHARS
        ),
        _select("goal", "Goal preset", goal_options(), initial=prompts.Goal.STORYBOARD.value, optional=True),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "One action per card. Cards closer than ~1.5 s cause hard cuts; more than four crowd "
                    "the clip. Leave unused rows empty.",
                }
            ],
        },
    ]
    for row in range(BEAT_ROWS):
        start = f"{row * 2}" if row < 2 else ""
        blocks.append(
            _text_input(
                f"beat-{row}",
                f"Card {row + 1}",
                placeholder="what happens",
                optional=row >= 2,
                max_length=storyboard.MAX_BEAT_CHARS,
            )
        )
        blocks.append(
            _text_input(
                f"beat-{row}-start",
                f"Card {row + 1} starts at (s)",
                initial=start,
                optional=row >= 2,
                max_length=NUMBER_CHARS,
            )
        )
    return {
        "type": "modal",
        "callback_id": STORYBOARD_CALLBACK,
        "private_metadata": json.dumps({"response_url": response_url, "channel_id": channel_id}),
        "title": {"type": "plain_text", "text": "Storyboard"},
        "submit": {"type": "plain_text", "text": "Draft it"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


# --- a variation's modals: the reply verbs with a form --------------------------------------------


def _hint(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _variation_modal(
    callback_id: str, title: str, submit: str, target: Target, where: Where, blocks: list[dict[str, Any]]
) -> dict[str, Any]:
    meta = {
        "generation_id": target.generation_id,
        "channel_id": where.channel_id,
        "thread_ts": where.thread_ts,
    }
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": clip(title, 24)},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


@dataclass(frozen=True)
class Where:
    """The thread a variation's button was clicked in: where a later problem is told privately."""

    channel_id: str
    thread_ts: str | None


def remix_modal(target: Target, where: Where) -> dict[str, Any]:
    return _variation_modal(
        REMIX_CALLBACK,
        f"Remix #{target.number}",
        "Remix",
        target,
        where,
        [
            _text_input(
                "change",
                "One change",
                placeholder="make it golden hour",
                max_length=replies.MAX_CHANGE_CHARS,
            ),
            _hint(
                "One change per remix (the light, the camera, the setting…): the vote then says which change "
                "worked. Several at once? Remix once for each."
            ),
        ],
    )


def recut_modal(target: Target, where: Where) -> dict[str, Any]:
    length = seconds(target.length)
    return _variation_modal(
        RECUT_CALLBACK,
        f"Recut #{target.number}",
        "Recut",
        target,
        where,
        [
            _hint(f"#{target.number} is {length} s long. The recut keeps what lies between start and end."),
            _text_input("start", "Start (seconds)", initial="0", placeholder="1.5", max_length=NUMBER_CHARS),
            _text_input("end", "End (seconds)", initial=length, placeholder=length, max_length=NUMBER_CHARS),
        ],
    )


def extend_modal(target: Target, where: Where) -> dict[str, Any]:
    return _variation_modal(
        EXTEND_CALLBACK,
        f"Extend #{target.number}",
        "Extend",
        target,
        where,
        [
            _text_input(
                "seconds",
                "Seconds to add",
                initial="4",
                placeholder=f"{replies.MIN_EXTEND_SECONDS} to {replies.MAX_EXTEND_SECONDS}",
                max_length=NUMBER_CHARS,
            ),
            _text_input(
                "direction",
                "What happens next",
                placeholder="the robot turns to camera",
                max_length=replies.MAX_CHANGE_CHARS,
                optional=True,
            ),
            _hint(
                f"The clip continues from #{target.number}'s last frame and the two are joined into one "
                "new variation. Left empty: the same shot continues for a moment."
            ),
        ],
    )


def variation_command(view: dict[str, Any], *, length: float) -> replies.ReplyCommand | dict[str, str]:
    """A variation modal's submission as the reply command it stands for, or problems keyed by field."""
    values = view["state"]["values"]
    callback = view.get("callback_id")
    if callback == REMIX_CALLBACK:
        return replies.remix_fields(_value(values, "change"))
    if callback == RECUT_CALLBACK:
        return replies.recut_fields(_value(values, "start"), _value(values, "end"), length=length)
    return replies.extend_fields(_value(values, "seconds"), _value(values, "direction"))


# --- reading submissions ----------------------------------------------------------------------


def _value(values: dict[str, Any], block_id: str) -> str:
    element = (values.get(block_id) or {}).get("value") or {}
    if element.get("type") == "static_select":
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


def edit_values(view: dict[str, Any]) -> DraftEdit:
    values = view["state"]["values"]
    return DraftEdit(
        subject=_value(values, "subject"),
        action=_value(values, "action"),
        camera=_value(values, "camera"),
        environment=_value(values, "environment"),
        finish=_value(values, "finish"),
        intent=_value(values, "intent"),
        aspect=_value(values, "aspect"),
        seconds=_value(values, "seconds"),
        variations=_value(values, "variations"),
        provider=_value(values, "provider") or None,
        goal=_value(values, "goal") or None,
    )


def wants_keyframe(view: dict[str, Any]) -> bool:
    element = (view["state"]["values"].get("keyframe") or {}).get("value") or {}
    return any(o.get("value") == KEYFRAME for o in element.get("selected_options") or [])


def reference_files(view: dict[str, Any]) -> list[dict[str, Any]]:
    element = (view["state"]["values"].get("reference") or {}).get("value") or {}
    return list(element.get("files") or [])


@dataclass(frozen=True)
class StoryboardValues:
    idea: str
    seconds: str
    goal: str | None
    rows: tuple[tuple[str, str], ...]


def storyboard_values(view: dict[str, Any]) -> StoryboardValues:
    values = view["state"]["values"]
    return StoryboardValues(
        idea=_value(values, "idea"),
        seconds=_value(values, "seconds"),
        goal=_value(values, "goal") or None,
        rows=tuple(
            (_value(values, f"beat-{i}"), _value(values, f"beat-{i}-start")) for i in range(BEAT_ROWS)
        ),
    )


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}

"""What Slack refuses in a message, a modal or an upload: Block Kit's published limits, element by element."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
# Not in Slack's reference, but measured: past ~13,200 characters of blocks JSON Slack answers
# msg_blocks_too_long whatever each block holds (slackapi/bolt-js#2509).
MAX_BLOCKS_JSON = 13_200
MAX_TEXT = 40_000
MAX_SECTION_TEXT = 3_000
MAX_TEXT_OBJECT = 3_000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_URL = 3_000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_CHECKBOX_OPTIONS = 10
MAX_ID = 255  # block_id, action_id, callback_id
MAX_PLACEHOLDER = 150
MAX_LABEL = 2_000
MAX_INPUT_VALUE = 3_000
MAX_ALT_TEXT = 2_000
MAX_VIEW_TITLE = 24  # title, submit and close
MAX_PRIVATE_METADATA = 3_000
MAX_VIEW_BYTES = 250_000
MAX_FILE_ALT_TXT = 1_000

_TEXT_TYPES = ("plain_text", "mrkdwn")


@dataclass(frozen=True)
class Refusal:
    """Slack's `error` code and the human detail it adds in `response_metadata.messages`."""

    error: str
    detail: str


def check_message(text: str, blocks: list[dict[str, Any]]) -> Refusal | None:
    """The first limit `text` and `blocks` break, or None when Slack would accept them."""
    if len(text) > MAX_TEXT:
        return Refusal("msg_too_long", f"text is {len(text)} characters; no more than {MAX_TEXT} allowed")
    if len(blocks) > MAX_BLOCKS:
        return Refusal(
            "invalid_blocks",
            f"too many blocks: {len(blocks)}; no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]",
        )
    # Counted on the compact form: how a request is written must not change whether it is accepted.
    size = len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))
    if size > MAX_BLOCKS_JSON:
        return Refusal(
            "invalid_blocks",
            f"blocks are {size} characters of JSON; no more than {MAX_BLOCKS_JSON} allowed [json-pointer:/blocks]",
        )
    problem = next(_blocks_problems(blocks, "/blocks"), None)
    return None if problem is None else Refusal("invalid_blocks", problem)


def check_view(view: dict[str, Any]) -> Refusal | None:
    """The first limit a modal breaks (views.open, views.push, views.update), or None."""
    size = len(json.dumps(view, ensure_ascii=False).encode())
    if size > MAX_VIEW_BYTES:
        return Refusal("view_too_large", f"the view is {size} bytes; no more than {MAX_VIEW_BYTES} allowed")
    problem = next(_view_problems(view), None)
    return None if problem is None else Refusal("invalid_arguments", problem)


def check_alt_txt(alt_txt: str | None) -> Refusal | None:
    if alt_txt is not None and len(alt_txt) > MAX_FILE_ALT_TXT:
        return Refusal(
            "alt_txt_too_large",
            f"alt_txt is {len(alt_txt)} characters; no more than {MAX_FILE_ALT_TXT} allowed",
        )
    return None


# --- the walk ---------------------------------------------------------------------------------------


def _too_long(value: object, limit: int, at: str, what: str = "") -> Iterator[str]:
    if isinstance(value, str) and len(value) > limit:
        name = f"{what} " if what else ""
        yield f"{name}must be no more than {limit} characters, is {len(value)} [json-pointer:{at}]"


def _view_problems(view: dict[str, Any]) -> Iterator[str]:
    if view.get("type") not in ("modal", "home"):
        yield "view type must be modal or home [json-pointer:/view/type]"
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        yield "blocks is required [json-pointer:/view/blocks]"
        return
    if len(blocks) > MAX_VIEW_BLOCKS:
        yield (
            f"too many blocks: {len(blocks)}; no more than {MAX_VIEW_BLOCKS} items allowed "
            "[json-pointer:/view/blocks]"
        )
    for key in ("title", "submit", "close"):
        if key in view:
            yield from _text_object(view[key], MAX_VIEW_TITLE, f"/view/{key}", plain_only=True)
        elif key == "title" and view.get("type") == "modal":
            yield "title is required [json-pointer:/view/title]"
    yield from _too_long(view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata")
    yield from _too_long(view.get("callback_id"), MAX_ID, "/view/callback_id")
    yield from _blocks_problems(blocks, "/view/blocks")


def _blocks_problems(blocks: list[dict[str, Any]], at: str) -> Iterator[str]:
    for index, block in enumerate(blocks):
        yield from _block_problems(block, f"{at}/{index}")


def _block_problems(block: dict[str, Any], at: str) -> Iterator[str]:
    kind = block.get("type")
    yield from _too_long(block.get("block_id"), MAX_ID, f"{at}/block_id")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            yield f"a section needs text or fields [json-pointer:{at}]"
        if "text" in block:
            yield from _text_object(block["text"], MAX_SECTION_TEXT, f"{at}/text")
        fields = block.get("fields")
        if fields is not None:
            if len(fields) > MAX_FIELDS:
                yield f"too many fields: {len(fields)}; no more than {MAX_FIELDS} [json-pointer:{at}/fields]"
            for i, item in enumerate(fields):
                yield from _text_object(item, MAX_FIELD_TEXT, f"{at}/fields/{i}")
        if "accessory" in block:
            yield from _element(block["accessory"], f"{at}/accessory")
    elif kind == "header":
        yield from _text_object(block.get("text"), MAX_HEADER_TEXT, f"{at}/text", plain_only=True)
    elif kind == "context":
        elements = block.get("elements") or []
        if not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
            yield (
                f"context needs 1 to {MAX_CONTEXT_ELEMENTS} elements, has {len(elements)} "
                f"[json-pointer:{at}/elements]"
            )
        for i, element in enumerate(elements):
            if element.get("type") == "image":
                yield from _too_long(element.get("alt_text"), MAX_ALT_TEXT, f"{at}/elements/{i}/alt_text")
            else:
                yield from _text_object(element, MAX_TEXT_OBJECT, f"{at}/elements/{i}")
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements or len(elements) > MAX_ACTIONS_ELEMENTS:
            yield (
                f"actions needs 1 to {MAX_ACTIONS_ELEMENTS} elements, has {len(elements)} "
                f"[json-pointer:{at}/elements]"
            )
        for i, element in enumerate(elements):
            yield from _element(element, f"{at}/elements/{i}")
    elif kind == "input":
        yield from _text_object(block.get("label"), MAX_LABEL, f"{at}/label", plain_only=True)
        if "hint" in block:
            yield from _text_object(block["hint"], MAX_LABEL, f"{at}/hint", plain_only=True)
        yield from _element(block.get("element") or {}, f"{at}/element")
    elif kind == "image":
        yield from _too_long(block.get("alt_text"), MAX_ALT_TEXT, f"{at}/alt_text")
        yield from _too_long(block.get("image_url"), MAX_URL, f"{at}/image_url")


def _text_object(value: object, limit: int, at: str, *, plain_only: bool = False) -> Iterator[str]:
    if not isinstance(value, dict) or value.get("type") not in _TEXT_TYPES:
        yield f"must be a text object [json-pointer:{at}]"
        return
    if plain_only and value["type"] != "plain_text":
        yield f"must be plain_text [json-pointer:{at}/type]"
    text = value.get("text")
    if not isinstance(text, str) or not text:
        yield f"text must be a non-empty string [json-pointer:{at}/text]"
        return
    yield from _too_long(text, limit, f"{at}/text")
    # Each type takes only its own flag: `verbatim` is mrkdwn's, `emoji` is plain_text's.
    if value["type"] == "plain_text" and "verbatim" in value:
        yield f"verbatim is not allowed on plain_text [json-pointer:{at}/verbatim]"
    if value["type"] == "mrkdwn" and "emoji" in value:
        yield f"emoji is not allowed on mrkdwn [json-pointer:{at}/emoji]"


def _options(options: object, limit: int, at: str) -> Iterator[str]:
    if not isinstance(options, list) or not options or len(options) > limit:
        count = len(options) if isinstance(options, list) else 0
        yield f"needs 1 to {limit} options, has {count} [json-pointer:{at}]"
        return
    for i, option in enumerate(options):
        yield from _option(option, f"{at}/{i}")


def _option(option: object, at: str) -> Iterator[str]:
    if not isinstance(option, dict):
        yield f"must be an option object [json-pointer:{at}]"
        return
    yield from _text_object(option.get("text"), MAX_OPTION_TEXT, f"{at}/text")
    yield from _too_long(option.get("value"), MAX_OPTION_VALUE, f"{at}/value")


def _element(element: dict[str, Any], at: str) -> Iterator[str]:
    kind = element.get("type")
    yield from _too_long(element.get("action_id"), MAX_ID, f"{at}/action_id")
    if "placeholder" in element:
        yield from _text_object(element["placeholder"], MAX_PLACEHOLDER, f"{at}/placeholder", plain_only=True)
    if kind == "button":
        yield from _text_object(element.get("text"), MAX_BUTTON_TEXT, f"{at}/text", plain_only=True)
        yield from _too_long(element.get("value"), MAX_BUTTON_VALUE, f"{at}/value")
        yield from _too_long(element.get("url"), MAX_URL, f"{at}/url")
    elif kind in ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"):
        limit = MAX_CHECKBOX_OPTIONS if kind in ("checkboxes", "radio_buttons") else MAX_OPTIONS
        yield from _options(element.get("options"), limit, f"{at}/options")
        if "initial_option" in element:
            yield from _option(element["initial_option"], f"{at}/initial_option")
    elif kind == "plain_text_input":
        yield from _too_long(element.get("initial_value"), MAX_INPUT_VALUE, f"{at}/initial_value")
        if int(element.get("max_length") or 0) > MAX_INPUT_VALUE:
            yield f"max_length must be no more than {MAX_INPUT_VALUE} [json-pointer:{at}/max_length]"
        if element.get("max_length") and len(str(element.get("initial_value") or "")) > int(
            element["max_length"]
        ):
            yield f"initial_value must be no longer than max_length [json-pointer:{at}/initial_value]"
    elif kind == "file_input" and not 1 <= int(element.get("max_files") or 10) <= 10:
        yield f"max_files must be 1 to 10 [json-pointer:{at}/max_files]"

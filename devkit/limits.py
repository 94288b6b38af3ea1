"""What Slack refuses in a message: too many blocks, blocks or text too long (Block Kit's published limits)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BLOCKS = 50
MAX_BLOCKS_JSON = 13_200
MAX_TEXT = 40_000
MAX_SECTION_TEXT = 3_000


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
    for index, block in enumerate(blocks):
        section_text = block.get("text") if block.get("type") == "section" else None
        body = section_text.get("text") if isinstance(section_text, dict) else None
        if isinstance(body, str) and len(body) > MAX_SECTION_TEXT:
            return Refusal(
                "invalid_blocks",
                f"section text is {len(body)} characters; must be no more than {MAX_SECTION_TEXT} "
                f"[json-pointer:/blocks/{index}/text]",
            )
    return None

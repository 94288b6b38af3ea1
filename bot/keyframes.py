"""Keyframes: a first frame made with an OpenAI image model, so a text draft can run as image-to-video."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass

import openai

from bot.domain import Aspect

log = logging.getLogger(__name__)

# GPT image models take any size whose sides divide by 16, so the keyframe can match the video's frame.
_SIZES = {Aspect.LANDSCAPE: "1280x720", Aspect.PORTRAIT: "720x1280", Aspect.SQUARE: "1024x1024"}


@dataclass(frozen=True)
class Keyframe:
    """The PNG bytes, or why there are none (a plain-words note, never an exception for the user)."""

    png: bytes | None
    note: str | None = None


class KeyframeMaker:
    def __init__(self, *, client: openai.OpenAI, model: str, timeout: float = 60.0) -> None:
        # Image generation is slow; one retry at most, on the caller's clock.
        self._client = client.with_options(timeout=timeout, max_retries=1)
        self._model = model

    def make(self, prompt: str, *, aspect: Aspect) -> Keyframe:
        try:
            result = self._client.images.generate(
                model=self._model, prompt=prompt[:4000], size=_SIZES[aspect], n=1, output_format="png"
            )
            encoded = (result.data or [])[0].b64_json if result.data else None
            if not encoded:
                return Keyframe(None, "The image model returned no picture; the draft stays text-to-video.")
            return Keyframe(base64.b64decode(encoded, validate=True))
        except openai.APITimeoutError:
            return Keyframe(None, "The image model timed out; the draft stays text-to-video.")
        except openai.APIStatusError as err:
            log.warning("keyframe failed: %s", err)
            return Keyframe(
                None,
                f"The image model refused or failed (HTTP {err.status_code}); the draft stays text-to-video.",
            )
        except (openai.OpenAIError, binascii.Error, IndexError) as err:
            log.warning("keyframe failed: %s", err)
            return Keyframe(None, "The image model could not be reached; the draft stays text-to-video.")


def build_keyframes(*, api_key: str | None, base_url: str | None, model: str) -> KeyframeMaker | None:
    if not api_key:
        return None
    return KeyframeMaker(client=openai.OpenAI(api_key=api_key, base_url=base_url or None), model=model)

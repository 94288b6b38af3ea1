"""How a failure reaches the person who caused it: privately, in plain words, never as a stack trace."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from bot.errors import UserError
from bot.ports import Publisher
from handlers import blocks

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])

SORRY = "Something went wrong on our side and it has been logged. Please try again in a moment."


def report_error(error: BaseException, context: Any, publisher: Publisher) -> None:
    """Tell the user what went wrong: their mistake in their words, ours as a short apology."""
    if isinstance(error, UserError):
        text = str(error)
    else:
        log.error("unhandled error in a listener", exc_info=error)
        text = SORRY
    if (meter := context.get("meter")) is not None:
        meter.listener_error("user" if isinstance(error, UserError) else "internal")
    respond = context.get("respond") if context.get("response_url") else None
    try:
        if respond is not None:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(text))
            return
        channel_id, user_id = context.get("channel_id"), context.get("user_id")
        if channel_id and user_id:
            publisher.tell_user(channel_id, user_id, text, thread_ts=context.get("thread_ts"))
    except Exception:  # reporting must never raise over the original failure
        log.exception("could not report an error to the user")


def reported(publisher: Publisher) -> Callable[[F], F]:
    """Catch a listener's failure after ack() and report it.

    Bolt's sync runner can lose an already-sent ack when a listener raises quickly after it (the request
    then ends in 404 "unhandled request"), so listeners must not let errors escape. The listener must
    take a `context` argument; Bolt injects arguments by the wrapped function's names.
    """

    def decorate(listener: F) -> F:
        @functools.wraps(listener)
        def wrapper(**kwargs: Any) -> None:
            try:
                listener(**kwargs)
            except Exception as error:
                report_error(error, kwargs["context"], publisher)

        return wrapper  # type: ignore[return-value]

    return decorate

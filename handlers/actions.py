"""Button listeners: Generate and Cancel on a draft card, Close voting on a round."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.errors import InvalidInput
from bot.workflow import Workflow
from handlers import blocks
from handlers.errors import reported


def _id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    if not value.isdigit():
        raise InvalidInput("That button is out of date; start again with `/sora draft <idea>`.")
    return int(value)


def register(app: App, workflow: Workflow) -> None:
    guarded = reported(workflow.publisher)

    @app.action(blocks.GENERATE)
    @guarded
    def handle_generate(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        started = workflow.start_round(_id(body), actor=body["user"]["id"])
        respond(replace_original=True, **blocks.draft_card(started.card, generating=True))

    @app.action(blocks.CANCEL)
    @guarded
    def handle_cancel(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        outcome = workflow.cancel_draft(_id(body), actor=body["user"]["id"])
        if outcome.done:
            respond(delete_original=True)
        elif outcome.message:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(outcome.message))

    @app.action(blocks.CLOSE)
    @guarded
    def handle_close(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        outcome = workflow.close_round(_id(body), actor=body["user"]["id"])
        if outcome.message:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(outcome.message))

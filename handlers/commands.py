"""`/sora` slash command listener: parse, call the core, render."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot import commands as parse
from bot.workflow import Workflow
from handlers import blocks
from handlers.errors import reported


def register(app: App, workflow: Workflow) -> None:
    @app.command("/sora")
    @reported(workflow.publisher)
    def handle_sora_command(
        ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext
    ) -> None:
        ack()
        request = parse.parse_command(command.get("text") or "")
        message = _run(workflow, request, command)
        respond(response_type="ephemeral", **message)


def _run(workflow: Workflow, request: parse.Command, command: dict[str, Any]) -> blocks.Message:
    if isinstance(request, parse.CommandError):
        return blocks.user_error(f"{request.message} {request.hint}".strip())
    if isinstance(request, parse.DraftCommand):
        card = workflow.create_draft(
            team_id=command.get("team_id", ""),
            channel_id=command["channel_id"],
            user_id=command["user_id"],
            idea=request.idea,
            goal=request.goal,
        )
        return blocks.draft_card(card)
    if isinstance(request, parse.RecallCommand):
        cards = workflow.recall(team_id=command.get("team_id", ""), query=request.query)
        return blocks.recall_results(request.query, cards)
    if isinstance(request, parse.StatusCommand):
        return blocks.status_message(
            workflow.status(channel_id=command["channel_id"], user_id=command["user_id"])
        )
    if isinstance(request, parse.HelpCommand):
        return blocks.notice_mrkdwn(blocks.HELP)
    name = type(request).__name__.removesuffix("Command").lower()
    return blocks.user_error(f"`/sora {name}` is not available yet. `/sora help` lists what works today.")

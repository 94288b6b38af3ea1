"""`/sora` slash command listener: parse, call the core, render."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import commands as parse
from bot.workflow import Workflow
from handlers import blocks, modals
from handlers.errors import reported


def register(app: App, workflow: Workflow) -> None:
    @app.command("/sora")
    @reported(workflow.publisher)
    def handle_sora_command(
        ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
    ) -> None:
        ack()
        request = parse.parse_command(command.get("text") or "")
        if isinstance(request, parse.StoryboardCommand):
            # trigger_id lives for 3 s: open the modal before anything slow.
            view = modals.storyboard_modal(
                idea=request.args, response_url=command.get("response_url"), channel_id=command["channel_id"]
            )
            client.views_open(trigger_id=command["trigger_id"], view=view)
            return
        respond(response_type="ephemeral", **_run(workflow, request, command))


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
            provider=request.provider,
        )
        return blocks.draft_card(card)
    if isinstance(request, parse.RecallCommand):
        cards = workflow.recall(team_id=command.get("team_id", ""), query=request.query)
        return blocks.recall_results(request.query, cards)
    if isinstance(request, parse.StatusCommand):
        return blocks.status_message(
            workflow.status(channel_id=command["channel_id"], user_id=command["user_id"])
        )
    if isinstance(request, parse.SettingsCommand):
        if request.changes:
            defaults = workflow.update_settings(
                team_id=command.get("team_id", ""),
                channel_id=command["channel_id"],
                user_id=command["user_id"],
                changes=request.changes,
            )
        else:
            defaults = workflow.channel_defaults(command["channel_id"])
        return blocks.settings_message(
            defaults, providers=workflow.providers.names(), changed=bool(request.changes)
        )
    return blocks.notice_mrkdwn(blocks.HELP)

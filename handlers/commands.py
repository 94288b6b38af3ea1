"""`/sora` slash command listener: parse, call the core, render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import commands as parse
from bot import records
from bot.channels import Channels
from bot.drafts import Drafts
from bot.patterns import Patterns
from bot.ports import Publisher
from bot.providers.registry import Providers
from bot.rounds import Rounds
from handlers import blocks, modals
from handlers.errors import reported


@dataclass(frozen=True)
class _Uses:
    drafts: Drafts
    channels: Channels
    rounds: Rounds
    patterns: Patterns
    providers: Providers


def register(
    app: App,
    *,
    drafts: Drafts,
    channels: Channels,
    rounds: Rounds,
    patterns: Patterns,
    providers: Providers,
    publisher: Publisher,
) -> None:
    uses = _Uses(drafts=drafts, channels=channels, rounds=rounds, patterns=patterns, providers=providers)

    @app.command("/sora")
    @reported(publisher)
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
        respond(response_type="ephemeral", **_run(uses, request, command))


def _run(uses: _Uses, request: parse.Command, command: dict[str, Any]) -> blocks.Message:
    if isinstance(request, parse.CommandError):
        return blocks.user_error(f"{request.message} {request.hint}".strip())
    if isinstance(request, parse.DraftCommand):
        card = uses.drafts.create_draft(
            team_id=command.get("team_id", ""),
            channel_id=command["channel_id"],
            user_id=command["user_id"],
            idea=request.idea,
            goal=request.goal,
            provider=request.provider,
            explore=request.explore,
        )
        return blocks.draft_card(card)
    if isinstance(request, parse.RecallCommand):
        cards = uses.patterns.recall(
            team_id=command.get("team_id", ""), channel_id=command["channel_id"], query=request.query
        )
        return blocks.recall_results(request.query, cards)
    if isinstance(request, parse.StatusCommand):
        return blocks.status_message(
            uses.rounds.status(
                channel_id=command["channel_id"],
                user_id=command["user_id"],
                providers=uses.providers.names(),
                default=uses.providers.default,
            )
        )
    if isinstance(request, parse.SettingsCommand):
        if request.changes:
            defaults = uses.channels.update_settings(
                team_id=command.get("team_id", ""),
                channel_id=command["channel_id"],
                user_id=command["user_id"],
                changes=request.changes,
            )
        else:
            defaults = uses.channels.defaults(command["channel_id"])
        return blocks.settings_message(
            defaults, providers=uses.providers.names(), changed=bool(request.changes)
        )
    if isinstance(request, parse.ExportCommand):
        done = uses.rounds.export_round(
            team_id=command.get("team_id", ""),
            channel_id=command["channel_id"],
            user_id=command["user_id"],
            round_id=request.round_id,
            fmt=records.ExportFormat(request.fmt),
        )
        return blocks.export_sent(done.round_id, done.filename)
    return blocks.notice_mrkdwn(blocks.HELP)

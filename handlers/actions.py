"""Button, menu and modal listeners: the draft card (Generate, Edit, goal, variations, Cancel), rounds, and each
variation's buttons (Cancel while it renders; Remix…, Recut…, Extend…, Loop, Again, Pick and Save once it is
finished)."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot import prompts, replies
from bot.ballot_box import BallotBox
from bot.drafts import Drafts
from bot.errors import InvalidInput, UserError
from bot.jobs import Jobs
from bot.patterns import Patterns
from bot.ports import Publisher
from bot.providers.registry import Providers
from bot.rounds import Rounds
from bot.variations import Target, Variations
from bot.views import Outcome
from handlers import blocks, modals
from handlers.errors import reported

log = logging.getLogger(__name__)

MAX_REFERENCE_BYTES = 10 * 1024 * 1024  # Slack's own file_input limit


def _id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    if not value.isdigit():
        raise InvalidInput("That button is out of date; start again with `/sora draft <idea>`.")
    return int(value)


def _draft_id(body: dict[str, Any]) -> int:
    """The draft a card's control belongs to (a menu has no value of its own; its block says which draft)."""
    block_id = str(body["actions"][0].get("block_id", ""))
    if block_id.startswith("draft-") and block_id[6:].isdigit():
        return int(block_id[6:])
    return _id(body)


def _where(body: dict[str, Any]) -> modals.Where:
    container = body.get("container") or {}
    thread_ts = container.get("thread_ts") or (body.get("message") or {}).get("thread_ts")
    channel_id = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    return modals.Where(channel_id=str(channel_id), thread_ts=str(thread_ts) if thread_ts else None)


# A finished variation's buttons that act at once, as the reply verb of the same name.
_AT_ONCE = {blocks.LOOP: replies.Verb.LOOP, blocks.AGAIN: replies.Verb.AGAIN, blocks.PICK: replies.Verb.PICK}
_MODALS: dict[str, Callable[[Target, modals.Where], dict[str, Any]]] = {
    blocks.REMIX: modals.remix_modal,
    blocks.RECUT: modals.recut_modal,
    blocks.EXTEND: modals.extend_modal,
}


def register(
    app: App,
    *,
    drafts: Drafts,
    rounds: Rounds,
    ballots: BallotBox,
    variations: Variations,
    patterns: Patterns,
    jobs: Jobs,
    providers: Providers,
    publisher: Publisher,
) -> None:
    guarded = reported(publisher)

    def answer(respond: Respond, outcome: Outcome) -> None:
        if outcome.message:
            shown = blocks.notice(outcome.message) if outcome.done else blocks.user_error(outcome.message)
            respond(response_type="ephemeral", replace_original=False, **shown)

    @app.action(blocks.GENERATE)
    @guarded
    def handle_generate(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        started = rounds.start_round(_id(body), actor=body["user"]["id"])
        respond(replace_original=True, **blocks.draft_card(started.card, generating=True))

    @app.action(blocks.CANCEL)
    @guarded
    def handle_cancel(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        outcome = drafts.cancel_draft(_id(body), actor=body["user"]["id"])
        if outcome.done:
            respond(delete_original=True)
        elif outcome.message:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(outcome.message))

    @app.action(blocks.GOAL)
    @guarded
    def handle_goal(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        selected = (body["actions"][0].get("selected_option") or {}).get("value", "")
        goal = prompts.parse_goal(selected)
        if goal is None:
            raise InvalidInput("That goal is not one the bot knows; pick one from the list.")
        card = drafts.change_goal(_draft_id(body), actor=body["user"]["id"], goal=goal)
        respond(replace_original=True, **blocks.draft_card(card))

    @app.action(blocks.EXPLORE)
    @guarded
    def handle_explore(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        selected = (body["actions"][0].get("selected_option") or {}).get("value", "")
        layer = prompts.parse_explore(selected)
        if layer is None and selected != blocks.REROLLS:
            raise InvalidInput("That is not a layer the bot can explore; pick one from the list.")
        card = drafts.change_explore(_draft_id(body), actor=body["user"]["id"], explore=layer)
        respond(replace_original=True, **blocks.draft_card(card))

    @app.action(blocks.EDIT)
    @guarded
    def handle_edit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        ack()  # trigger_id expires in 3 s: open the modal right away
        card = drafts.draft_card(_id(body), actor=body["user"]["id"])
        view = modals.edit_modal(
            card,
            providers=providers.names(),
            response_url=body.get("response_url"),
            keyframes=drafts.keyframes is not None,
        )
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(modals.EDIT_CALLBACK)
    @guarded
    def handle_edit_submission(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        edit = modals.edit_values(view)
        problems = drafts.validate_edit(edit)
        files = modals.reference_files(view)
        if files and not str(files[0].get("mimetype", "image/")).startswith("image/"):
            problems["reference"] = "That file is not an image; attach a PNG, JPEG or WebP."
        if problems:
            ack(response_action="errors", errors=problems)  # shown next to each field; the modal stays open
            return
        ack()
        meta, user_id = modals.metadata(view), body["user"]["id"]
        reply = WebhookClient(meta["response_url"]) if meta.get("response_url") else None
        try:
            card = drafts.update_draft(int(meta["draft_id"]), actor=user_id, edit=edit)
            if modals.wants_keyframe(view) and not files:
                card = drafts.make_keyframe(card.draft_id, actor=user_id)
            if files:
                data = _download(client, files[0])
                card = drafts.attach_reference(
                    card.draft_id, actor=user_id, data=data, filename=files[0].get("name", "file")
                )
        except (InvalidInput, OSError) as err:
            message = (
                str(err) if isinstance(err, InvalidInput) else "The reference image could not be downloaded."
            )
            if reply is not None:
                reply.send(response_type="ephemeral", replace_original=False, **blocks.user_error(message))
            return
        if reply is not None:
            reply.send(replace_original=True, **blocks.draft_card(card))

    @app.view(modals.STORYBOARD_CALLBACK)
    @guarded
    def handle_storyboard_submission(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        values = modals.storyboard_values(view)
        problems = drafts.validate_storyboard(idea=values.idea, seconds=values.seconds, rows=values.rows)
        if problems:
            ack(response_action="errors", errors=problems)
            return
        ack()  # drafting may call a model: after the ack, answered through the command's response_url
        meta = modals.metadata(view)
        reply = WebhookClient(meta["response_url"]) if meta.get("response_url") else None
        try:
            card = drafts.create_storyboard_draft(
                team_id=str(body.get("team", {}).get("id", "")),
                channel_id=str(meta.get("channel_id", "")),
                user_id=body["user"]["id"],
                idea=values.idea,
                seconds=values.seconds,
                goal=values.goal,
                rows=values.rows,
            )
        except InvalidInput as err:
            if reply is not None:
                reply.send(response_type="ephemeral", **blocks.user_error(str(err)))
            return
        if reply is not None:
            reply.send(response_type="ephemeral", **blocks.draft_card(card))

    @app.action(blocks.CLOSE)
    @guarded
    def handle_close(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        outcome = rounds.close_round(_id(body), actor=body["user"]["id"])
        if outcome.message:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(outcome.message))

    @app.action(blocks.VOTE)
    @guarded
    def handle_vote(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        action = body["actions"][0]
        outcome = ballots.cast_ballot(
            _id(body), user_id=body["user"]["id"], action_ts=str(action.get("action_ts") or "")
        )
        if outcome.message:  # the voter's own choice, for their eyes only
            respond(response_type="ephemeral", replace_original=False, **blocks.notice(outcome.message))

    @app.action(blocks.TIE_PICK)
    @guarded
    def handle_tie_pick(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        round_id, _, number = str(body["actions"][0].get("value", "")).partition(":")
        if not (round_id.isascii() and round_id.isdigit() and number.isascii() and number.isdigit()):
            raise InvalidInput("That button is out of date; reply `pick #N` in the round's thread instead.")
        outcome = rounds.close_round(int(round_id), actor=body["user"]["id"], pick=int(number), tie_only=True)
        if outcome.message:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(outcome.message))

    @app.action(blocks.CANCEL_JOB)
    @guarded
    def handle_cancel_job(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        outcome = jobs.cancel_generation(_id(body), actor=body["user"]["id"])
        if outcome.message:
            respond(response_type="ephemeral", replace_original=False, **blocks.user_error(outcome.message))

    # --- a finished variation's buttons: the same commands as the thread replies, one code path ----------

    def act_at_once(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        verb = _AT_ONCE[str(body["actions"][0]["action_id"])]
        command = replies.ReplyCommand(verb=verb)
        answer(respond, variations.handle_button(_id(body), command, actor=body["user"]["id"]))

    for action_id in _AT_ONCE:
        app.action(action_id)(guarded(act_at_once))

    def open_variation_modal(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        ack()  # trigger_id expires in 3 s: open the modal right away
        build = _MODALS[str(body["actions"][0]["action_id"])]
        view = build(variations.target(_id(body)), _where(body))
        client.views_open(trigger_id=body["trigger_id"], view=view)

    for action_id in _MODALS:
        app.action(action_id)(guarded(open_variation_modal))

    def handle_variation_submission(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        meta, user_id = modals.metadata(view), body["user"]["id"]
        generation_id = int(meta.get("generation_id") or 0)
        try:
            length = (
                variations.target(generation_id).length
                if view["callback_id"] == modals.RECUT_CALLBACK
                else 0.0
            )
        except UserError as err:
            ack(response_action="errors", errors={"end": str(err)})
            return
        command = modals.variation_command(view, length=length)
        if isinstance(command, dict):
            ack(response_action="errors", errors=command)  # shown next to each field; the modal stays open
            return
        ack()
        channel_id, thread_ts = str(meta.get("channel_id") or ""), meta.get("thread_ts")
        try:
            outcome = variations.handle_button(generation_id, command, actor=user_id)
        except UserError as err:  # after the ack: the modal is gone, so the note goes to the thread
            outcome = Outcome(False, str(err))
        if outcome.message and channel_id:
            publisher.tell_user(channel_id, user_id, outcome.message, thread_ts=thread_ts)

    for callback_id in (modals.REMIX_CALLBACK, modals.RECUT_CALLBACK, modals.EXTEND_CALLBACK):
        app.view(callback_id)(guarded(handle_variation_submission))

    @app.action(blocks.SAVE)
    @guarded
    def handle_save(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        answer(respond, patterns.save_variation(_id(body), actor=body["user"]["id"]))


def _download(client: WebClient, file: dict[str, Any]) -> bytes:
    """A file_input upload, fetched with the bot token (needs files:read); never more than Slack allows."""
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise OSError("the file has no download URL")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        data: bytes = response.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        raise InvalidInput("The reference image is over 10 MB; attach a smaller one.")
    return data

"""The Slack outbox: everything the bot shows in a channel is a row, claimed by one worker, sent once.

Use cases ask for posts inside their own transaction (`round_started`, `clip_ready`, `votes_changed`…), so a
post is never lost between a commit and a crash; `deliver` then claims due rows a round at a time (a lease, SKIP
LOCKED on PostgreSQL) and sends them in order. What a message says is rendered from the rows at the moment it is
sent, so a burst of changes is one `chat.update` carrying the last state, at most one per message per second.

After an uncertain send — a worker killed mid-send, or an answer lost after Slack may have acted — the row comes
back `uncertain`, and the sender looks for what it sent before (message metadata carrying the row's key, the
thread's file names) and adopts it instead of posting again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from bot import media, records, views
from bot.assets import discard, finished_clip, sheet_key
from bot.domain import JobStatus, RoundStatus, ThreadRef
from bot.errors import AssetError, PublishError, PublishUncertain
from bot.ports import AssetStore, Clock, Publisher
from bot.tuning import CoreSettings
from storage.models import Generation, Outbox, Round
from storage.outbox import UpdateRequest
from storage.store import Repo, Store

log = logging.getLogger(__name__)


class PostKind(StrEnum):
    PARENT = "post_parent"
    VARIATION = "post_variation"
    CLIP = "upload_clip"
    SHEET = "upload_sheet"
    ANNOUNCE = "announce"
    RECORD = "post_record"
    RESULT_SHEET = "upload_result_sheet"  # the contact sheet again at a close: votes, the winner marked
    WINNER_STILL = "upload_winner_still"  # a still of the winner's clip, shown on the round message
    TIE = "announce_tie"
    ROUND_UPDATE = "update_round"
    VARIATION_UPDATE = "update_variation"


UPDATES = frozenset({PostKind.ROUND_UPDATE, PostKind.VARIATION_UPDATE})


def clip_filename(round_id: int, number: int) -> str:
    """Unique in its thread: after a lost upload answer the bot finds the file again by this name."""
    return f"round-{round_id}-variation-{number}.mp4"


def sheet_filename(round_id: int) -> str:
    return f"round-{round_id}-contact-sheet.png"


def result_sheet_filename(round_id: int, close_number: int) -> str:
    return f"round-{round_id}-close-{close_number}-contact-sheet.png"


def winner_still_filename(round_id: int, close_number: int) -> str:
    return f"round-{round_id}-close-{close_number}-winner.png"


def close_number_of(key: str) -> int:
    """The close a row belongs to, from its key (`round-12/close-2/record` → 2)."""
    match = re.search(r"/close-(\d+)/", key)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class _Sent:
    ts: str | None = None
    file_id: str | None = None


class Posting:
    def __init__(
        self,
        *,
        store: Store,
        publisher: Publisher,
        assets: AssetStore,
        clock: Clock,
        settings: CoreSettings,
        worker_id: str,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.assets = assets
        self.clock = clock
        self.settings = settings
        self.worker_id = worker_id
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox")
        # What a click or a reply asked for goes out from here, so the listener is done at once: a Bolt listener
        # thread held for seconds of uploads (a close posts an announcement, two images and a record) is one the
        # next click waits for, past Slack's 3 s. `inline`: send before returning instead (tests, the demo).
        self._soon = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outbox-soon")
        self.inline = True

    def close(self) -> None:
        self._soon.shutdown(wait=True)  # what was asked for goes out before the pool closes
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- asking for posts (inside the caller's transaction) ----------------------------------

    def round_started(self, repo: Repo, round_id: int, generation_ids: Sequence[int]) -> None:
        self._enqueue(repo, PostKind.PARENT, round_id)
        for generation_id in generation_ids:
            self._enqueue(repo, PostKind.VARIATION, round_id, generation_id)

    def round_followed(self, repo: Repo, round_id: int, *, previous_id: int) -> None:
        """A round opened to follow `previous_id` in its thread: its own message (a reply there), and the
        previous round's message says that a next round follows."""
        self._enqueue(repo, PostKind.PARENT, round_id)
        self._update(repo, PostKind.ROUND_UPDATE, previous_id)

    def variation_added(self, repo: Repo, round_id: int, generation_id: int) -> None:
        self._enqueue(repo, PostKind.VARIATION, round_id, generation_id)
        self._update(repo, PostKind.ROUND_UPDATE, round_id)

    def variation_changed(self, repo: Repo, round_id: int, generation_id: int) -> None:
        self._update(repo, PostKind.VARIATION_UPDATE, round_id, generation_id)

    def round_changed(self, repo: Repo, round_id: int) -> None:
        """The round message shows something new (its cost after a refund)."""
        self._update(repo, PostKind.ROUND_UPDATE, round_id)

    def clip_ready(self, repo: Repo, round_id: int, generation_id: int) -> None:
        self._enqueue(repo, PostKind.CLIP, round_id, generation_id)
        self._update(repo, PostKind.VARIATION_UPDATE, round_id, generation_id)

    def votes_changed(self, repo: Repo, round_id: int, generation_ids: Sequence[int]) -> None:
        requests = [
            UpdateRequest(
                _key(PostKind.ROUND_UPDATE, round_id, None), PostKind.ROUND_UPDATE.value, round_id, None
            )
        ]
        requests += [
            UpdateRequest(
                _key(PostKind.VARIATION_UPDATE, round_id, g), PostKind.VARIATION_UPDATE.value, round_id, g
            )
            for g in generation_ids
        ]
        repo.outbox.request_updates(
            requests, now=self.clock.now(), min_gap=timedelta(seconds=self.settings.update_gap_seconds)
        )

    def round_closed(self, repo: Repo, round_id: int, *, close_number: int) -> None:
        """The announcement and the decision record of this close (each close of a round has its own, once) and
        every message's update."""
        self._enqueue(
            repo, PostKind.ANNOUNCE, round_id, key=f"round-{round_id}/close-{close_number}/announce"
        )
        self._enqueue(
            repo, PostKind.RESULT_SHEET, round_id, key=f"round-{round_id}/close-{close_number}/sheet"
        )
        self._enqueue(
            repo, PostKind.WINNER_STILL, round_id, key=views.winner_still_key(round_id, close_number)
        )
        # The decision record last (rows of a round go out in order): once it is in the thread, so is the rest.
        self._enqueue(repo, PostKind.RECORD, round_id, key=f"round-{round_id}/close-{close_number}/record")
        self._update(repo, PostKind.ROUND_UPDATE, round_id)
        for generation in repo.generations.in_round(round_id):
            assert generation.id is not None
            self._update(repo, PostKind.VARIATION_UPDATE, round_id, generation.id)

    def round_tied(self, repo: Repo, round_id: int, *, close_number: int) -> None:
        """The vote ended level: the tie is announced (once per close) with the owner's buttons."""
        self._enqueue(repo, PostKind.TIE, round_id, key=f"round-{round_id}/close-{close_number}/tie")
        self._update(repo, PostKind.ROUND_UPDATE, round_id)
        for generation in repo.generations.in_round(round_id):
            assert generation.id is not None
            self._update(repo, PostKind.VARIATION_UPDATE, round_id, generation.id)

    def sheet_due(self, repo: Repo, round_id: int) -> bool:
        """The round's contact sheet; False when it was asked for already (another replica, an earlier pass)."""
        return self._enqueue(repo, PostKind.SHEET, round_id)

    def _enqueue(
        self, repo: Repo, kind: PostKind, round_id: int, generation_id: int | None = None, *, key: str = ""
    ) -> bool:
        return repo.outbox.enqueue(
            key=key or _key(kind, round_id, generation_id),
            kind=kind.value,
            round_id=round_id,
            generation_id=generation_id,
            now=self.clock.now(),
        )

    def _update(self, repo: Repo, kind: PostKind, round_id: int, generation_id: int | None = None) -> None:
        repo.outbox.request_update(
            key=_key(kind, round_id, generation_id),
            kind=kind.value,
            round_id=round_id,
            generation_id=generation_id,
            now=self.clock.now(),
            min_gap=timedelta(seconds=self.settings.update_gap_seconds),
        )

    # --- sending ------------------------------------------------------------------------------

    def deliver(self, round_id: int | None = None, *, rounds: int = 8, passes: int = 20) -> int:
        """Claim and send what is due (for one round, or any), until nothing more is; returns rows sent.

        One round's rows go out in order from one worker; different rounds go out side by side.
        """
        sent = 0
        for _ in range(passes):
            with self.store.transaction() as repo:
                claimed = repo.outbox.claim(
                    now=self.clock.now(),
                    owner=self.worker_id,
                    lease=timedelta(seconds=self.settings.post_lease_seconds),
                    rounds=1 if round_id is not None else rounds,
                    round_id=round_id,
                )
            if not claimed:
                break
            by_round: dict[int, list[Outbox]] = {}
            for row in claimed:
                by_round.setdefault(row.round_id, []).append(row)
            if len(by_round) == 1:
                sent += self._send_round(next(iter(by_round.values())))
            else:
                sent += sum(self._pool.map(self._send_round, by_round.values()))
        return sent

    def deliver_soon(self, round_id: int) -> None:
        """Send the round's due rows from the outbox's own threads (now, unless `inline`: before returning). A
        failure is logged; the rows stay due, and the sweep sends them."""
        if self.inline:
            self.deliver(round_id)
            return
        try:
            self._soon.submit(self._deliver_logged, round_id)
        except RuntimeError:  # shutting down: the next process's sweep sends it
            log.info("not sending round %s's posts now: stopping", round_id)

    def _deliver_logged(self, round_id: int) -> None:
        try:
            self.deliver(round_id)
        except Exception:
            log.exception("sending round %s's posts failed; the sweep will send them", round_id)

    def next_due(self) -> datetime | None:
        with self.store.read() as repo:
            return repo.outbox.next_due()

    def _send_round(self, rows: list[Outbox]) -> int:
        # A round without its parent message yet has only that row claimable: everything else needs the thread.
        sent = 0
        for row in rows:
            try:
                if self._send(row):
                    sent += 1
            except Exception:  # one broken row must not strand the rest of the round's claim
                log.exception("posting outbox row %s (%s) failed", row.id, row.key)
                self._retry(row, "unexpected error", uncertain=True)
        return sent

    def _send(self, row: Outbox) -> bool:
        """Send one claimed row; True when it is now in Slack (sent or adopted)."""
        assert row.id is not None
        kind = PostKind(row.kind)
        # A round's rows go out one after another under one claim: each send starts with a fresh lease, and a
        # row whose lease ran out while it waited its turn (a very slow Slack) is left to whoever took it over.
        with self.store.transaction() as repo:
            lease = timedelta(seconds=self.settings.post_lease_seconds)
            if not repo.outbox.renew(row.id, owner=self.worker_id, now=self.clock.now(), lease=lease):
                log.warning(
                    "outbox row %s (%s) was taken over before it was sent; leaving it", row.id, row.key
                )
                return False
        with self.store.read() as repo:
            round_row = repo.rounds.get(row.round_id)
            generation = repo.generations.get(row.generation_id) if row.generation_id else None
            assert round_row is not None and round_row.id is not None
            view = views.round_view(repo, round_row)
            generations = list(repo.generations.in_round(round_row.id))
            record = records.decision_record(repo, round_row) if kind == PostKind.RECORD else None
        try:
            if row.uncertain and kind not in UPDATES:
                found = self._look_for(row, kind, round_row, generation)
                if found is not None:
                    log.info("outbox row %s (%s) was already in Slack; adopted it", row.id, row.key)
                    return self._record(row, kind, found)
            if record is not None:
                assert round_row.thread is not None
                thread = ThreadRef(round_row.channel_id, round_row.thread)
                result: _Sent | None = _Sent(ts=self.publisher.post_record(thread, record, key=row.key))
            else:
                result = self._post(row, kind, round_row, generation, view, generations)
        except PublishUncertain as err:
            log.warning("posting %s may have reached Slack; will look before trying again: %s", row.key, err)
            self._retry(row, str(err), uncertain=True)
            return False
        except PublishError as err:
            if err.permanent or row.attempts >= self.settings.max_post_attempts:
                log.error("giving up on posting %s: %s", row.key, err)
                self._fail(row, str(err))
            else:
                log.warning("posting %s failed, will retry: %s", row.key, err)
                self._retry(row, str(err), uncertain=False, retry_after=err.retry_after)
            return False
        if result is None:  # nothing to post (a contact sheet of a round where every variation failed)
            return self._record(row, kind, _Sent())
        return self._record(row, kind, result)

    def _post(
        self,
        row: Outbox,
        kind: PostKind,
        round_row: Round,
        generation: Generation | None,
        view: views.RoundView,
        generations: list[Generation],
    ) -> _Sent | None:
        if kind == PostKind.PARENT:  # a following round's message is a reply in its thread
            return _Sent(ts=self.publisher.post_round(view, key=row.key, thread_ts=round_row.thread_ts))
        assert round_row.parent_ts is not None and round_row.thread is not None
        thread = ThreadRef(round_row.channel_id, round_row.thread)
        if (
            kind == PostKind.ROUND_UPDATE
        ):  # the round's own message, which a following round has in the thread
            self.publisher.update_round(ThreadRef(round_row.channel_id, round_row.parent_ts), view)
            return _Sent()
        if kind == PostKind.ANNOUNCE:
            return _Sent(ts=self.publisher.announce_winner(thread, view, key=row.key))
        if kind == PostKind.TIE:
            if view.status != RoundStatus.TIED:  # settled before this went out: the result says it was a tie
                return None
            return _Sent(ts=self.publisher.announce_winner(thread, view, key=row.key))
        if kind == PostKind.SHEET:
            return self._post_sheet(round_row, generations, thread)
        if kind == PostKind.RESULT_SHEET:
            return self._post_result_sheet(round_row, generations, thread, view, close_number_of(row.key))
        if kind == PostKind.WINNER_STILL:
            return self._post_winner_still(round_row, generations, thread, view, close_number_of(row.key))
        assert generation is not None and generation.id is not None
        variation = next(v for v in view.variations if v.generation_id == generation.id)
        if kind == PostKind.VARIATION:
            return _Sent(ts=self.publisher.post_variation(thread, variation, key=row.key))
        if kind == PostKind.VARIATION_UPDATE:
            assert generation.message_ts is not None
            self.publisher.update_variation(thread, generation.message_ts, variation)
            return _Sent()
        path = self._clip(generation)
        if path is None:
            raise PublishError(
                f"the clip of generation {generation.id} is missing from the asset store", permanent=True
            )
        shared = self.publisher.upload_file(
            thread,
            path,
            filename=clip_filename(row.round_id, generation.number),
            title=f"Variation #{generation.number}",
            comment=f"#{generation.number} is ready. React on the video to vote for it.",
            alt_text=f"Video clip, variation #{generation.number}, {generation.seconds} seconds: {generation.prompt}",
        )
        return _Sent(ts=shared.message_ts, file_id=shared.file_id)

    def _post_sheet(self, round_row: Round, generations: list[Generation], thread: ThreadRef) -> _Sent | None:
        assert round_row.id is not None
        clips = [
            (g, p)
            for g in generations
            if g.status == JobStatus.COMPLETED.value and (p := self._clip(g)) is not None
        ]
        if not clips:
            return None
        ready = [g for g, _ in clips]
        made = self.assets.scratch(sheet_filename(round_row.id))
        try:
            media.contact_sheet([p for _, p in clips], made, labels=[f"#{g.number}" for g in ready])
        except media.MediaError as err:
            discard(made)
            log.error("contact sheet for round %s cannot be made: %s", round_row.id, err)
            return None
        try:
            sheet = self.assets.put(sheet_key(round_row.id), made)
        except AssetError as err:
            discard(made)
            raise PublishError(f"the contact sheet could not be stored: {err}") from None
        shared = self.publisher.upload_file(
            thread,
            sheet,
            filename=sheet_filename(round_row.id),
            title="Contact sheet",
            comment="All variations side by side. React on a variation's message or its video to vote.",
            alt_text=(
                f"Contact sheet: the middle frame of each finished variation "
                f"({', '.join(f'#{g.number}' for g in ready)}), side by side and labelled with its number."
            ),
        )
        return _Sent(file_id=shared.file_id)

    def _clip(self, generation: Generation) -> Path | None:
        """The local copy of a finished clip to upload; an asset store that cannot answer now is retried."""
        try:
            return finished_clip(self.assets, generation)
        except AssetError as err:
            raise PublishError(f"the clip of generation {generation.id} could not be read: {err}") from None

    def _post_result_sheet(
        self,
        round_row: Round,
        generations: list[Generation],
        thread: ThreadRef,
        view: views.RoundView,
        close: int,
    ) -> _Sent | None:
        """The contact sheet again as the close left it: each variation's votes, the winner marked."""
        assert round_row.id is not None
        clips = [(g, p) for g in generations if (p := self._clip(g)) is not None]
        ready = [g for g, _ in clips]
        if not ready or view.status != RoundStatus.CLOSED:
            return None
        counts = {v.generation_id: v.votes or 0 for v in view.variations}
        labels = [
            f"#{g.number}{' WINNER' if g.id == round_row.winner_generation_id else ''} "
            f"{counts.get(g.id or 0, 0)} vote{'s' if counts.get(g.id or 0, 0) != 1 else ''}"
            for g in ready
        ]
        name = result_sheet_filename(round_row.id, close)
        sheet = self.assets.scratch(name)
        try:
            media.contact_sheet([p for _, p in clips], sheet, labels=labels)
        except media.MediaError as err:
            discard(sheet)
            log.error("the closing contact sheet for round %s cannot be made: %s", round_row.id, err)
            return None
        winner = f"#{view.winner_number} won" if view.winner_number is not None else "no winner"
        try:
            shared = self.publisher.upload_file(
                thread,
                sheet,
                filename=name,
                title=f"Contact sheet: {winner}",
                comment=f"Where the vote ended: {winner}.",
                alt_text=(
                    "Contact sheet at the close: the middle frame of each finished variation, labelled with its "
                    f"number and votes ({'; '.join(labels)})."
                ),
            )
        finally:
            discard(sheet)  # a scratch file: Slack keeps the picture, a retry makes it again
        return _Sent(file_id=shared.file_id)

    def _post_winner_still(
        self,
        round_row: Round,
        generations: list[Generation],
        thread: ThreadRef,
        view: views.RoundView,
        close: int,
    ) -> _Sent | None:
        """A still of the winner's clip; once Slack has it, the round message shows it (an image block naming
        the uploaded file: Slack shows its own files without a public URL)."""
        assert round_row.id is not None
        winner = next((g for g in generations if g.id == round_row.winner_generation_id), None)
        clip = self._clip(winner) if winner is not None else None
        if winner is None or clip is None or view.status != RoundStatus.CLOSED:
            return None
        name = winner_still_filename(round_row.id, close)
        still = self.assets.scratch(name)
        try:
            media.contact_sheet([clip], still, labels=[f"#{winner.number}"])
        except media.MediaError as err:
            discard(still)
            log.error("the winner's still for round %s cannot be made: %s", round_row.id, err)
            return None
        try:
            shared = self.publisher.upload_file(
                thread,
                still,
                filename=name,
                title=f"The winner, #{winner.number}",
                comment=f"#{winner.number}, the winner, in one frame.",
                alt_text=f"A still frame from the middle of the winning clip, #{winner.number}: {winner.prompt}",
            )
        finally:
            discard(still)
        return _Sent(file_id=shared.file_id)

    def _look_for(
        self, row: Outbox, kind: PostKind, round_row: Round, generation: Generation | None
    ) -> _Sent | None:
        """What an uncertain send may have left in Slack: a message with our key, or a file with our name."""
        if kind == PostKind.PARENT:
            since = row.created_at.timestamp() - 60
            ts = self.publisher.find_message(
                round_row.channel_id, thread_ts=round_row.thread_ts, key=row.key, since=since
            )
            return _Sent(ts=ts) if ts else None
        assert round_row.thread is not None and round_row.id is not None
        thread = ThreadRef(round_row.channel_id, round_row.thread)
        if kind in (PostKind.VARIATION, PostKind.ANNOUNCE, PostKind.TIE, PostKind.RECORD):
            ts = self.publisher.find_message(
                round_row.channel_id, thread_ts=round_row.thread, key=row.key, since=0
            )
            return _Sent(ts=ts) if ts else None
        if kind == PostKind.CLIP:
            assert generation is not None
            name = clip_filename(round_row.id, generation.number)
        elif kind == PostKind.RESULT_SHEET:
            name = result_sheet_filename(round_row.id, close_number_of(row.key))
        elif kind == PostKind.WINNER_STILL:
            name = winner_still_filename(round_row.id, close_number_of(row.key))
        else:
            name = sheet_filename(round_row.id)
        found = self.publisher.find_file(thread, filename=name)
        if found is None:
            return None
        return _Sent(ts=found.message_ts if kind == PostKind.CLIP else None, file_id=found.file_id)

    def _record(self, row: Outbox, kind: PostKind, sent: _Sent) -> bool:
        assert row.id is not None
        with self.store.transaction() as repo:
            if not repo.outbox.mark_sent(
                row.id,
                owner=self.worker_id,
                now=self.clock.now(),
                ts=sent.ts,
                file_id=sent.file_id,
                min_gap=timedelta(seconds=self.settings.update_gap_seconds),
            ):
                log.warning("outbox row %s was taken over while it was being sent", row.key)
            if kind == PostKind.PARENT and sent.ts:
                repo.rounds.set_parent(row.round_id, sent.ts)
            elif kind == PostKind.VARIATION and sent.ts and row.generation_id is not None:
                repo.generations.set_message(row.generation_id, sent.ts)
            elif kind == PostKind.WINNER_STILL and sent.file_id:
                self._update(repo, PostKind.ROUND_UPDATE, row.round_id)  # the round message shows the still
            elif kind == PostKind.CLIP and row.generation_id is not None:
                # The clip's own message: a reaction on the video is a vote for this variation.
                repo.generations.set_clip(row.generation_id, file_id=sent.file_id, ts=sent.ts)
        return True

    def _retry(self, row: Outbox, error: str, *, uncertain: bool, retry_after: float | None = None) -> None:
        assert row.id is not None
        delay = retry_after if retry_after is not None else min(300.0, 2.0 * 2 ** max(0, row.attempts - 1))
        if uncertain:
            # A request whose answer timed out may still be carried out by a slow Slack: look only once it has
            # had time to land, or the look finds nothing and the post goes out twice.
            delay = max(delay, self.settings.uncertain_look_seconds)
        with self.store.transaction() as repo:
            repo.outbox.mark_retry(
                row.id,
                owner=self.worker_id,
                due=self.clock.now() + timedelta(seconds=delay),
                error=error[:500],
                uncertain=uncertain,
            )

    def _fail(self, row: Outbox, error: str) -> None:
        assert row.id is not None
        with self.store.transaction() as repo:
            repo.outbox.mark_failed(row.id, owner=self.worker_id, error=error[:500])


def _key(kind: PostKind, round_id: int, generation_id: int | None) -> str:
    owner = f"generation-{generation_id}" if generation_id is not None else f"round-{round_id}"
    return f"{owner}/{kind.value}"

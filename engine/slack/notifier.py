"""Posting approval requests to Slack, keeping each message, and editing them as things move.

Every message posted about a request is stored (``approval_messages``: channel and ``ts``), so
that each is edited when the request is decided — wherever: the API, the CLI, the console,
Slack —, expires, is escalated or superseded (engine.notice_feed follows the audit log for
that), and so that the run's outcome can be posted in its thread. No transaction is open while
Slack is called. A failure is returned (and audited by the caller), never raised: an
unreachable Slack must not hold up a run nor a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from actions.notify import plain, slack_text
from core.settings import Settings, variable
from engine.slack import channel_of
from engine.slack.blocks import RequestCard, request_message, text_blocks
from engine.slack.cards import read_card
from engine.slack.client import SlackChat, SlackFailure
from engine.store.approvals import get_request
from engine.store.messages import (
    ESCALATION,
    Posted,
    add_messages,
    message_at,
    messages_of,
    messages_of_run,
    shown,
)
from engine.store.models import ApprovalMessage
from engine.store.types import utcnow

log = logging.getLogger("riposte.slack")

Outcome = tuple[list[str], list[str]]  # the targets told, and those that failed (with why)


def shows(card: RequestCard, kind: str) -> str:
    """What a message of ``kind`` shows of the request, in one word (stored with it)."""
    if card.status == "pending" and card.escalated_at is not None and kind != ESCALATION:
        return "escalated"
    return card.status


class SlackNotifier:
    """Riposte's Slack messages about approval requests and runs."""

    def __init__(
        self, *, sessions: sessionmaker[Session], settings: Settings, chat: SlackChat | None
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.chat = chat

    @classmethod
    def from_settings(cls, sessions: sessionmaker[Session], settings: Settings) -> SlackNotifier:
        """The notifier of the Slack app the settings name (or of none: every post fails)."""
        return cls(sessions=sessions, settings=settings, chat=SlackChat.from_settings(settings))

    def post_request(self, request_id: str, targets: Sequence[str], *, kind: str) -> Outcome:
        """Post the interactive message about a request to each target that has none yet."""
        targets = list(dict.fromkeys(targets))
        if not targets:
            return [], []
        if self.chat is None:
            return [], [f"{target}: {variable('slack_bot_token')} is not set" for target in targets]
        with self.sessions() as session:
            card = read_card(session, request_id, self.settings)
            # A message that shows the request with its buttons already (a click's message
            # replaced by this request, say) is not posted twice.
            already = {m.target for m in messages_of(session, [request_id])
                       if m.kind == kind and m.shows == shows(card, kind)}
        text, blocks = request_message(card, now=utcnow(), escalation=kind == ESCALATION)
        sent: list[str] = []
        failed: list[str] = []
        posted: list[Posted] = []
        for target in targets:
            if target in already:  # the message of a click replaced by this request, say
                sent.append(target)
                continue
            try:
                message = self.chat.post(channel_of(target), text=text, blocks=blocks)
            except SlackFailure as exc:
                log.warning("could not post approval %s to %s: %s", request_id, target, exc)
                failed.append(f"{target}: {exc}")
                continue
            posted.append(Posted(target=target, channel=message.channel, ts=message.ts))
            sent.append(target)
        if posted:
            with self.sessions.begin() as session:
                add_messages(session, request_id=request_id, kind=kind,
                             shows=shows(card, kind), posted=posted)
                now = read_card(session, request_id, self.settings)
            # Decided (or escalated) while the messages went out: nobody edited them then.
            if (now.status, now.escalated_at, len(now.decisions)) != (
                    card.status, card.escalated_at, len(card.decisions)):
                self.refresh([request_id])
        return sent, failed

    def refresh(self, request_ids: Sequence[str]) -> list[str]:
        """Edit every message about these requests to show them as they are now; return the
        failures."""
        if self.chat is None or not request_ids:
            return []
        with self.sessions() as session:
            messages = list(messages_of(session, list(dict.fromkeys(request_ids))))
            cards = {m.request_id: read_card(session, m.request_id, self.settings)
                     for m in messages}
        failed = []
        for message in messages:
            problem = self._show(message, cards[message.request_id])
            if problem:
                failed.append(problem)
        return failed

    def refresh_run(self, run_id: str) -> list[str]:
        """Edit every message about the approval requests of a run (it was cancelled, say)."""
        with self.sessions() as session:
            request_ids = [m.request_id for m in messages_of_run(session, run_id)]
        return self.refresh(request_ids)

    def replace(self, *, channel: str, ts: str, request_id: str, note: str) -> bool:
        """Make the message at ``channel``/``ts`` show request ``request_id`` (the one that
        replaced the request it showed), with fresh buttons and ``note`` first."""
        if self.chat is None:
            return False
        with self.sessions() as session:
            message = message_at(session, channel=channel, ts=ts)
            card = read_card(session, request_id, self.settings)
        if message is None:
            return False
        return not self._show(message, card, note=note)

    def _show(self, message: ApprovalMessage, card: RequestCard, note: str | None = None
              ) -> str | None:
        assert self.chat is not None
        text, blocks = request_message(card, now=utcnow(), escalation=message.kind == ESCALATION,
                                       note=note)
        try:
            self.chat.update(message.channel, message.ts, text=text, blocks=blocks)
        except SlackFailure as exc:
            log.warning("could not update the message about approval %s in %s: %s",
                        card.request_id, message.channel, exc)
            return f"{message.target}: {exc}"
        with self.sessions.begin() as session:
            shown(session, message.id, shows=shows(card, message.kind),
                  request_id=card.request_id if card.request_id != message.request_id else None)
        return None

    def reply_in_threads(self, run_id: str, text: str) -> Outcome:
        """Post ``text`` in the thread of each message about the run's deciding approval: the
        last one granted, else the last one asked."""
        if self.chat is None:
            return [], []
        with self.sessions() as session:
            messages = list(messages_of_run(session, run_id))
            statuses = {m.request_id: get_request(session, m.request_id).status
                        for m in messages}
        granted = [m for m in messages if statuses[m.request_id] == "approved"]
        chosen = granted or messages
        if not chosen:
            return [], []
        last = chosen[-1].request_id
        sent, failed = [], []
        for message in (m for m in chosen if m.request_id == last):
            try:
                self.chat.post(message.channel, text=_first_line(text),
                               blocks=text_blocks(text), thread_ts=message.ts)
            except SlackFailure as exc:
                failed.append(f"{message.target} (thread): {exc}")
            else:
                sent.append(f"{message.target} (thread)")
        return sent, failed

    def post_text(self, targets: Sequence[str], text: str) -> Outcome:
        """Post a plain notice (a run's failure) to each ``slack:`` target."""
        if not targets:
            return [], []
        if self.chat is None:
            return [], [f"{target}: {variable('slack_bot_token')} is not set" for target in targets]
        sent, failed = [], []
        for target in targets:
            try:
                self.chat.post(channel_of(target), text=_first_line(text),
                               blocks=text_blocks(text))
            except SlackFailure as exc:
                failed.append(f"{target}: {exc}")
            else:
                sent.append(target)
        return sent, failed


def _first_line(text: str) -> str:
    """A notice's first line as the message's plain text (what a notification shows)."""
    first = text.splitlines()[0] if text.strip() else "Riposte"
    return slack_text(plain(first, 300), 400)

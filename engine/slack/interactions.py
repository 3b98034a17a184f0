"""What Slack sends when someone presses Approve or Reject, and when they give the reason.

The route (api/routes/slack.py) has verified Slack's signature and answered Slack within its
3 seconds; this runs after, in a worker thread.

- A button: who pressed it is mapped to a Riposte identity (``engine.slack.people``); an
  unmapped user, the run's starter, whoever delivered one of its alerts or someone outside the
  request's approvers is told why in a message only they see, and the refusal is audited. A
  request superseded since the message was posted is not decided: the message is replaced by
  the new request, with fresh buttons, and the person is told. Otherwise a modal asks for the
  reason (an approval then makes the plan again: if it moved, the modal and the message say so).
- The modal's submission decides, with the plan hash the message showed, through
  ``engine.decisions.take_decision``: the same function as the API's and the console's (quorum,
  expiry, separation of duties, the fresh plan). Every message about the request is then edited.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from actions.notify import slack_escape
from core.settings import Settings, variable
from engine import audit
from engine.decisions import Decision, take_decision
from engine.replan import refuse_if_moved
from engine.slack.blocks import (
    APPROVE,
    DECISION_VIEW,
    REASON_BLOCK,
    REASON_INPUT,
    REASON_LIMIT,
    REJECT,
    decision_view,
    notice_view,
    read_button_value,
)
from engine.slack.cards import read_card, successor
from engine.slack.client import SlackChat, SlackFailure
from engine.slack.notifier import SlackNotifier
from engine.slack.people import Person, SlackPeople
from engine.store.approvals import PENDING, SUPERSEDED, get_request
from engine.store.deciders import check_decision, record_refusal
from engine.store.errors import Conflict, Forbidden, NotFound
from engine.store.models import Run

log = logging.getLogger("riposte.slack")

DECISIONS: dict[str, Decision] = {APPROVE: "approve", REJECT: "reject"}


class SlackInteractions:
    """Handles the interaction payloads Slack posts (buttons pressed, modals submitted)."""

    def __init__(
        self, *, sessions: sessionmaker[Session], settings: Settings, chat: SlackChat,
        people: SlackPeople,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.chat = chat
        self.people = people
        self.notifier = SlackNotifier(sessions=sessions, settings=settings, chat=chat)

    @classmethod
    def from_settings(
        cls, sessions: sessionmaker[Session], settings: Settings
    ) -> SlackInteractions | None:
        """The handler for the settings' Slack app; None without a bot token."""
        chat = SlackChat.from_settings(settings)
        if chat is None:
            return None
        return cls(sessions=sessions, settings=settings, chat=chat,
                   people=SlackPeople(settings.slack_people))

    def handle(self, payload: dict[str, Any]) -> None:
        """Act on one interaction payload; errors are logged, never raised (Slack has had its
        answer)."""
        try:
            kind = payload.get("type")
            if kind == "block_actions":
                self.clicked(payload)
            elif kind == "view_submission":
                self.submitted(payload)
            else:
                log.info("Slack interaction of type %r ignored", kind)
        except SlackFailure as exc:
            log.warning("Slack interaction not completed: %s", exc)

    # --- A button ------------------------------------------------------------------------

    def clicked(self, payload: dict[str, Any]) -> None:
        """Approve or Reject pressed on a message: refuse, show the new plan, or ask why."""
        action = next((a for a in payload.get("actions") or []
                       if isinstance(a, dict) and a.get("action_id") in DECISIONS), None)
        if action is None:
            return  # not one of our buttons (a link, say)
        chosen = read_button_value(str(action.get("value", "")))
        user = _user(payload)
        container = payload.get("container") or {}
        channel = str(container.get("channel_id") or (payload.get("channel") or {}).get("id")
                      or "")
        ts = str(container.get("message_ts") or "")
        if chosen is None or not user or not channel:
            log.warning("Slack button press without a request, a user or a channel: ignored")
            return
        request_id, plan_hash = chosen
        decision = DECISIONS[str(action["action_id"])]
        person = self._person(user, request_id, decision, channel)
        if person is None:
            return
        try:
            with self.sessions() as session:
                status = get_request(session, request_id).status
        except NotFound:
            self._tell(channel, user, f"Not decided: there is no approval request {request_id}.")
            return
        if status == SUPERSEDED:
            self._moved(request_id, person, decision, channel=channel, ts=ts, user=user)
            return
        refused = self._refusal(request_id, person, plan_hash)
        if refused is not None:
            self._refuse(request_id, person.name, decision, refused, channel=channel, user=user)
            if status != PENDING:  # settled meanwhile: the message may not say so yet
                self.notifier.refresh([request_id])
            return
        with self.sessions() as session:
            card = read_card(session, request_id, self.settings)
        try:
            view_id = self.chat.open_view(str(payload.get("trigger_id", "")),
                                          decision_view(card, decision, channel=channel, ts=ts))
        except SlackFailure as exc:  # the click's trigger lasts 3 seconds: Slack was slow
            self._tell(channel, user, f"Could not open the dialog ({exc}): press the button "
                                      "again.")
            return
        if decision == "approve":
            self._check_plan(request_id, person, channel=channel, ts=ts, user=user,
                             view_id=view_id)

    def _person(self, user: str, request_id: str, decision: str, channel: str) -> Person | None:
        try:
            person = self.people.identify(user, email_of=self.chat.email_of)
        except SlackFailure as exc:
            log.warning("could not read the e-mail of Slack user %s: %s", user, exc)
            person = None
        if person is not None:
            return person
        why = (f"Slack user {user} is not mapped to a Riposte identity "
               f"({variable('slack_people')})")
        self._refuse(request_id, f"slack:{user}", decision, why, channel=channel, user=user)
        return None

    def _refusal(self, request_id: str, person: Person, plan_hash: str) -> str | None:
        """Why ``person`` may not decide now (the API's checks, read only), or None."""
        try:
            with self.sessions.begin() as session:
                check_decision(session, request_id, actor=person.name, role=person.role,
                               seen_plan_hash=plan_hash)
        except (Forbidden, Conflict, NotFound) as exc:
            return str(exc)
        return None

    def _check_plan(
        self, request_id: str, person: Person, *, channel: str, ts: str, user: str,
        view_id: str,
    ) -> None:
        """Make the plan again while the person writes the reason; if it moved, say so."""
        try:
            refuse_if_moved(self.sessions, request_id, self.settings, actor=person.name)
        except Conflict as moved:
            with self.sessions.begin() as session:
                record_refusal(session=session, request_id=request_id, actor=person.name,
                               reason=f"approve in Slack: {moved}")
            self.chat.update_view(view_id, notice_view(
                "The plan changed",
                f"Not approved: {moved}. The message now shows the new plan; review it and "
                "decide again."))
            self._show_successor(request_id, channel=channel, ts=ts)

    # --- The reason given ----------------------------------------------------------------

    def submitted(self, payload: dict[str, Any]) -> None:
        """The modal's submission: decide with the plan hash the message showed."""
        view = payload.get("view") or {}
        if view.get("callback_id") != DECISION_VIEW:
            return
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            request_id, plan_hash = str(meta["request"]), str(meta["plan_hash"])
            decision: Decision = "approve" if meta["decision"] == "approve" else "reject"
            channel, ts = str(meta["channel"]), str(meta["ts"])
        except (ValueError, KeyError, TypeError):
            log.warning("Slack modal submission without its request: ignored")
            return
        user = _user(payload)
        reason = _reason(view)
        person = self._person(user, request_id, decision, channel)
        if person is None:
            return
        if not reason:
            self._tell(channel, user, "Not decided: give a reason; it is kept with the decision "
                                      "and audited.")
            return
        try:
            with self.sessions() as session:
                decided = take_decision(
                    session=session, sessions=self.sessions, settings=self.settings,
                    request_id=request_id, actor=person.name, role=person.role,
                    decision=decision, reason=reason, plan_hash=plan_hash,
                )
                run_id, step_id, status = decided.run_id, decided.step_id, decided.status
        except NotFound as exc:
            self._tell(channel, user, f"Not decided: {exc}.")
            return
        except (Forbidden, Conflict) as exc:  # take_decision has audited it
            self._tell(channel, user, f"Not decided: {exc}.")
            with self.sessions() as session:
                superseded = get_request(session, request_id).status == SUPERSEDED
            if superseded:
                self._show_successor(request_id, channel=channel, ts=ts)
            else:
                self.notifier.refresh([request_id])
            return
        with self.sessions.begin() as session:
            run = session.get(Run, run_id)
            assert run is not None
            audit.record(session, actor=person.name, verb="approval.decided_in_slack",
                         alert_id=run.alert_id, run_id=run.id, step_id=step_id,
                         details={"request": request_id, "decision": decision,
                                  "slack_user": user, "channel": channel})
        log.info("%s (Slack user %s) decided %s on approval %s: now %s", person.name, user,
                 decision, request_id, status)
        self.notifier.refresh([request_id])

    # --- Saying no -----------------------------------------------------------------------

    def _moved(
        self, request_id: str, person: Person, decision: str, *, channel: str, ts: str,
        user: str,
    ) -> None:
        """A button of a superseded request: never decide; show the request that replaced it."""
        with self.sessions.begin() as session:
            record_refusal(session=session, request_id=request_id, actor=person.name,
                           reason=f"{decision} in Slack: the request was superseded (its plan "
                                  "changed) before the click")
        shown = self._show_successor(request_id, channel=channel, ts=ts)
        self._tell(channel, user,
                   "Not decided: the plan changed since this message was posted. "
                   + ("The message now shows the new plan: review it and decide again."
                      if shown else "A new request will be posted once the run has the new "
                                    "plan."))

    def _show_successor(self, request_id: str, *, channel: str, ts: str) -> bool:
        """Make the message show the pending request that replaced ``request_id``."""
        with self.sessions() as session:
            new = successor(session, get_request(session, request_id))
            new_id = new.id if new is not None and new.status == PENDING else None
        if new_id is None:
            self.notifier.refresh([request_id])
            return False
        note = (f"The plan changed since this message was posted (request {request_id}): this "
                f"is the new plan, request {new_id}. Nothing was decided on the old one.")
        return self.notifier.replace(channel=channel, ts=ts, request_id=new_id, note=note)

    def _refuse(
        self, request_id: str, actor: str, decision: str, why: str, *, channel: str, user: str
    ) -> None:
        """Audit a refused Slack decision and tell the person why, privately."""
        try:
            with self.sessions.begin() as session:
                record_refusal(session=session, request_id=request_id, actor=actor,
                               reason=f"{decision} in Slack: {why}")
        finally:
            self._tell(channel, user, f"Not decided: {why}.")
        log.info("Slack decision by %s on approval %s refused: %s", actor, request_id, why)

    def _tell(self, channel: str, user: str, text: str) -> None:
        try:
            self.chat.ephemeral(channel, user, slack_escape(text))
        except SlackFailure as exc:
            log.warning("could not tell Slack user %s: %s", user, exc)


def _user(payload: dict[str, Any]) -> str:
    user = payload.get("user") or {}
    return str(user.get("id") or "") if isinstance(user, dict) else ""


def _reason(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}
    given = (values.get(REASON_INPUT) or {}).get("value") or ""
    text = "".join(char for char in str(given) if char != "\x00").strip()
    return text[:REASON_LIMIT]

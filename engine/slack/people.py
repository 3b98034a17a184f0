"""Who a Slack user is to Riposte: the identity their decisions are made and audited as.

``RIPOSTE_SLACK_PEOPLE`` maps a Slack user id (``U0123ABCD``) or an e-mail to a name and a role.
The name is the actor of the decision, so it meets every rule a token's name meets: it is
matched against an approval's ``token:<name>`` entries, refused when it started the run or
delivered one of its alerts, and counted once towards a quorum whatever the interface (the
person ``alice`` deciding in Slack and with the token ``alice`` is one approver). An id is
tried first; an e-mail needs the user's address from Slack (scope ``users:read.email``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.settings import SettingsInvalid, SlackPerson, variable
from engine.identities import token_name_problem


@dataclass(frozen=True)
class Person:
    """A Slack user as Riposte knows them."""

    name: str
    role: str
    slack_user: str


class SlackPeople:
    """The people of ``RIPOSTE_SLACK_PEOPLE``, by Slack user id and by e-mail."""

    def __init__(self, entries: Mapping[str, SlackPerson]) -> None:
        problems = []
        for key, person in entries.items():
            problem = token_name_problem(person.name)
            if problem is not None:
                problems.append(f"{variable('slack_people')}[{key!r}]: {problem}")
        if problems:
            raise SettingsInvalid(problems)
        self._by_id = {key.strip(): person for key, person in entries.items() if "@" not in key}
        self._by_email = {key.strip().lower(): person for key, person in entries.items()
                          if "@" in key}

    def identify(self, user: str, *, email_of: Callable[[str], str | None]) -> Person | None:
        """The person Slack user ``user`` is, or None if the settings do not say.

        ``email_of`` asks Slack for the user's e-mail; only called when some entry is one.
        """
        entry = self._by_id.get(user)
        if entry is None and self._by_email:
            email = email_of(user)
            entry = self._by_email.get(email.strip().lower()) if email else None
        if entry is None:
            return None
        return Person(name=entry.name, role=entry.role, slack_user=user)

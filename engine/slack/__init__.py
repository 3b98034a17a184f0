"""Slack: approval requests people decide where they already are, and what runs did.

- ``client``: the Slack Web API through ``slack_sdk`` (post, update, ephemeral, modals).
- ``blocks``: what a request looks like in Block Kit, pure (no database, no HTTP).
- ``cards``: what a message shows about a request, read from the database.
- ``notifier``: posts the messages, keeps them (``approval_messages``) and edits them.
- ``people``: which Riposte identity a Slack user decides as (``RIPOSTE_SLACK_PEOPLE``).
- ``interactions``: a button pressed, a reason given; decided through the same service function
  as the API and the console (``engine.decisions.take_decision``).

Targets are written ``slack:#channel``, ``slack:C0123ABCD`` (a channel id) or ``slack:U0123ABCD``
(a person: the app's direct message), wherever a playbook or a setting names who is told.
"""

from __future__ import annotations

TARGET_PREFIX = "slack:"


def is_slack_target(target: str) -> bool:
    """Whether ``target`` names a Slack channel or person (rather than SNS or a webhook)."""
    return target.startswith(TARGET_PREFIX)


def channel_of(target: str) -> str:
    """The channel (a name with its #, or an id) a ``slack:`` target posts to."""
    return target.removeprefix(TARGET_PREFIX)

"""The failure every action raises: a code playbooks match, a message people read.

Its own module so that the AWS client factory (``actions.aws.clients``) and the action base
(``actions.base``) can both raise it without importing each other.
"""

from __future__ import annotations


class ActionError(Exception):
    """A step failure with a code a playbook can match in ``retry.on`` and ``on_error``."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable

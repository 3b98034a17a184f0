"""What an action declares it needs from IAM: actions allowed on a scope.

Its own module, importing nothing of Riposte's, so that ``actions.base`` can name a
:class:`Grant` without importing ``actions.policy`` (which reads the registry, which imports
``actions.base``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

# A statement's Condition block: operator -> condition key -> value(s).
Conditions = Mapping[str, Mapping[str, str | tuple[str, ...]]]


@dataclass(frozen=True)
class Scope:
    """Where a statement applies (resource ARN patterns, conditions), its Sid, and why."""

    sid: str
    reason: str
    resources: tuple[str, ...] = ("*",)
    conditions: Conditions = field(default_factory=dict)

    def allow(self, *actions: str) -> Grant:
        """Grant ``actions`` (``service:Action``) on this scope."""
        return Grant(actions=actions, scope=self)

    @property
    def key(self) -> str:
        """What makes two scopes one statement: the same resources and conditions."""
        return json.dumps([sorted(self.resources), self.conditions], sort_keys=True)


@dataclass(frozen=True)
class Grant:
    """IAM actions an action needs, on one scope."""

    actions: tuple[str, ...]
    scope: Scope

"""Who is who: the roles tokens have, the names no token may take, and approvers' names.

An approval names its approvers unambiguously: ``role:responder`` (any token of that role) or
``token:alice`` (the one token named alice). Before, a bare entry meant a token name *or* a
role, matched in one list, so a responder token named ``admin`` matched ``approvers: [admin]``.
A bare entry is still read, never written: approval requests stored before the prefixes, and
playbooks pinned in runs that began before them, mean a role by a role's name and a token by any
other name (``read_approver``). Playbook files must say which (``engine.spec.Approval``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# metrics: reads /metrics and nothing else (a Prometheus scraper's token may not act).
ROLES = ("ingest", "responder", "admin", "metrics")
DECIDING_ROLES = ("responder", "admin")
# Actors Riposte itself writes in runs and the audit log (``started_by``, ``actor``): a token
# bearing one of these names would pass for Riposte, or for a role, to whoever reads them.
SYSTEM_ACTORS = ("system", "anonymous", "sns", "cli", "demo")
RESERVED_NAMES = frozenset((*ROLES, *SYSTEM_ACTORS))
ROLE_PREFIX = "role:"
TOKEN_PREFIX = "token:"
NAME_LIMIT = 128  # api_tokens.name
_DECIDERS = " or ".join(ROLE_PREFIX + role for role in DECIDING_ROLES)


def token_name_problem(name: str) -> str | None:
    """Say why ``name`` cannot name a new token, or None when it can."""
    if not name.strip():
        return "a token's name must not be empty"
    if name != name.strip() or not name.isprintable():
        return f"a token's name has no leading or trailing blanks nor control characters: {name!r}"
    if len(name) > NAME_LIMIT:
        return f"a token's name is at most {NAME_LIMIT} characters"
    if ":" in name:
        return (f"a token's name has no ':' ({name!r}): approvals name tokens as "
                f"'token:<name>' and roles as 'role:<role>'")
    if name.lower() in RESERVED_NAMES:
        return (f"{name!r} is reserved (roles and Riposte's own actors: "
                f"{', '.join(sorted(RESERVED_NAMES))}); choose a person's or a system's name")
    return None


@dataclass(frozen=True)
class Approver:
    """One entry of an approval's ``approvers``: a role, or one token by name."""

    kind: Literal["role", "token"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def admits(self, *, actor: str, role: str) -> bool:
        """Tell whether the token ``actor`` of ``role`` is this approver."""
        return role == self.name if self.kind == "role" else actor == self.name


def read_approver(entry: str) -> Approver:
    """Read a stored or pinned entry: ``role:…``, ``token:…``, or a bare one (legacy)."""
    if entry.startswith(ROLE_PREFIX):
        return Approver("role", entry.removeprefix(ROLE_PREFIX))
    if entry.startswith(TOKEN_PREFIX):
        return Approver("token", entry.removeprefix(TOKEN_PREFIX))
    # Legacy: the role it names, never also a token that bears that name.
    return Approver("role", entry) if entry in ROLES else Approver("token", entry)


def approver_problem(entry: str) -> str | None:
    """Say what is wrong with ``entry`` as written in a playbook, or None when it is right."""
    if entry.startswith(ROLE_PREFIX):
        role = entry.removeprefix(ROLE_PREFIX)
        if role in DECIDING_ROLES:
            return None
        if role in ROLES:
            return f"{entry!r}: {role} tokens cannot decide approvals ({_DECIDERS})"
        return f"{entry!r}: no such role ({_DECIDERS})"
    if entry.startswith(TOKEN_PREFIX):
        name = entry.removeprefix(TOKEN_PREFIX)
        if name.lower() in RESERVED_NAMES:
            hint = f" (role:{name} for any {name} token)" if name in DECIDING_ROLES else ""
            return f"{entry!r}: no token may be named {name!r}, a reserved name{hint}"
        if not name or ":" in name or name != name.strip():
            return f"{entry!r}: not a token's name"
        return None
    if entry in DECIDING_ROLES:
        return f"{entry!r} is ambiguous: write 'role:{entry}' for any {entry} token"
    if entry in ROLES:
        return f"{entry!r}: {entry} tokens cannot decide approvals ({_DECIDERS})"
    return f"{entry!r} is ambiguous: write 'token:{entry}' for the token named {entry}"

"""Principals containment never touches, whatever a playbook or an alert says.

Disabling the root user, Riposte's own principal, an AWS service-linked role, an IAM Identity
Center role or a declared break-glass identity would lock the responders out, or break AWS
itself, at the worst moment. Every containment action checks its target here first.
"""

from __future__ import annotations

import fnmatch

from actions.aws.arns import arn_fields
from actions.base import ActionContext, ActionError

SSO_ROLE_PREFIX = "AWSReservedSSO_"
SERVICE_LINKED_PATH = "/aws-service-role/"


def refuse_protected(ctx: ActionContext, *, kind: str, name: str, arn: str = "") -> None:
    """Raise a ``ProtectedPrincipal`` step error when a user or role is off limits.

    ``arn`` is the principal's ARN when known (it carries the path of service-linked roles).
    """
    reason = _protection(ctx, kind=kind, name=name, arn=arn)
    if reason is not None:
        raise ActionError(
            "ProtectedPrincipal", f"refusing to act on {kind} {name!r}: {reason}", retryable=False
        )


def _protection(ctx: ActionContext, *, kind: str, name: str, arn: str) -> str | None:
    if name == "root" or arn.endswith(":root"):
        return "it is the account's root user"
    if kind == "role" and (SERVICE_LINKED_PATH in arn or name.startswith("AWSServiceRoleFor")):
        return "it is a service-linked role"
    if kind == "role" and name.startswith(SSO_ROLE_PREFIX):
        return "it is an IAM Identity Center (SSO) role"
    for pattern in ctx.settings.break_glass:
        if fnmatch.fnmatchcase(name, pattern) or (arn and fnmatch.fnmatchcase(arn, pattern)):
            return f"it is on the break-glass list ({pattern})"
    if _is_self(ctx, kind=kind, name=name):
        return "it is the principal Riposte itself runs as"
    return None


def _is_self(ctx: ActionContext, *, kind: str, name: str) -> bool:
    responder = ctx.settings.responder_role
    if kind == "role" and responder and name == responder.rsplit("/", 1)[-1]:
        return True  # the role Riposte assumes in other accounts
    # arn:aws:iam::123:user/path/name, or arn:aws:sts::123:assumed-role/RoleName/session
    own = arn_fields(ctx.aws.identity()["Arn"]).resource
    own_kind, _, rest = own.partition("/")
    if own_kind == "user":
        return kind == "user" and rest.rsplit("/", 1)[-1] == name
    if own_kind == "assumed-role":
        return kind == "role" and rest.split("/", 1)[0] == name
    return False

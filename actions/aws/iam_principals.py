"""Which IAM user or role a step acts on, and the IAM reads and calls the IAM actions share.

A step names its principal by name or ARN; left out, it is the alert's principal
(``alert.principal``): an ``IAMUser`` is a user, an ``AssumedRole`` session
(``arn:aws:sts::ACC:assumed-role/Role/session``) is its role. The principal's own account (from
its ARN, else the alert's principal) is where the step acts unless ``account`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from botocore import xform_name

from actions.aws.arns import arn_fields
from actions.aws.clients import AwsError, Client
from actions.aws.guards import refuse_protected
from actions.aws.target import AwsInput
from actions.aws.target import client as target_client
from actions.base import Action, ActionContext, ActionError, PlannedCall

Kind = Literal["user", "role"]
P = TypeVar("P", bound=AwsInput)


class IamCall(PlannedCall):
    """A planned IAM call, with a note a responder should read before approving it."""

    note: str = ""


@dataclass(frozen=True)
class PrincipalRef:
    """A user or role by name, with the account its ARN or the alert placed it in."""

    kind: Kind
    name: str
    account: str | None = None
    session: str | None = None  # the session name when named by an assumed-role ARN


def parse_arn(arn: str) -> PrincipalRef:
    """Read a user, role or assumed-role session ARN; anything else is ``UnsupportedPrincipal``."""
    fields = arn_fields(arn)
    service, account, resource = fields.service, fields.account or None, fields.resource
    kind, _, rest = resource.partition("/")
    if service == "iam" and kind in ("user", "role") and rest:
        # The path (user/Development/Roboman1) is not part of the name.
        return PrincipalRef("user" if kind == "user" else "role", rest.rsplit("/", 1)[-1], account)
    if service == "sts" and kind == "assumed-role" and "/" in rest:
        role, session = rest.split("/", 1)
        return PrincipalRef("role", role, account, session)
    if resource == "root":
        return PrincipalRef("user", "root", account)  # the guards refuse it by name
    raise ActionError(
        "UnsupportedPrincipal",
        f"{arn!r} is neither an IAM user, an IAM role nor an assumed-role session",
        retryable=False,
    )


def named(kind: Kind, value: str | None, ctx: ActionContext, *, field: str) -> PrincipalRef:
    """The ``kind`` principal a step names in ``field`` (name or ARN), else the alert's."""
    ref: PrincipalRef | None
    if value:
        ref = parse_arn(value) if value.startswith("arn:") else PrincipalRef(kind, value)
    else:
        ref = alert_principal(ctx)  # only when the step names none: it may be unusable
    if ref is None:
        raise ActionError(
            "NoPrincipal",
            f"no {kind} given in with.{field} and the alert names no principal",
            retryable=False,
        )
    if ref.kind != kind:
        hint = "aws.iam.revoke_role_sessions" if ref.kind == "role" else "aws.iam.disable_user"
        raise ActionError(
            "WrongPrincipalKind",
            f"{ref.name!r} is a {ref.kind}, not a {kind} (for a {ref.kind}, use {hint})",
            retryable=False,
        )
    return ref


def alert_principal(ctx: ActionContext) -> PrincipalRef | None:
    """The alert's principal as a user or role, or ``None`` when the alert names none."""
    principal = ctx.alert.get("principal") or {}
    kind, name, arn = principal.get("type"), principal.get("name"), principal.get("arn")
    account = principal.get("account") or None
    if arn and ":" in arn:
        ref = parse_arn(arn)
        return PrincipalRef(ref.kind, ref.name, ref.account or account, ref.session)
    if not name:
        return None
    if kind in ("IAMUser", "Root"):
        return PrincipalRef("user", name if kind == "IAMUser" else "root", account)
    if kind == "AssumedRole":
        return PrincipalRef("role", name, account)
    raise ActionError(
        "UnsupportedPrincipal",
        f"the alert's principal {name!r} is a {kind}, which is neither an IAM user nor a role",
        retryable=False,
    )


def iam_client(ctx: ActionContext, params: AwsInput, ref: PrincipalRef) -> Client:
    """The IAM client of the account the principal lives in (``with.account`` wins)."""
    if params.account and ref.account and params.account != ref.account:
        raise ActionError(
            "AccountMismatch",
            f"{ref.kind} {ref.name!r} is in account {ref.account}, not {params.account}",
            retryable=False,
        )
    account = params.account or ref.account
    return target_client(ctx, params.model_copy(update={"account": account}), "iam")


def undo_client(ctx: ActionContext, undo: dict[str, Any]) -> Client:
    """The IAM client of the account and region an undo record was made in."""
    return ctx.aws.client("iam", account=undo.get("account"), region=undo.get("region"))


def get_entity(iam: Client, kind: Kind, name: str) -> dict[str, Any]:
    """``GetUser`` / ``GetRole``; a missing principal is ``NoSuchUser`` / ``NoSuchRole``."""
    try:
        if kind == "user":
            return dict(iam.get_user(UserName=name)["User"])
        return dict(iam.get_role(RoleName=name)["Role"])
    except AwsError as exc:
        if exc.code != "NoSuchEntity":
            raise
        code = "NoSuchUser" if kind == "user" else "NoSuchRole"
        raise ActionError(code, f"IAM {kind} {name!r} does not exist", retryable=False) from exc


def contained_entity(ctx: ActionContext, iam: Client, kind: Kind, name: str) -> dict[str, Any]:
    """``get_entity`` for containment: refuses a protected principal before and after the look-up.

    Before, by name (the root user is no IAM user to look up); after, by its ARN too, which
    carries the path of a service-linked role.
    """
    refuse_protected(ctx, kind=kind, name=name)
    entity = get_entity(iam, kind, name)
    refuse_protected(ctx, kind=kind, name=name, arn=entity["Arn"])
    return entity


def optional(call: Callable[..., Any], **params: Any) -> Any:
    """The answer of a ``Get…`` call, or ``None`` when IAM says ``NoSuchEntity``."""
    try:
        return call(**params)
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return None
        raise


def execute(iam: Client, call: PlannedCall) -> Any:
    """Make a planned call exactly as planned."""
    return getattr(iam, xform_name(call.operation))(**call.params)


def iso(moment: datetime | None) -> str | None:
    """A datetime as ISO-8601 text in UTC, so texts sort as times (``None`` stays ``None``)."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def described(calls: list[PlannedCall]) -> list[dict[str, Any]]:
    """Planned calls as plain dicts, for an action's output."""
    return [call.model_dump() for call in calls]


class ReversibleIamAction(Action[P]):
    """An IAM action whose undo is calls worked out from its undo record and the live state."""

    mutating = True
    reversible = True

    def undo_calls(
        self, ctx: ActionContext, undo: dict[str, Any]
    ) -> tuple[list[PlannedCall], list[str]]:
        """The calls that put back what ``run`` recorded, and what needs none (in words)."""
        raise NotImplementedError

    def undo_output(self, undo: dict[str, Any], calls: list[PlannedCall]) -> dict[str, Any]:
        """What the undo output says besides its calls: the target and a summary."""
        raise NotImplementedError

    def plan_undo(self, ctx: ActionContext, undo: dict[str, Any]) -> list[PlannedCall]:
        return self.undo_calls(ctx, undo)[0]

    def undo(self, ctx: ActionContext, undo: dict[str, Any]) -> dict[str, Any]:
        calls, unchanged = self.undo_calls(ctx, undo)
        iam = undo_client(ctx, undo)
        for call in calls:
            execute(iam, call)
        return {**self.undo_output(undo, calls), "calls": described(calls), "unchanged": unchanged}

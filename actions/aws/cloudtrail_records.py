"""Read CloudTrail records: their time, who made them, whom and what they touch. Pure, no I/O.

Every source of ``aws.cloudtrail.principal_history`` (LookupEvents, the trail's log files in S3,
the events Riposte ingested) yields records in CloudTrail's log-file shape; this module decides
which of them concern a principal:

- **acted**: the principal made the call. An IAM user, the root user or a role is matched by
  ARN when the record carries one, else by name (and account when both are known): a failed
  console sign-in has a ``userName`` but no ARN. An assumed-role session ARN
  (``arn:aws:sts::ACC:assumed-role/Role/session``) matches that session name only (an SSO
  user's or an instance's use of the role); a role ARN or role name matches every session of
  the role. An access key id matches the calls signed with it.
- **targeted**: an IAM change to the principal itself, whoever made it (``requestParameters``
  ``userName`` / ``roleName``; a user's own key or password change names no user).
- **mentions**: a record whose request, response or resources name a resource id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from actions.aws.arns import parse_arn

Record = dict[str, Any]

ACCESS_KEY_ID = re.compile(r"^A[KS]IA[A-Z0-9]{12,124}$")
IAM_SOURCE = "iam.amazonaws.com"

# IAM calls that change a user or role, by what they change.
CHANGE_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "AttachUserPolicy", "DetachUserPolicy", "PutUserPolicy", "DeleteUserPolicy",
            "AttachRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy",
            "AddUserToGroup", "RemoveUserFromGroup", "PutUserPermissionsBoundary",
            "DeleteUserPermissionsBoundary", "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary", "UpdateAssumeRolePolicy",
        ),
        "policy",
    ),
    **dict.fromkeys(("CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey"), "access_key"),
    **dict.fromkeys(
        ("CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile", "ChangePassword"),
        "password",
    ),
    **dict.fromkeys(
        ("EnableMFADevice", "DeactivateMFADevice", "ResyncMFADevice"), "mfa"
    ),
    **dict.fromkeys(
        (
            "CreateUser", "DeleteUser", "UpdateUser", "TagUser", "UntagUser", "CreateRole",
            "DeleteRole", "UpdateRole", "TagRole", "UntagRole",
        ),
        "identity",
    ),
}
# Calls a user makes on itself without naming itself in the request.
SELF_SERVICE = frozenset(
    {
        "CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey", "ChangePassword",
        "EnableMFADevice", "DeactivateMFADevice", "ResyncMFADevice", "UpdateLoginProfile",
    }
)


def text(value: object) -> str | None:
    """Return a stripped non-empty string, else None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def section(record: Record, key: str) -> dict[str, Any]:
    """Return ``record[key]`` if it is an object, else an empty one."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def event_time(record: Record) -> datetime | None:
    """Return the record's ``eventTime`` in UTC, or None when it has no readable one."""
    written = text(record.get("eventTime"))
    if written is None:
        return None
    try:
        moment = datetime.fromisoformat(written)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc(moment: datetime | None) -> datetime | None:
    """A time in UTC; a naive one is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """Write a UTC time as CloudTrail does: ``2020-11-06T03:21:39Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_key(record: Record) -> str:
    """Identify a record across sources: its eventID, else its time, name and caller."""
    event_id = text(record.get("eventID"))
    if event_id:
        return event_id
    identity = section(record, "userIdentity")
    parts = (record.get("eventTime"), record.get("eventName"), identity.get("arn"),
             record.get("sourceIPAddress"))
    return "|".join(str(part) for part in parts)


def unique_records(records: Iterable[Record]) -> list[Record]:
    """Keep each event once (by :func:`event_key`), in first-seen order."""
    seen: dict[str, Record] = {}
    for record in records:
        seen.setdefault(event_key(record), record)
    return list(seen.values())


def caller(record: Record) -> str | None:
    """Name who made the call: the ARN, else the user name, else the invoking service."""
    identity = section(record, "userIdentity")
    return (
        text(identity.get("arn"))
        or text(identity.get("userName"))
        or text(identity.get("invokedBy"))
        or text(identity.get("principalId"))
    )


@dataclass(frozen=True)
class PrincipalRef:
    """The principal whose history is read, as far as it is known."""

    arn: str | None = None
    name: str | None = None
    access_key_id: str | None = None
    account: str | None = None
    type: str | None = None  # IAMUser, Role, AssumedRole, Root, … (None: unknown)
    session: str | None = None  # an assumed-role ARN's session name

    @classmethod
    def parse(cls, value: str) -> PrincipalRef:
        """Read an ARN, an access key id or a user name."""
        value = value.strip()
        if ACCESS_KEY_ID.match(value):
            return cls(access_key_id=value)
        if not value.startswith("arn:"):
            return cls(name=value)
        fields = parse_arn(value)
        if fields is None:
            return cls(arn=value)
        service, account, resource = fields.service, fields.account or None, fields.resource
        kind, _, rest = resource.partition("/")
        if service == "iam" and kind == "user" and rest:
            return cls(arn=value, name=rest.rsplit("/", 1)[-1], account=account, type="IAMUser")
        if service == "iam" and kind == "role" and rest:
            return cls(arn=value, name=rest.rsplit("/", 1)[-1], account=account, type="Role")
        if service == "sts" and kind == "assumed-role" and "/" in rest:
            role, session = rest.split("/", 1)
            return cls(arn=value, name=role, account=account, type="AssumedRole", session=session)
        if resource == "root":
            return cls(arn=value, name="root", account=account, type="Root")
        return cls(arn=value, account=account)

    @classmethod
    def from_alert(cls, principal: object) -> PrincipalRef | None:
        """Read the alert's ``principal`` (type, name, arn, access_key_id, account)."""
        if not isinstance(principal, dict):
            return None
        arn = text(principal.get("arn"))
        parsed = cls.parse(arn) if arn else cls()
        kind = parsed.type or text(principal.get("type"))
        if kind == "AssumedRole" and parsed.session is None:
            kind = "Role"  # no session named: every session of the role
        ref = cls(
            arn=arn,
            name=parsed.name or text(principal.get("name")),
            access_key_id=text(principal.get("access_key_id")),
            account=parsed.account or text(principal.get("account")),
            type=kind,
            session=parsed.session,
        )
        return ref if (ref.arn or ref.name or ref.access_key_id) else None

    @property
    def lookup_username(self) -> str | None:
        """The ``Username`` LookupEvents knows this principal's calls by (None: it has none).

        An IAM user's calls carry its name; an assumed role's carry the session name, so a
        whole role (every session) cannot be selected by it.
        """
        if self.type == "AssumedRole":
            return self.session
        if self.type in (None, "IAMUser", "Root"):
            return self.name
        return None

    def describe(self) -> dict[str, str | None]:
        return {
            "arn": self.arn,
            "name": self.name,
            "access_key_id": self.access_key_id,
            "account": self.account,
            "type": self.type,
        }

    def acted(self, record: Record) -> bool:
        """Whether the principal made the call the record describes."""
        identity = section(record, "userIdentity")
        if not identity:
            return False
        if self.access_key_id and text(identity.get("accessKeyId")) == self.access_key_id:
            return True
        kind = text(identity.get("type"))
        arn = text(identity.get("arn"))
        issuer = section(section(identity, "sessionContext"), "sessionIssuer")
        if self.arn and arn:
            if self.type == "Role":
                return kind == "AssumedRole" and text(issuer.get("arn")) == self.arn
            return arn == self.arn
        if not self.name or not self._same_account(identity, record):
            return False
        if kind == "AssumedRole":
            role = text(issuer.get("userName")) or _role_of(arn)
            if self.type == "AssumedRole":
                return role == self.name and _session_of(arn) == self.session
            return self.type in (None, "Role") and role == self.name
        if kind == "Root":
            return self.type in (None, "Root") and self.name == "root"
        return self.type in (None, "IAMUser") and text(identity.get("userName")) == self.name

    def targeted(self, record: Record) -> str | None:
        """The change category when the record is an IAM change to the principal, else None."""
        name = text(record.get("eventName")) or ""
        category = CHANGE_CATEGORIES.get(name)
        if category is None or text(record.get("eventSource")) != IAM_SOURCE or not self.name:
            return None
        request = section(record, "requestParameters")
        user, role = text(request.get("userName")), text(request.get("roleName"))
        if user is None and role is None:
            # A user rotating its own key or password names nobody: the caller is the target.
            caller_type = text(section(record, "userIdentity").get("type"))
            mine = name in SELF_SERVICE and caller_type == "IAMUser" and self.acted(record)
            return category if mine else None
        if not self._same_account(section(record, "userIdentity"), record):
            return None
        is_role = self.type in ("Role", "AssumedRole")
        is_user = self.type in ("IAMUser", "Root")
        if user == self.name and not is_role:
            return category
        if role == self.name and not is_user:
            return category
        return None

    def _same_account(self, identity: dict[str, Any], record: Record) -> bool:
        account = text(record.get("recipientAccountId")) or text(identity.get("accountId"))
        return self.account is None or account is None or account == self.account


def _role_of(arn: str | None) -> str | None:
    if not arn or ":assumed-role/" not in arn:
        return None
    return arn.split(":assumed-role/", 1)[1].split("/", 1)[0] or None


def _session_of(arn: str | None) -> str | None:
    if not arn or ":assumed-role/" not in arn:
        return None
    rest = arn.split(":assumed-role/", 1)[1]
    return rest.split("/", 1)[1] if "/" in rest else None


def mentions(record: Record, resource_id: str) -> bool:
    """Whether the record's request, response or resources name ``resource_id``.

    A value names it when it is the id itself or an ARN ending in ``/<id>`` or ``:<id>``.
    """
    for key in ("requestParameters", "responseElements", "resources"):
        for value in _strings(record.get(key), depth=0):
            if value == resource_id or value.endswith(("/" + resource_id, ":" + resource_id)):
                return True
    return False


def _strings(value: object, *, depth: int) -> Iterator[str]:
    # Bounded: requests nest a few levels; a hostile record must not recurse for ever.
    if depth > 12:
        return
    if isinstance(value, str):
        yield value.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth=depth + 1)


def relevant(record: Record, principal: PrincipalRef, resource_ids: Iterable[str]) -> bool:
    """Whether a record belongs in the history: by, to the principal, or on a resource."""
    return (
        principal.acted(record)
        or principal.targeted(record) is not None
        or any(mentions(record, resource_id) for resource_id in resource_ids)
    )

"""Tokens made and revoked by an admin through the API: shown once, refused once revoked, audited
as the admin who did it."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

import pytest

from api.schemas.tokens import Role
from engine.identities import ROLES
from engine.store.types import utcnow
from tests.e2e.conftest import TestClient

if TYPE_CHECKING:
    from tests.e2e.conftest import Tokens

ALERT = {"title": "t", "severity": 10}
STORED_FIELDS = {"name", "role", "state", "created_at", "expires_at", "revoked_at"}


def make(client: TestClient, tokens: Tokens, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/tokens", json=body, headers=tokens.as_admin)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def audit_rows(client: TestClient, tokens: Tokens, verb: str) -> list[dict[str, Any]]:
    response = client.get("/v1/audit", params={"limit": 500}, headers=tokens.as_admin)
    assert response.status_code == 200, response.text
    return [event for event in response.json()["events"] if event["verb"] == verb]


def test_an_admin_makes_a_token_whose_secret_is_shown_once_and_works(
    client: TestClient, tokens: Tokens
) -> None:
    before = utcnow()
    made = make(client, tokens, name="eventbridge-hub", role="ingest")

    assert set(made) == STORED_FIELDS | {"token"}
    assert made["token"].startswith("rip_")
    assert (made["name"], made["role"], made["state"]) == ("eventbridge-hub", "ingest", "live")
    assert made["expires_at"] is None and made["revoked_at"] is None
    assert datetime.fromisoformat(made["created_at"]) >= before - timedelta(seconds=1)

    stored = client.post("/v1/alerts", json=ALERT, headers=tokens.bearer(made["token"]))
    assert stored.status_code == 202, stored.text
    # Its role is what it was made with: an ingest token reads nothing.
    assert client.get("/v1/runs", headers=tokens.bearer(made["token"])).status_code == 403


def test_the_list_shows_every_token_but_never_a_secret_or_a_hash(
    client: TestClient, tokens: Tokens
) -> None:
    made = make(client, tokens, name="eventbridge-hub", role="ingest")

    response = client.get("/v1/tokens", headers=tokens.as_admin)

    assert response.status_code == 200, response.text
    listed = {token["name"]: token for token in response.json()["tokens"]}
    # The fixture's tokens (made in the store, as `riposte token create` does) and the new one.
    assert set(listed) == {"sensor", "alice", "bob", "root", "old", "gone", "eventbridge-hub"}
    assert all(set(token) == STORED_FIELDS for token in listed.values())
    assert (listed["eventbridge-hub"]["role"], listed["eventbridge-hub"]["state"]) == (
        "ingest", "live")
    assert listed["old"]["state"] == "expired"
    assert listed["gone"]["state"] == "revoked"
    for secret in (made["token"], tokens.admin, tokens.ingest):
        assert secret not in response.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in response.text


def test_a_token_made_with_an_expiry_says_when_and_refuses_one_past(
    client: TestClient, tokens: Tokens
) -> None:
    until = (utcnow() + timedelta(hours=1)).replace(microsecond=0)

    made = make(client, tokens, name="ci-pipeline", role="responder",
                expires_at=until.isoformat())

    assert datetime.fromisoformat(made["expires_at"]) == until
    assert client.get("/v1/runs", headers=tokens.bearer(made["token"])).status_code == 200
    for when, problem in [
        ((utcnow() - timedelta(minutes=1)).isoformat(), "must be in the future"),
        ("2099-01-01T00:00:00", "timezone"),
    ]:
        refused = client.post("/v1/tokens", headers=tokens.as_admin,
                              json={"name": "late", "role": "ingest", "expires_at": when})
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_request"
        assert "expires_at" in refused.json()["detail"]
        assert problem in refused.json()["detail"]


def test_a_revoked_token_is_refused_at_once_and_revoking_again_changes_nothing(
    client: TestClient, tokens: Tokens
) -> None:
    made = make(client, tokens, name="ci-pipeline", role="responder")
    as_new = tokens.bearer(made["token"])
    assert client.get("/v1/runs", headers=as_new).status_code == 200  # now trusted for a while

    revoked = client.delete("/v1/tokens/ci-pipeline", headers=tokens.as_admin)

    assert revoked.status_code == 200, revoked.text
    assert set(revoked.json()) == STORED_FIELDS
    assert revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/v1/runs", headers=as_new)
    assert refused.status_code == 401
    assert "revoked or expired" in refused.json()["detail"]

    again = client.delete("/v1/tokens/ci-pipeline", headers=tokens.as_admin)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert len(audit_rows(client, tokens, "token.revoked")) == 1

    missing = client.delete("/v1/tokens/nobody", headers=tokens.as_admin)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert missing.json()["detail"] == "no token named 'nobody'"


def test_making_and_revoking_are_audited_as_the_admin_who_did_it(
    client: TestClient, tokens: Tokens
) -> None:
    made = make(client, tokens, name="eventbridge-hub", role="ingest")
    assert client.delete("/v1/tokens/eventbridge-hub", headers=tokens.as_admin).status_code == 200

    [created] = [row for row in audit_rows(client, tokens, "token.created")
                 if row["details"]["name"] == "eventbridge-hub"]
    [revoked] = audit_rows(client, tokens, "token.revoked")

    # "root" is the fixture's admin token, the caller of both requests.
    assert (created["actor"], created["details"]) == (
        "root", {"name": "eventbridge-hub", "role": "ingest"})
    assert (revoked["actor"], revoked["details"]) == (
        "root", {"name": "eventbridge-hub", "role": "ingest"})
    audit = client.get("/v1/audit", params={"limit": 500}, headers=tokens.as_admin).text
    assert made["token"] not in audit
    assert client.get("/v1/audit/verify", headers=tokens.as_admin).json()["ok"] is True


def test_a_name_already_taken_is_a_conflict(client: TestClient, tokens: Tokens) -> None:
    make(client, tokens, name="eventbridge-hub", role="ingest")

    for name in ("eventbridge-hub", "alice", "gone"):  # a revoked token keeps its name
        response = client.post("/v1/tokens", json={"name": name, "role": "admin"},
                               headers=tokens.as_admin)
        assert response.status_code == 409, name
        assert response.json()["code"] == "conflict"
        assert response.json()["detail"] == f"a token named {name!r} already exists"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "system", "role": "ingest"}, "'system' is reserved"),
        ({"name": "Admin", "role": "ingest"}, "'Admin' is reserved"),
        ({"name": "token:alice", "role": "ingest"}, "a token's name has no ':'"),
        ({"name": " padded", "role": "ingest"}, "no leading or trailing blanks"),
        ({"name": "", "role": "ingest"}, "a token's name must not be empty"),
        ({"name": "x" * 129, "role": "ingest"}, "a token's name is at most 128 characters"),
        ({"name": "ops", "role": "root"}, "'ingest', 'responder', 'admin' or 'metrics'"),
        ({"name": "ops"}, "body.role: field required"),
        ({"name": "ops", "role": "admin", "secret": "mine"}, "body.secret: unknown field"),
    ],
    ids=["reserved", "reserved-any-case", "colon", "blank", "empty", "long", "unknown-role",
         "no-role", "unknown-field"],
)
def test_a_reserved_or_invalid_name_or_role_is_refused_and_nothing_is_made(
    client: TestClient, tokens: Tokens, body: dict[str, Any], problem: str
) -> None:
    response = client.post("/v1/tokens", json=body, headers=tokens.as_admin)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert problem in response.json()["detail"]
    listed = client.get("/v1/tokens", headers=tokens.as_admin).json()["tokens"]
    assert len(listed) == 6  # the fixture's
    assert audit_rows(client, tokens, "token.created") == [
        row for row in audit_rows(client, tokens, "token.created")
        if row["details"]["name"] in {"sensor", "alice", "bob", "root", "old", "gone"}
    ]


def test_only_an_admin_may_see_make_or_revoke_tokens(client: TestClient, tokens: Tokens) -> None:
    for headers in (tokens.as_responder, tokens.as_ingest):
        for method, path, body in [("POST", "/v1/tokens", {"name": "mine", "role": "admin"}),
                                   ("GET", "/v1/tokens", None),
                                   ("DELETE", "/v1/tokens/root", None)]:
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (method, path)
            assert response.json()["code"] == "forbidden"
            assert "needs admin" in response.json()["detail"]
    assert client.get("/v1/tokens").status_code == 401
    listed = client.get("/v1/tokens", headers=tokens.as_admin).json()["tokens"]
    assert {token["name"]: token["state"] for token in listed}["root"] == "live"
    assert "mine" not in {token["name"] for token in listed}


def test_the_roles_on_the_wire_are_riposte_s_roles() -> None:
    assert get_args(Role) == ROLES

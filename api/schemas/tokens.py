"""Wire models: API tokens. A token's secret is answered once, when it is made; its hash never."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, field_validator

from api.schemas.common import Page, RequestModel, ResponseModel, Text
from engine.identities import NAME_LIMIT, token_name_problem
from engine.store.models import ApiToken
from engine.store.types import utcnow

# engine.identities.ROLES, spelt out so that OpenAPI lists them (a test keeps the two equal).
Role = Literal["ingest", "responder", "admin", "metrics"]
TokenState = Literal["live", "expired", "revoked"]


def _allowed_name(name: str) -> str:
    problem = token_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


class TokenIn(RequestModel):
    """A token to make."""

    # token_name_problem says what is wrong with a name, its length included.
    name: Annotated[Text, AfterValidator(_allowed_name),
                    Field(description=f"Unique, at most {NAME_LIMIT} characters, no ':'; not a "
                          "role's name nor one Riposte writes itself (system, …).")]
    role: Role = Field(description="ingest (post alerts), responder (read, start runs, decide "
                       "approvals), admin (everything) or metrics (read /metrics, nothing "
                       "else: for a Prometheus scraper).")
    expires_at: AwareDatetime | None = Field(
        default=None, description="When it stops working (ISO 8601 with a zone, in the future); "
        "none: it never expires.")

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future; leave it out for a token that never expires")
        return value


class TokenOut(ResponseModel):
    """A token as stored: never its secret nor its hash."""

    name: str = Field(description="The actor its requests are audited as.")
    role: str
    state: TokenState = Field(description="live, expired, or revoked (refused with 401).")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken, *, now: datetime) -> TokenOut:
        """Describe a stored token as it stands at ``now``."""
        return cls(**cls._fields_of(row, now=now))

    @staticmethod
    def _fields_of(row: ApiToken, *, now: datetime) -> dict[str, object]:
        state: TokenState = "live"
        if row.revoked_at is not None:
            state = "revoked"
        elif row.expires_at is not None and row.expires_at <= now:
            state = "expired"
        return {"name": row.name, "role": row.role, "state": state, "created_at": row.created_at,
                "expires_at": row.expires_at, "revoked_at": row.revoked_at}


class TokenCreated(TokenOut):
    """A token just made, with its secret: shown this once, never again."""

    token: str = Field(description="The bearer token itself (rip_…); only its hash is kept, so "
                       "it cannot be shown again.")

    @classmethod
    def made(cls, row: ApiToken, *, token: str, now: datetime) -> TokenCreated:
        """Describe a token just made, with its only plaintext copy."""
        return cls(**cls._fields_of(row, now=now), token=token)


class TokenList(Page):
    tokens: list[TokenOut] = Field(description="Tokens, the oldest first.")

"""API tokens, made and revoked by an admin: the secret is shown once, every change audited."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.deps import TEXT_PATTERN, AdminCaller, RuntimeDep, SessionDep
from api.pagination import DEFAULT_LIMIT, IdCursor, Limit, page
from api.problems import AUTHENTICATED, WITH_BODY, problems
from api.query import STRICT_QUERY
from api.schemas.tokens import TokenCreated, TokenIn, TokenList, TokenOut
from engine.identities import NAME_LIMIT
from engine.store.tokens import create_token, get_token, list_tokens, revoke_token
from engine.store.types import utcnow

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/tokens", tags=["tokens"],
                   dependencies=STRICT_QUERY)

TokenName = Annotated[str, Path(min_length=1, max_length=NAME_LIMIT, pattern=TEXT_PATTERN,
                                 description="Its name.")]


@router.post("", status_code=201, operation_id="createToken",
             responses=problems(*AUTHENTICATED, *WITH_BODY, 409,
                                described={409: "The name is taken."}))
def post_token(body: TokenIn, caller: AdminCaller, session: SessionDep) -> TokenCreated:
    """Make a token; the answer holds its secret, shown this once (only its hash is stored).

    Audited as ``token.created`` with the caller as the actor. A name is unique, even once its
    token is revoked (409): the audit log names tokens by name.
    """
    with session.begin():
        secret = create_token(session=session, name=body.name, role=body.role,
                              expires_at=body.expires_at, actor=caller.name)
        row = get_token(session, body.name)
        made = TokenCreated.made(row, token=secret, now=utcnow())
    log.info("%s created %s token %r", caller.name, body.role, body.name)
    return made


@router.get("", operation_id="listTokens", responses=problems(*AUTHENTICATED, 422))
def get_tokens(
    request: Request, caller: AdminCaller, session: SessionDep,
    limit: Limit = DEFAULT_LIMIT, cursor: IdCursor = None,
) -> TokenList:
    """List tokens, oldest first: name, role, state and dates, never a secret or hash."""
    rows = list_tokens(session, limit=limit + 1, after_id=cursor)
    shown, next_page = page(request, rows, limit=limit, cursor=lambda row: row.id)
    now = utcnow()
    return TokenList(tokens=[TokenOut.of(row, now=now) for row in shown], next=next_page)


@router.delete("/{name}", operation_id="revokeToken",
               responses=problems(*AUTHENTICATED, 404, 422, described={404: "No such token."}))
def delete_token(
    name: TokenName, caller: AdminCaller, session: SessionDep, runtime: RuntimeDep
) -> TokenOut:
    """Revoke a token: refused (401) from now on by this process, within
    RIPOSTE_TOKEN_CACHE_SECONDS by the others. Audited as ``token.revoked``; revoking a revoked
    token changes nothing and answers it as it is."""
    with session.begin():
        row = revoke_token(session=session, name=name, actor=caller.name)
        revoked = TokenOut.of(row, now=utcnow())
        digest = row.token_hash
    runtime.verified_tokens.forget(digest)
    log.info("%s revoked token %r", caller.name, name)
    return revoked

"""API tokens, made and revoked by an admin: the secret is shown once, every change audited."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import AdminCaller, RuntimeDep, SessionDep
from api.schemas import Text
from api.schemas.tokens import TokenCreated, TokenIn, TokenList, TokenOut
from engine.identities import NAME_LIMIT
from engine.store.tokens import create_token, get_token, list_tokens, revoke_token
from engine.store.types import utcnow

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/tokens", tags=["tokens"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such token."}}
TokenName = Annotated[Text, Path(min_length=1, max_length=NAME_LIMIT, description="Its name.")]


@router.post("", status_code=201, responses={409: {"description": "The name is taken."}})
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


@router.get("")
def get_tokens(caller: AdminCaller, session: SessionDep) -> TokenList:
    """List every token, oldest first: name, role, state and dates, never a secret or hash."""
    now = utcnow()
    return TokenList(tokens=[TokenOut.of(row, now=now) for row in list_tokens(session)])


@router.delete("/{name}", responses=_NOT_FOUND)
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

"""Slack's interactivity endpoint: buttons pressed and modals submitted in Riposte's messages.

Slack signs each request with the app's signing secret (``v0=`` HMAC-SHA256 of
``v0:{timestamp}:{body}``); the signature and its timestamp (at most 5 minutes off) are checked
on the raw body before anything of it is read. Slack wants an answer within 3 seconds: the
route answers at once and the work (the decision, the replan, Slack's own API) is done after,
in a worker thread (engine.slack.interactions).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request, Response
from slack_sdk.signature import SignatureVerifier

from api import refusals
from api.deps import refused, runtime_of
from api.errors import ApiError
from api.problems import problems
from core.settings import variable
from engine.slack.interactions import SlackInteractions

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/webhooks/slack", tags=["webhooks"])

MAX_AGE_SECONDS = 300  # Slack's advice: refuse a request whose timestamp is 5 minutes off
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


@router.post(
    "/interactions",
    operation_id="takeSlackInteraction",
    responses={
        200: {"description": "Accepted; the work is done after the answer."},
        **problems(400, 401, 403, 404, 413, described={
            400: "Signed, but not an interaction payload.",
            401: "No Slack signature or timestamp.",
            403: "The signature does not verify, or its timestamp is more than 5 minutes off "
                 "(a replay).",
            404: "Slack is not configured (no signing secret or bot token).",
        }),
    },
)
async def post_slack_interaction(request: Request, background: BackgroundTasks) -> Response:
    """Take a button press or a modal submission from Slack (signed with the signing secret)."""
    runtime = runtime_of(request)
    secret = runtime.settings.slack_signing_secret
    interactions: SlackInteractions | None = getattr(request.app.state, "slack", None)
    if secret is None or interactions is None:
        raise ApiError(404, f"Slack interactions are off: set {variable('slack_signing_secret')} "
                            f"and {variable('slack_bot_token')}")
    body = await request.body()
    problem = _signature_problem(body, request, secret.get_secret_value())
    if problem is not None:
        status, why = problem
        await refused(runtime, request, actor="anonymous", reason=f"Slack request: {why}",
                      anonymous=refusals.SLACK_UNPROVEN)
        raise ApiError(status, f"Slack request refused: {why}")
    payload = _payload(body)
    background.add_task(interactions.handle, payload)
    return Response(status_code=200)


def _signature_problem(body: bytes, request: Request, secret: str) -> tuple[int, str] | None:
    """Why the request is not Slack's (401: unsigned, 403: wrong or stale), or None."""
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        return 401, f"no {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers"
    try:
        sent = int(timestamp)
    except ValueError:
        return 403, f"{TIMESTAMP_HEADER} is not a number of seconds"
    if abs(time.time() - sent) > MAX_AGE_SECONDS:
        return 403, f"its timestamp is more than {MAX_AGE_SECONDS // 60} minutes off (a replay?)"
    if not SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp,
                                              signature=signature):
        return 403, "the signature does not verify with the signing secret"
    return None


def _payload(body: bytes) -> dict[str, Any]:
    """The JSON ``payload`` field of the form Slack posts."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise ApiError(400, "not a Slack interaction: a form with a JSON payload field is "
                            "expected") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "not a Slack interaction: the payload is not a JSON object")
    return payload

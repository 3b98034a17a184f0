"""Webhooks: what SNS, EventBridge API destinations and CloudTrail shippers post, as they post it.

Each reads the raw body (SNS sends JSON as text/plain), normalizes it and stores its alerts
(api.ingest.store_delivery: a 2xx means all of them are committed); refusals are recorded as
rejected deliveries by api.errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api import refusals
from api.deps import (
    BodyDigest,
    Caller,
    Incoming,
    IncomingDep,
    Runtime,
    SnsCaller,
    WebhookCaller,
)
from api.errors import ApiError, error_response, unavailable
from api.ingest import events_in, in_ingest_thread, refuse_too_many_events, store_delivery
from api.problems import Responses, problems
from api.schemas import IngestOut, WebhookOut
from engine import audit
from engine.alerts import NormalizedAlert
from engine.delivery_json import MalformedJson, UnstorableText, parse_delivery_json
from engine.normalize import (
    UnsupportedPayload,
    normalize_cloudtrail,
    normalize_eventbridge_delivery,
    normalize_sns_message,
)
from engine.sns import (
    SnsMessage,
    SnsMessageInvalid,
    SnsMessageRefused,
    SnsMessageType,
    SnsReplayRefused,
    SnsSignatureInvalid,
    SnsTopicRefused,
    SubscriptionNotConfirmed,
    admit,
    check_aws_url,
    parse_sns_message,
    verify,
)
from engine.store.alerts import IngestResult, record_delivery

log = logging.getLogger("riposte.api")
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

SNS_ENDPOINT = "/v1/webhooks/sns"
EVENTBRIDGE_ENDPOINT = "/v1/webhooks/eventbridge"
CLOUDTRAIL_ENDPOINT = "/v1/webhooks/cloudtrail"
SNS_TYPE_HEADER = "x-amz-sns-message-type"
NO_SNS_TOPICS = (
    "SNS message refused: RIPOSTE_SNS_TOPICS is empty, so no topic is allowed; set it to the "
    "TopicArn globs of the topics that send to Riposte, e.g. arn:aws:sns:*:123456789012:riposte-*"
)

_INGEST_PROBLEMS = {
    400: "The body is not JSON as Riposte reads it (the detail gives the position; also NaN, "
         "Infinity, numbers out of range, nesting deeper than 64 levels).",
    413: "The body is over RIPOSTE_MAX_BODY_BYTES, or carries more events than "
         "RIPOSTE_MAX_EVENTS_PER_DELIVERY (code too_many_events).",
    422: "JSON, but not a payload this endpoint reads, or holding text no database stores as "
         "sent (a lone surrogate, a NUL: the detail says where).",
    503: "Not stored (database unavailable): retry later.",
}
_INGEST_RESPONSES: Responses = {
    200: {"model": WebhookOut, "description": "Every alert was a repeat of a stored one."},
    202: {"model": WebhookOut, "description": "Stored; runs queued."},
    **problems(400, 401, 403, 413, 422, 503, described={
        **_INGEST_PROBLEMS,
        401: "No live token in the API key header (RIPOSTE_EVENTBRIDGE_API_KEY_HEADER) nor "
             "as a bearer token.",
        403: "The token's role is not ingest or admin.",
    }),
}


# The routes read their bodies themselves (api.deps.IncomingDep); the document says what they read.
_JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "description": "One event, or an array of events (EventBridge: the event as the API "
                   "destination posts it; CloudTrail: a record or a log file, "
                   "{\"Records\": [...]})",
    "type": ["object", "array"]}}}}}
_SNS_FIELDS = ("Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion",
               "Signature", "SigningCertURL")
_SNS_BODY = {
    "requestBody": {"required": True, "content": {
        "text/plain": {"schema": {"type": "string",
                                  "description": "The SNS message (JSON), as SNS sends it."}},
        "application/json": {"schema": {
            "type": "object", "required": list(_SNS_FIELDS),
            "properties": {name: {"type": "string"} for name in (
                *_SNS_FIELDS, "Subject", "SubscribeURL", "Token", "UnsubscribeURL")}}},
    }},
    "parameters": [{"name": SNS_TYPE_HEADER, "in": "header", "required": True,
                    "description": "The message's Type, as SNS sends it.",
                    "schema": {"type": "string", "enum": list(get_args(SnsMessageType))}}],
}


@router.post("/eventbridge", status_code=202, operation_id="ingestEventBridge",
             responses=_INGEST_RESPONSES, openapi_extra=_JSON_BODY)
async def post_eventbridge(
    incoming: IncomingDep, caller: WebhookCaller, response: Response
) -> WebhookOut:
    """Store what an EventBridge API destination posts: one event or an array of events."""
    return await in_ingest_thread(incoming.runtime, _ingest, normalize_eventbridge_delivery,
                                  "EventBridge event", incoming, EVENTBRIDGE_ENDPOINT,
                                  caller.name, response)


@router.post("/cloudtrail", status_code=202, operation_id="ingestCloudTrail",
             responses=_INGEST_RESPONSES, openapi_extra=_JSON_BODY)
async def post_cloudtrail(
    incoming: IncomingDep, caller: WebhookCaller, response: Response
) -> WebhookOut:
    """Store a CloudTrail record or a log file (``{"Records": [...]}``), one alert per record."""
    return await in_ingest_thread(incoming.runtime, _ingest, normalize_cloudtrail,
                                  "CloudTrail payload", incoming, CLOUDTRAIL_ENDPOINT,
                                  caller.name, response)


@router.post(
    "/sns",
    status_code=202,
    operation_id="ingestSns",
    openapi_extra=_SNS_BODY,
    # The answers that are not a WebhookOut are Responses, which FastAPI passes through.
    response_model=WebhookOut,
    responses={
        202: {"model": WebhookOut, "description": "Stored; runs queued."},
        200: {"description": "A repeat, or a (un)subscription confirmation handled.",
              "content": {"application/json": {"schema": {"type": "object"}}}},
        **problems(400, 401, 403, 413, 422, 502, 503, described={
            **_INGEST_PROBLEMS,
            400: "Not an SNS message (the detail says why), the message type header does not "
                 "match it, or its notification is not JSON as Riposte reads it.",
            401: "RIPOSTE_SNS_BASIC_AUTH is set and the credentials are wrong.",
            403: "The signature does not verify, the topic is not allowed (or "
                 "RIPOSTE_SNS_TOPICS is empty), or the Timestamp is too old or too far ahead "
                 "(a replay).",
            502: "SNS did not accept the visit of the SubscribeURL.",
        }),
    },
)
async def post_sns(
    request: Request, incoming: IncomingDep, caller: SnsCaller, response: Response
) -> WebhookOut | JSONResponse:
    """Verify an SNS message, then store its alerts or handle the subscription it is about."""
    return await in_ingest_thread(incoming.runtime, _receive_sns, request, incoming,
                                  request.headers.get(SNS_TYPE_HEADER), caller, response)


# The routes are async so that FastAPI checks their answers on the event loop; the work runs in
# a worker thread, once per request (in_ingest_thread): normalizing a large body, fetching a
# certificate, visiting a SubscribeURL and the database all block that thread, never the loop.


def _ingest(
    normalize: Callable[[Any], list[NormalizedAlert]],
    what: str,
    incoming: Incoming,
    endpoint: str,
    actor: str,
    response: Response,
) -> WebhookOut:
    document = _json_body(incoming.body)
    # Refused before normalizing: a body of tiny events costs seconds of CPU to normalize.
    refuse_too_many_events(events_in(document), runtime=incoming.runtime)
    alerts = _normalized(normalize, document, what)
    results = store_delivery(session=incoming.session, alerts=alerts, runtime=incoming.runtime,
                             endpoint=endpoint, digest=incoming.digest, actor=actor,
                             response=response)
    return _answer(results)


def _receive_sns(
    request: Request, incoming: Incoming, header_type: str | None, caller: Caller,
    response: Response,
) -> WebhookOut | JSONResponse:
    runtime, digest, settings = incoming.runtime, incoming.digest, incoming.runtime.settings
    message = _sns_message(incoming.body, header_type)
    if not settings.sns_topics:
        raise ApiError(403, NO_SNS_TOPICS)
    try:
        verify(message, runtime.sns_certificates)
    except SnsSignatureInvalid as exc:
        log.warning("SNS message %s refused: %s", message.message_id, exc)
        raise ApiError(403, f"SNS signature refused: {exc}") from None
    try:
        # Before anything is stored or visited, whatever the message type.
        admit(message, topics=settings.sns_topics, now=datetime.now(UTC),
              max_age=timedelta(seconds=settings.sns_max_age_seconds))
    except SnsMessageRefused as exc:
        log.warning("SNS %s %s refused: %s", message.type, message.message_id, exc)
        if isinstance(exc, SnsTopicRefused) and message.type == "SubscriptionConfirmation":
            # A stranger's topic, signed by AWS and replayable: recorded at the bounded rate of
            # every refusal of a sender that proved nothing (api.refusals).
            if refusals.recorded(request, "sns_topic_not_allowed"):
                _record_subscription(runtime, message, digest, outcome="rejected",
                                     verb="sns.subscription_refused", reason=f"403: {exc}")
            return error_response(403, f"subscription not confirmed: {exc}")
        replay = " as a replay" if isinstance(exc, SnsReplayRefused) else ""
        raise ApiError(403, f"SNS {message.type} refused{replay}: {exc}") from None
    if message.type == "Notification":
        return _ingest(lambda doc: normalize_sns_message(message.type, doc), "SNS notification",
                       incoming, SNS_ENDPOINT, caller.name, response)
    if message.type == "UnsubscribeConfirmation":
        _record_subscription(runtime, message, digest, outcome="accepted",
                             verb="sns.unsubscribe_confirmed", reason="unsubscribed")
        return JSONResponse({"type": message.type, "topic_arn": message.topic_arn})
    assert message.subscribe_url is not None  # parse_sns_message requires it
    try:
        url = check_aws_url(message.subscribe_url)
        runtime.confirm_subscription(url)
    except SnsSignatureInvalid as exc:  # SnsUrlRefused: nothing was requested
        raise ApiError(403, f"subscription not confirmed: {exc}") from None
    except SubscriptionNotConfirmed as exc:
        log.warning("SNS subscription to %s not confirmed: %s", message.topic_arn, exc)
        raise ApiError(502, f"subscription not confirmed: {exc}") from None
    _record_subscription(runtime, message, digest, outcome="accepted",
                         verb="sns.subscription_confirmed", reason="subscription confirmed")
    log.info("confirmed the SNS subscription to %s", message.topic_arn)
    return JSONResponse({"type": message.type, "topic_arn": message.topic_arn,
                         "confirmed": True})


def _json_body(body: bytes) -> Any:
    """Return the parsed body, or answer 400 (not JSON Riposte reads) or 422 (not storable)."""
    try:
        return parse_delivery_json(body)
    except MalformedJson as exc:
        raise ApiError(400, f"malformed JSON body: {exc}", code="malformed_json") from None
    except UnstorableText as exc:
        raise ApiError(422, f"the body cannot be stored: {exc}") from None


def _normalized(
    normalize: Callable[[Any], list[NormalizedAlert]], document: Any, what: str
) -> list[NormalizedAlert]:
    try:
        alerts = normalize(document)
    except UnsupportedPayload as exc:
        raise ApiError(422, f"unsupported {what}: {exc}") from None
    if not alerts:
        raise ApiError(422, f"the {what} holds no event to store")
    return alerts


def _sns_message(body: bytes, header_type: str | None) -> SnsMessage:
    try:
        message = parse_sns_message(body)
    except SnsMessageInvalid as exc:
        raise ApiError(400, str(exc)) from None
    if header_type != message.type:
        raise ApiError(400, f"the {SNS_TYPE_HEADER} header ({header_type!r}) does not match the "
                            f"message Type ({message.type!r})")
    return message


def _record_subscription(
    runtime: Runtime, message: SnsMessage, digest: BodyDigest, *, outcome: str, verb: str,
    reason: str,
) -> None:
    try:
        with runtime.sessions.begin() as session:
            record_delivery(session=session, endpoint=SNS_ENDPOINT, source="sns",
                            outcome=outcome, reason=reason, body_sha256=digest.sha256,
                            body_bytes=digest.size)
            audit.record(session, actor="sns", verb=verb,
                         details={"topic_arn": message.topic_arn,
                                  "message_id": message.message_id})
    except DataError:
        raise
    except (DBAPIError, PoolTimeout):
        raise unavailable("the SNS message was not recorded (database unavailable); "
                          "retry later") from None


def _answer(results: list[IngestResult]) -> WebhookOut:
    return WebhookOut(alerts=[IngestOut.of(result) for result in results])

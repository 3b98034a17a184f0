"""JSON-lines logging, each line carrying the alert, run and step it concerns, and no secret.

No secret reaches a log line, at any level, from Riposte or from a library: ``configure``
installs a filter that rewrites every record on its way out (``redact``): the secrets Riposte
was told of (``keep_secret``: webhook URLs, whose path or query is the credential) and, by
their shape, credentials in URLs (``user:password@``), query strings of URLs, bearer and basic
credentials, Riposte's tokens, and the values of secret-named headers and fields
(``Authorization``, ``X-Amz-Security-Token``, ``SecretAccessKey``…). The HTTP and AWS libraries,
which at DEBUG write every request's URL, headers and body, are also held at WARNING
(``QUIET_LIBRARIES``): their lines add little to Riposte's own and cost as much.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

_IDS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "riposte_ids", default=None
)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Attach ids (request_id, alert_id, run_id, step_id…) to every log line written inside.

    A context variable: it follows the code into ``asyncio`` tasks and into the thread pool
    (``run_in_threadpool`` copies the context), so an HTTP request's id is on every line the
    request causes, and a run's ids on every line of its steps, the actions' included.
    """
    token = _IDS.set({**(_IDS.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _IDS.reset(token)


def bound_ids() -> dict[str, str]:
    """Return the ids attached to log lines here (``bound``)."""
    return dict(_IDS.get() or {})


FIELDS = "fields"  # the LogRecord attribute holding a line's own fields (``fields``)
_LINE_KEYS = frozenset({"time", "level", "logger", "message", "exception"})


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """Return ``extra`` for a log call that adds ``values`` as fields of its JSON line.

    ``log.warning("step failed", extra=fields(attempts=3, error_code="Throttling"))``. Values
    are redacted like messages; a field never replaces the line's time, level, logger,
    message or ids.
    """
    return {FIELDS: values}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line: time, level, logger, message, ids, fields."""

    def format(self, record: logging.LogRecord) -> str:
        ids = _IDS.get() or {}
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **ids,
        }
        own = getattr(record, FIELDS, None)
        if isinstance(own, dict):
            line.update({k: v for k, v in own.items() if k not in _LINE_KEYS and k not in ids})
        if record.exc_text:  # formatted (and redacted) by SecretsFilter
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Libraries that log requests (URLs, headers, bodies) at INFO or DEBUG: only their warnings
# and errors are written, whatever RIPOSTE_LOG_LEVEL says.
QUIET_LIBRARIES = ("httpx", "httpcore", "hpack", "urllib3", "botocore", "boto3", "s3transfer",
                   "slack_sdk")


def configure(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines, with every secret redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretsFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


# --- Secrets kept out of every log line ---------------------------------------------------------

REDACTED = "[redacted]"
KEPT_LIMIT = 1_000  # distinct secrets remembered (webhook URLs: a handful, from settings and steps)
# A URL's path or query shorter than this ("/", "hook") is no credential, and redacting it
# would blank that word in every line.
_SHORTEST_PART = 8

_kept_by_age: dict[str, None] = {}  # oldest first: the first forgotten past KEPT_LIMIT
_kept: tuple[str, ...] = ()  # the same, longest first: a secret is replaced before its parts
_keeping = threading.Lock()

_SCHEME = r"\b[A-Za-z][A-Za-z0-9+.-]*://"
_SECRET_NAME = (r"[\w-]*(?:authorization|security-token|securitytoken|session-?token|api-?key|"
                r"secret|passw(?:or)?d|cookie|external-?id|credential)[\w-]*")


def _hook_path(match: re.Match[str]) -> str:
    return match[1] + "/" + REDACTED if "hook" in match[0].lower() else match[0]


_SHAPES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # Riposte's own API tokens (rip_…), wherever they appear.
    (re.compile(r"\brip_[A-Za-z0-9_-]{8,}"), "rip_" + REDACTED),
    # scheme://user:password@host
    (re.compile(f"({_SCHEME})[^/\\s@'\"<>]+@"), r"\1" + REDACTED + "@"),
    # The path of a webhook's URL (hooks.slack.com/services/T…/B…/secret, …/api/webhooks/…),
    # even one Riposte was not told of.
    (re.compile(f"({_SCHEME}[^\\s/?#'\"<>]+)/[^\\s?#'\"<>]+"), _hook_path),
    # The query string of a URL (?token=…, a presigned URL's signature).
    (re.compile(f"({_SCHEME}[^\\s?#'\"<>]*)\\?[^\\s#'\"<>]+"), r"\1?" + REDACTED),
    # A secret-named query parameter of a path logged alone (an access log line).
    (re.compile(r"(?i)([?&][\w.-]*(?:token|key|secret|passw|pwd|sig|credential|auth)[\w.-]*=)"
                r"[^&\s#'\"<>]+"), r"\1" + REDACTED),
    # Authorization header values.
    (re.compile(r"(?i)\b(bearer|basic|digest)(\s+)[A-Za-z0-9._~+/=-]{6,}"),
     r"\1\2" + REDACTED),
    # A secret-named header or field: 'Authorization': b'…', x-amz-security-token:…,
    # "SecretAccessKey": "…", ExternalId=…
    (re.compile(f"(?i)(['\"]?\\b{_SECRET_NAME}['\"]?\\s*[:=]\\s*)"
                r"(b?'[^']*'|b?\"[^\"]*\"|[^\s,;}&]+)"), r"\1" + REDACTED),
    # The same in XML (an STS answer's <SecretAccessKey>, <SessionToken>).
    (re.compile(r"(?i)(<([\w:-]*(?:secret|token|passw(?:or)?d)[\w-]*)>)[^<]*(</\2>)"),
     r"\1" + REDACTED + r"\3"),
    # A SigV4 signature logged alone (botocore: "Signature:\n<hex>").
    (re.compile(r"(?i)(signature[=:]\s*)[0-9a-f]{64}"), r"\1" + REDACTED),
]


def keep_secret(value: str) -> None:
    """Never let ``value`` reach a log line; for a URL, nor its credentials, path or query.

    Whoever holds a secret says so before using it (``notify.webhook`` before posting): a
    library may then log it in any form — the whole URL, the path alone, the basic credentials
    it made of ``user:password`` — and each is redacted.
    """
    global _kept
    secrets = {part for part in _parts(value) if part}
    with _keeping:
        if all(secret in _kept_by_age for secret in secrets):
            return
        for secret in secrets:
            _kept_by_age.pop(secret, None)
            _kept_by_age[secret] = None
        while len(_kept_by_age) > KEPT_LIMIT:
            del _kept_by_age[next(iter(_kept_by_age))]
        _kept = tuple(sorted(_kept_by_age, key=len, reverse=True))


def _parts(value: str) -> set[str]:
    """The secret parts of ``value``: itself, or for a URL its credentials, path and query.

    A URL's scheme and host are not secret, and stay readable: a line then still says where a
    request went (``POST https://hooks.slack.com/[redacted]``).
    """
    value = value.strip()
    try:
        url = urlsplit(value)
    except ValueError:
        return {value}
    if not url.scheme or not url.netloc:
        return {value}
    parts: set[str] = set()
    userinfo, at, _host = url.netloc.rpartition("@")
    if at and userinfo:
        parts |= {userinfo, unquote(userinfo)}
        if url.password:
            parts |= {url.password, unquote(url.password)}
        user, _, password = unquote(userinfo).partition(":")
        parts.add(base64.b64encode(f"{user}:{password}".encode()).decode())
    for part in (url.path.strip("/"), url.query):
        if len(part) >= _SHORTEST_PART:
            parts |= {part, unquote(part)}
    return parts


def redact(text: str) -> str:
    """Return ``text`` with every secret kept (``keep_secret``) or shaped like one redacted."""
    for secret in _kept:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return text


class SecretsFilter(logging.Filter):
    """Redact a record's message, arguments, traceback and stack before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: logging reports it, with them redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        own = getattr(record, FIELDS, None)
        if isinstance(own, dict):
            setattr(record, FIELDS, _redacted(own))
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
_SECRET_FIELD = re.compile(_SECRET_NAME, re.IGNORECASE)


def _redacted(value: Any, name: str = "") -> Any:
    """Return ``value`` (a field's) with secrets redacted, and all of it under a secret name."""
    if name and _SECRET_FIELD.fullmatch(name):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


ACCESS_LOGGER = "uvicorn.access"


def access_log(enabled: bool) -> None:
    """Turn uvicorn's line per HTTP request on or off (RIPOSTE_ACCESS_LOG).

    Off, a request leaves only the API's own lines, which name the alert, run or refusal.
    """
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if enabled else logging.WARNING)

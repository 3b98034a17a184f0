"""Record the AWS lookups of a rehearsal once, and replay them offline: a cassette per alert.

A cassette is a JSON file of entries ``{service, operation, account, region, params,
responses}``: every answer a lookup got, in order (an error answer too, with its HTTP status).
Recording hooks botocore's ``after-call`` event, which sees the parsed answer (first, before
botocore's own handlers decode parts of it); replaying hooks ``before-call``, which
short-circuits the HTTP request (nothing is signed, so no credentials are needed) by returning
the recorded answer. Both run after the dry-run guard, which still refuses
every call that changes AWS before it gets this far.

An entry is found by service, operation, account, region and parameters. A lookup whose window
ends "now" has other times on another day: a time-valued parameter is matched loosely (any
time) when no entry has the exact one. A lookup missing from the cassette fails its step with
``NotInCassette`` naming it, and is listed in ``misses``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from actions.base import ActionError
from engine.alerts import NormalizedAlert

_TIME = "<time>"
_DATETIME_TAG = "$datetime"
_BYTES_TAG = "$bytes"


class CassetteInvalid(ValueError):
    """A cassette file that cannot be read back; the message names it."""


def alert_digest(alert: NormalizedAlert) -> str:
    """Return a digest that names the alert wherever it was read from: of its natural key
    (dedup key), else of its content in a canonical order (a database may reorder JSON keys)."""
    identity = alert.dedup_key or json.dumps(alert.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()


def cassette_name(alert: NormalizedAlert) -> str:
    """Return the file name of an alert's cassette: readable, and unique to the alert."""
    label = re.sub(r"[^A-Za-z0-9]+", "-", f"{alert.source}-{alert.type or alert.kind}")
    return f"{label.strip('-')[:60]}-{alert_digest(alert)[:16]}.json"


@dataclass
class Cassette:
    """The recorded lookups of one alert's rehearsals."""

    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    _keys: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, path: Path) -> Cassette:
        """Read a cassette; a missing file is an empty one (every lookup will miss)."""
        if not path.exists():
            return cls(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"), object_hook=_decode)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CassetteInvalid(f"cassette {path}: cannot read it: {exc}") from None
        entries = document.get("entries") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise CassetteInvalid(f"cassette {path}: no 'entries' list")
        return cls(path, entries)

    def save(self) -> None:
        """Write the cassette, its entries in a stable order (a re-recording diffs cleanly)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entries = sorted(self.entries, key=lambda e: _key(e, loose=False))
        body = json.dumps({"entries": entries}, indent=1, sort_keys=True, default=_encode)
        self.path.write_text(body + "\n", encoding="utf-8")

    def find(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """Return the entry of a call: the exact one, else one differing only in times."""
        if len(self._keys) != len(self.entries):  # entries were added: index them again
            self._keys = [(_key(e, loose=False), _key(e, loose=True)) for e in self.entries]
        exact, loose = _key(call, loose=False), _key(call, loose=True)
        for wanted, which in ((exact, 0), (loose, 1)):
            for entry, keys in zip(self.entries, self._keys, strict=True):
                if keys[which] == wanted:
                    return entry
        return None


class Deck:
    """Plays or records one rehearsal's lookups on a cassette (``hook`` of its AWS clients)."""

    def __init__(self, cassette: Cassette, *, recording: bool) -> None:
        self.cassette = cassette
        self.recording = recording
        self.misses: list[str] = []
        # How many answers of each entry this rehearsal has used: a lookup asked twice gets the
        # answers in the order they were recorded (the last one again once they run out).
        self._played: dict[str, int] = {}

    def hook(self, client: Any, account: str | None, region: str) -> None:
        """Register on a new botocore client (``actions.aws.clients.ClientHook``).

        ``region`` is the one asked for: the client's own may be botocore's (``aws-global``
        for IAM on AWS, the region given on a local endpoint).
        """
        service = client.meta.service_model.service_name
        events = client.meta.events

        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["riposte_cassette_params"] = copy.deepcopy(params)

        def call_of(model: Any, context: dict[str, Any]) -> dict[str, Any]:
            return {"service": service, "operation": model.name, "account": account,
                    "region": region, "params": context.get("riposte_cassette_params", {})}

        def play(model: Any, context: dict[str, Any], **_: Any) -> Any:
            call = call_of(model, context)
            entry = self.cassette.find(call)
            if entry is None:
                shown = f"{service}.{model.name}({_shown(call['params'])})"
                self.misses.append(f"{shown} in {region} (account {account or 'own'})")
                raise ActionError(
                    "NotInCassette",
                    f"{shown} is not in the cassette {self.cassette.path.name}; record it with "
                    "`riposte replay --record DIR` against AWS (or the local endpoint)",
                    retryable=False,
                )
            return _answer(self._next(entry))

        def record(http_response: Any, parsed: dict[str, Any], model: Any,
                   context: dict[str, Any], **_: Any) -> None:
            streamed = _keep_stream(parsed)
            call = call_of(model, context)
            entry = self.cassette.find(call)
            if entry is None or _key(entry, loose=False) != _key(call, loose=False):
                entry = {**call, "responses": []}
                self.cassette.entries.append(entry)
            answer = {"status": http_response.status_code, "body": _stored(parsed, streamed)}
            played = self._played.get(_key(entry, loose=False), 0)
            responses: list[Any] = entry["responses"]
            if played < len(responses):
                responses[played] = answer
            else:
                responses.append(answer)
            self._played[_key(entry, loose=False)] = played + 1

        events.register("before-parameter-build", keep_params)
        if self.recording:
            # First of all after-call handlers: the answer as parsed, before botocore's own
            # handlers decode parts of it (IAM policy documents), which replaying runs again.
            events.register_first("after-call.*.*", record)
        else:
            events.register("before-call", play)

    def _next(self, entry: dict[str, Any]) -> dict[str, Any]:
        key = _key(entry, loose=False)
        responses: list[dict[str, Any]] = entry.get("responses") or []
        if not responses:
            raise CassetteInvalid(f"cassette {self.cassette.path}: an entry has no responses")
        played = self._played.get(key, 0)
        self._played[key] = played + 1
        return responses[min(played, len(responses) - 1)]


def _key(call: dict[str, Any], *, loose: bool) -> str:
    params = _timeless(call.get("params", {})) if loose else call.get("params", {})
    return json.dumps(
        [call.get("service"), call.get("operation"), call.get("account"), call.get("region"),
         params],
        sort_keys=True, default=_encode,
    )


def _timeless(value: Any) -> Any:
    if isinstance(value, datetime):
        return _TIME
    if isinstance(value, dict):
        if set(value) == {_DATETIME_TAG}:
            return _TIME
        return {k: _timeless(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _shown(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _answer(recorded: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    status = int(recorded.get("status", 200))
    parsed = copy.deepcopy(recorded.get("body") or {})
    if isinstance(parsed.get("Body"), bytes):  # S3 GetObject: the caller reads a stream
        data = parsed["Body"]
        parsed["Body"] = StreamingBody(io.BytesIO(data), len(data))
    return AWSResponse("", status, {}, None), parsed


def _keep_stream(parsed: dict[str, Any]) -> bytes | None:
    """Read a streamed body once, hand the caller a fresh stream of it, return its bytes."""
    body = parsed.get("Body")
    if not isinstance(body, StreamingBody):
        return None
    data: bytes = body.read()
    parsed["Body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


def _stored(parsed: dict[str, Any], streamed: bytes | None) -> dict[str, Any]:
    stored = {k: v for k, v in parsed.items() if k != "Body"}
    if streamed is not None:
        stored["Body"] = streamed
    elif "Body" in parsed:
        stored["Body"] = parsed["Body"]
    # The request id and headers differ on every call: kept, they would rewrite every entry on
    # each recording.
    metadata = stored.get("ResponseMetadata")
    if isinstance(metadata, dict):
        stored["ResponseMetadata"] = {"HTTPStatusCode": metadata.get("HTTPStatusCode")}
    return copy.deepcopy(stored)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DATETIME_TAG: value.isoformat()}
    if isinstance(value, bytes):
        return {_BYTES_TAG: base64.b64encode(value).decode()}
    raise TypeError(f"{type(value).__name__} cannot be kept in a cassette")


def _decode(value: dict[str, Any]) -> Any:
    if set(value) == {_DATETIME_TAG}:
        return datetime.fromisoformat(value[_DATETIME_TAG])
    if set(value) == {_BYTES_TAG}:
        return base64.b64decode(value[_BYTES_TAG])
    return value

"""No secret reaches the log, at any level, from Riposte or from the libraries it uses.

A run is driven through the API with every kind of webhook Riposte posts to — the default
webhook (RIPOSTE_NOTIFY_WEBHOOK_URL), approval notices (RIPOSTE_APPROVAL_NOTIFY and a step's
own ``notify``), a step's inline URL with ``user:password@`` and ``?token=`` — each a secret,
received by a real HTTP server. The log is configured as ``riposte serve`` configures it, at
DEBUG, and everything written to it is searched for each secret and each bearer token used.
Before, httpx alone wrote every webhook URL at INFO ("HTTP Request: POST http://…").
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr

from core.logs import QUIET_LIBRARIES, configure
from core.settings import Settings
from tests.live_server import serving

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import MakeClient, PostAlert, Tokens, WaitForRun

DEFAULT_HOOK_SECRET = "T0DEFAULT/B0DEFAULT/defaultHookPathSecret"
NOTICE_HOOK_SECRET = "noticeHookPathSecret"
STEP_NOTICE_SECRET = "stepNoticePathSecret"
STEP_NOTICE_QUERY = "stepNoticeQuerySecret"
HOOK_USER, HOOK_PASSWORD = "hookuser", "hookPasswordSecret"
INLINE_QUERY = "inlineQuerySecret"

PLAYBOOK = """\
name: tell-everyone
trigger:
  source: [generic]
  kind: [iam]
steps:
  - id: first-look
    action: core.log
    with: {{message: "asking about {{{{ alert.principal.name }}}}"}}
    approval: {{reason: contain the user}}
  - id: second-look
    action: core.log
    with: {{message: asking again}}
    approval:
      reason: contain the user, really
      notify: ["{base}/notices/{step_notice}?token={step_query}"]
  - id: tell-default
    action: notify.webhook
    with: {{title: contained}}
  - id: tell-inline
    action: notify.webhook
    with:
      title: contained, inline
      url: "http://{user}:{password}@{host}/inline/hook?token={inline_query}"
"""

Received = list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A Slack-compatible webhook on every path, keeping what each request carried."""
    received: Received = []
    app = FastAPI()

    @app.post("/{path:path}")
    async def hook(path: str, request: Request) -> dict[str, str]:
        received.append({"path": path, "query": request.url.query,
                         "authorization": request.headers.get("authorization"),
                         "body": await request.json()})
        return {"ok": "true"}

    with serving(app) as base:
        yield base, received


@pytest.fixture
def settings(db_url: str, playbook_dir: Path, receiver: tuple[str, Received]) -> Settings:
    base, _ = receiver
    return Settings(
        database_url=db_url,
        playbook_dir=playbook_dir,
        worker_poll_seconds=0.5,
        lease_seconds=30.0,
        notify_webhook_url=SecretStr(f"{base}/services/{DEFAULT_HOOK_SECRET}"),
        approval_notify=[f"{base}/notices/{NOTICE_HOOK_SECRET}"],
    )


@pytest.fixture(autouse=True)
def _playbook(
    write_playbook: Callable[[str, str], Path], receiver: tuple[str, Received]
) -> None:
    base, _ = receiver
    write_playbook("tell-everyone.yml", PLAYBOOK.format(
        base=base, host=base.removeprefix("http://"), step_notice=STEP_NOTICE_SECRET,
        step_query=STEP_NOTICE_QUERY, user=HOOK_USER, password=HOOK_PASSWORD,
        inline_query=INLINE_QUERY,
    ))


@contextmanager
def riposte_log(level: str, *, libraries_at: int | None = None) -> Iterator[io.StringIO]:
    """Configure logging as `riposte serve` does, into a buffer; put the root logger back after.

    ``libraries_at``: then lower the HTTP and AWS libraries to this level, as an operator (or a
    library) might, so that only redaction stands between their lines and the log.
    """
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in QUIET_LIBRARIES}
    output = io.StringIO()
    configure(level)
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(output)
    if libraries_at is not None:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(libraries_at)
    try:
        yield output
    finally:
        root.handlers[:], _, levels = saved
        root.setLevel(saved[1])
        for name, library_level in levels.items():
            logging.getLogger(name).setLevel(library_level)


def approve(client: TestClient, request_id: str, headers: dict[str, str]) -> None:
    plan_hash = client.get(f"/v1/approvals/{request_id}", headers=headers).json()["plan_hash"]
    decided = client.post(f"/v1/approvals/{request_id}/decision",
                          json={"decision": "approve", "reason": "ok", "plan_hash": plan_hash},
                          headers=headers)
    assert decided.status_code == 200, decided.text


def pending(client: TestClient, run_id: str, headers: dict[str, str], step: str) -> str:
    run = client.get(f"/v1/runs/{run_id}", headers=headers).json()
    [request] = [a for a in run["approvals"] if a["step_id"] == step and a["status"] == "pending"]
    return str(request["id"])


@pytest.mark.parametrize(
    "libraries_at", [None, logging.DEBUG], ids=["as-configured", "libraries-at-debug"]
)
def test_no_webhook_secret_nor_token_reaches_the_log_at_debug(
    make_client: MakeClient, settings: Settings, tokens: Tokens, post_alert: PostAlert,
    wait_for_run: WaitForRun, receiver: tuple[str, Received], libraries_at: int | None,
) -> None:
    base, received = receiver
    with riposte_log("DEBUG", libraries_at=libraries_at) as output:
        with make_client(settings, workers=1) as client:
            alert = post_alert(client, tokens.as_ingest, kind="iam",
                               principal={"type": "IAMUser", "name": "mallory"})
            [run_id] = alert["run_ids"]
            wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
            approve(client, pending(client, run_id, tokens.as_responder, "first-look"),
                    tokens.as_responder)
            wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")
            approve(client, pending(client, run_id, tokens.as_other_responder, "second-look"),
                    tokens.as_other_responder)
            run = wait_for_run(client, run_id, tokens.as_responder, "succeeded", "failed")
    assert run["status"] == "succeeded", run

    # Every secret was used: each webhook got its message, the inline one with its credentials.
    assert [(r["path"], r["query"]) for r in received] == [
        (f"notices/{NOTICE_HOOK_SECRET}", ""),
        (f"notices/{STEP_NOTICE_SECRET}", f"token={STEP_NOTICE_QUERY}"),
        (f"services/{DEFAULT_HOOK_SECRET}", ""),
        ("inline/hook", f"token={INLINE_QUERY}"),
    ]
    basic = base64.b64encode(f"{HOOK_USER}:{HOOK_PASSWORD}".encode()).decode()
    assert received[-1]["authorization"] == f"Basic {basic}"

    log = output.getvalue()
    secrets = {
        "default webhook path": DEFAULT_HOOK_SECRET.rsplit("/", 1)[-1],
        "notice webhook path": NOTICE_HOOK_SECRET,
        "step notice path": STEP_NOTICE_SECRET,
        "step notice ?token=": STEP_NOTICE_QUERY,
        "user:password": f"{HOOK_USER}:{HOOK_PASSWORD}",
        "password": HOOK_PASSWORD,
        "basic credentials": basic,
        "inline ?token=": INLINE_QUERY,
        **{f"bearer token {name}": getattr(tokens, name)
           for name in ("ingest", "responder", "other_responder", "admin")},
    }
    leaked = {what: secret for what, secret in secrets.items() if secret in log}
    assert not leaked, f"secrets in the log: {sorted(leaked)}"

    # The log is not empty for want of lines: Riposte's own say what happened.
    lines = [json.loads(line) for line in log.splitlines()]
    loggers = {line["logger"] for line in lines}
    assert any("posted a message to the webhook on 127.0.0.1" in line["message"] for line in lines)
    if libraries_at is not None:  # their lines are there, saying where, with the secrets redacted
        posts = [line["message"] for line in lines if line["logger"] == "httpx"
                 and "http://testserver/" not in line["message"]]
        assert len(posts) == len(received), posts
        assert f"POST {base}/[redacted] " in posts[0]
        assert posts[-1].startswith(
            f"HTTP Request: POST http://[redacted]@{base.removeprefix('http://')}/[redacted]?"
            "[redacted] ")
        assert {"httpcore.connection", "httpcore.http11"} <= loggers
    else:
        assert not {"httpx", "httpcore.connection", "httpcore.http11"} & loggers


"""``riposte demo``: a local Riposte, a sample alert, and the run waiting for a human's approval.

Everything goes through the real paths: migrations, tokens, the HTTP API (over a socket, with
httpx) and an in-process worker. Only the database file is the demo's own.
"""

from __future__ import annotations

import json
import secrets
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from engine.conductor import TERMINAL, WAITING_APPROVAL
from engine.playbooks import load_all
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker
from engine.store.tokens import create_token
from riposte.logs import configure
from riposte.settings import Settings

DEMO_DATABASE = Path("demo") / "riposte-demo.db"
DEMO_PLAYBOOK = "example-triage"
SHIPPED_PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
WAIT_SECONDS = 60.0
# The seed scenario: one IAM user terminating a fleet of instances from an unexpected address.
SAMPLE_ALERT: dict[str, Any] = {
    "title": "20 EC2 instances terminated by Roboman1 in 5 minutes",
    "severity": "HIGH",
    "source": "cloudtrail",
    "kind": "api-call",
    "type": "TerminateInstances",
    "account": "0123456789",
    "region": "us-east-2",
    "principal": {
        "type": "IAMUser",
        "name": "Roboman1",
        "arn": "arn:aws:iam::0123456789:user/Development/Roboman1",
    },
    "resources": [
        {"type": "AwsEc2Instance", "id": "i-2oc7w12"},
        {"type": "AwsEc2Instance", "id": "i-eob7w13"},
    ],
    "details": {"sourceIPAddress": "180.163.251.231", "eventTime": "2020-11-06T03:21:39Z"},
}

Say = Callable[[str], None]


class DemoFailed(Exception):
    """The demo could not get as far as it should; the message says where it stopped."""


@dataclass(frozen=True)
class DemoTokens:
    """The demo's callers: a sender of alerts, an analyst who reads, an approver who decides."""

    ingest: str
    analyst: str
    approver: str


def run_demo(
    *, settings: Settings, port: int, keep_serving: bool, say: Say | None = None
) -> int:
    """Run the demo; return the process exit status."""
    say = say or _print
    settings = demo_settings(settings)
    configure("WARNING")  # the demo's own output is the story; only problems are logged
    _check_playbook(settings)
    say(f"database: {_shown(settings.database_url)} (migrating)")
    migrate.upgrade(settings.database_url)
    tokens = create_demo_tokens(settings)
    server = DemoServer(settings, port)
    if port and server.port != port:
        say(f"port {port} is busy; using {server.port}")
    try:
        server.start()
        return _story(server.url, tokens, keep_serving, say)
    finally:
        server.stop()


def demo_settings(settings: Settings) -> Settings:
    """Use the demo's own fresh SQLite file unless RIPOSTE_DATABASE_URL names a database."""
    update: dict[str, Any] = {}
    if "database_url" not in settings.model_fields_set:
        DEMO_DATABASE.parent.mkdir(parents=True, exist_ok=True)
        # Only the demo's own file (and its WAL companions) is removed, never a user's database.
        for leftover in (DEMO_DATABASE, *(Path(f"{DEMO_DATABASE}{s}") for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        update["database_url"] = f"sqlite:///{DEMO_DATABASE}"
    if not settings.playbook_dir.is_dir() and SHIPPED_PLAYBOOKS.is_dir():
        update["playbook_dir"] = SHIPPED_PLAYBOOKS
    return settings.model_copy(update=update)


def create_demo_tokens(settings: Settings) -> DemoTokens:
    """Create the demo's three tokens (names made unique, so a reused database is fine)."""
    suffix = secrets.token_hex(3)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            made = {
                role_name: create_token(
                    session=session, name=f"demo-{role_name}-{suffix}", role=role, actor="demo"
                )
                for role_name, role in (
                    ("ingest", "ingest"), ("analyst", "responder"), ("approver", "responder")
                )
            }
    finally:
        engine.dispose()
    return DemoTokens(**made)


class DemoServer:
    """The API with one in-process worker, served from a thread on 127.0.0.1."""

    def __init__(self, settings: Settings, port: int) -> None:
        from api.app import create_app

        self._socket = _listening_socket(port)
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, in_process_workers=1),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="riposte-demo-api",
        )

    def start(self) -> None:
        """Start serving and wait until /readyz answers."""
        self._thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise DemoFailed("the API server stopped while starting (see the log above)")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        raise DemoFailed(f"the API at {self.url} was not ready after {WAIT_SECONDS:g}s")

    def stop(self) -> None:
        """Stop serving (the in-process worker stops with the app's lifespan)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(15)
        self._socket.close()


def _story(url: str, tokens: DemoTokens, keep_serving: bool, say: Say) -> int:
    with httpx.Client(base_url=url, timeout=10) as http:
        say(f"API: {url} (OpenAPI at {url}/docs)")
        say("")
        say(f"POST /v1/alerts: {SAMPLE_ALERT['title']}")
        posted = _call(http, "POST", "/v1/alerts", tokens.ingest, json=SAMPLE_ALERT)
        if not posted["run_ids"]:
            raise DemoFailed(f"the alert {posted['alert_id']} started no run: "
                             f"is playbook {DEMO_PLAYBOOK!r} loaded?")
        run_id = posted["run_ids"][0]
        say(f"alert {posted['alert_id']} stored; it started run {run_id}")
        run = _wait_for(http, run_id, tokens.analyst, {WAITING_APPROVAL, *TERMINAL})
        say("")
        _show_run(run, say)
        if run["status"] != WAITING_APPROVAL:
            raise DemoFailed(f"run {run_id} ended {run['status']} instead of waiting for approval")
        pending = next(a for a in run["approvals"] if a["status"] == "pending")
        request = _call(http, "GET", f"/v1/approvals/{pending['id']}", tokens.analyst)
        say("")
        _show_approval(request, say)
        say("")
        say("Approve it (as the demo's approver, a responder who did not start the run):")
        say(_curl(url, request, tokens.approver, "approve", "contain the principal"))
        say("")
        say("or reject it:")
        say(_curl(url, request, tokens.approver, "reject", "false positive"))
        say("")
        say("then read the run:")
        say(f"curl -sS -H {shlex.quote('Authorization: Bearer ' + tokens.analyst)} "
            f"{url}/v1/runs/{run_id}")
        if keep_serving:
            return _serve_until_interrupted(http, run_id, tokens, say)
        say("")
        say("--no-keep-serving: approving it now")
        _call(http, "POST", f"/v1/approvals/{request['id']}/decision", tokens.approver,
              json={"decision": "approve", "reason": "demo: contain the principal",
                    "plan_hash": request["plan_hash"]})
        final = _wait_for(http, run_id, tokens.analyst, set(TERMINAL))
        say("")
        _show_run(final, say)
        return 0 if final["status"] == "succeeded" else 1


def _serve_until_interrupted(
    http: httpx.Client, run_id: str, tokens: DemoTokens, say: Say
) -> int:
    say("")
    say("Serving until Ctrl-C.")
    reported = False
    try:
        while True:
            time.sleep(0.5)
            if reported:
                continue
            run = _call(http, "GET", f"/v1/runs/{run_id}", tokens.analyst)
            if run["status"] in TERMINAL:
                say("")
                _show_run(run, say)
                reported = True
    except KeyboardInterrupt:
        say("stopping")
    return 0


def _wait_for(http: httpx.Client, run_id: str, token: str, statuses: set[str]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        run = _call(http, "GET", f"/v1/runs/{run_id}", token)
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise DemoFailed(f"run {run_id} is still {run['status']} after {WAIT_SECONDS:g}s")
        time.sleep(0.1)


def _call(http: httpx.Client, method: str, path: str, token: str, **kwargs: Any) -> Any:
    response = http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    if response.status_code >= 300:
        raise DemoFailed(f"{method} {path} answered {response.status_code}: {response.text}")
    return response.json()


def _show_run(run: dict[str, Any], say: Say) -> None:
    say(f"run {run['id']}: playbook {run['playbook']}, {run['mode']}, "
        f"started by {run['started_by']}, status {run['status']}")
    for step in run["steps"]:
        shown = step["error"] if step["error"] else step["output"]
        say(f"  {step['step_id']:<20} {step['status']:<10} {_compact(shown)}")
    for approval in run["approvals"]:
        if approval["status"] == "pending":
            say(f"  {approval['step_id']:<20} {'waiting':<10} approval request {approval['id']}")
    if run.get("error"):
        say(f"  error: {run['error']}")


def _show_approval(request: dict[str, Any], say: Say) -> None:
    approvers = ", ".join(request["approvers"]) or "any responder or admin"
    say(f"pending approval {request['id']} of step {request['step_id']} "
        f"({request['required']} of {approvers}; expires {request['expires_at']})")
    say(f"plan_hash: {request['plan_hash']}")
    say("plan:")
    for line in json.dumps(request["plan"], indent=2).splitlines():
        say(f"  {line}")


def _curl(url: str, request: dict[str, Any], token: str, decision: str, reason: str) -> str:
    body = json.dumps({"decision": decision, "reason": reason, "plan_hash": request["plan_hash"]})
    return " \\\n  ".join(
        [
            f"curl -sS -X POST {url}/v1/approvals/{request['id']}/decision",
            f"-H {shlex.quote('Authorization: Bearer ' + token)}",
            "-H 'Content-Type: application/json'",
            f"-d {shlex.quote(body)}",
        ]
    )


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.bind(("127.0.0.1", 0))  # busy: any free port will do for a demo
    return sock


def _check_playbook(settings: Settings) -> None:
    loaded, problems = load_all([settings.playbook_dir])
    if DEMO_PLAYBOOK not in loaded:
        details = "".join(f"; {p}" for p in problems[:3])
        raise DemoFailed(
            f"playbook {DEMO_PLAYBOOK!r} is not in {settings.playbook_dir} "
            f"(set RIPOSTE_PLAYBOOK_DIR to the repository's playbooks/){details}"
        )


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def _print(line: str) -> None:
    print(line, flush=True)

"""``riposte demo``: the seed's mass-termination case, from the attack to the relaunched fleet.

Everything goes through the real paths: migrations, tokens, the HTTP API (over a socket, with
httpx), an in-process worker, and AWS calls — to a local AWS, moto in server mode, started as a
child process and seeded with a realistic account (``riposte/demo_scenario.py``, which the
end-to-end tests play too). Only the database file and the emulator are the demo's own; nothing
reaches the real AWS.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from core.logs import configure
from core.settings import Settings, env_file_lines
from engine.conductor import TERMINAL, WAITING_APPROVAL
from engine.playbooks import load_all
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker
from engine.store.tokens import create_token
from riposte.demo_aws import LocalAws, LocalAwsFailed
from riposte.demo_scenario import ACCOUNT, REGION, ScenarioFailed, play, seed_account
from riposte.demo_scenario import SETTINGS as SCENARIO_SETTINGS
from riposte.demo_story import Story, StoryFailed

DEMO_DATABASE = Path("demo") / "riposte-demo.db"
DEMO_PLAYBOOK = "mass-instance-termination"
SHIPPED_PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
WAIT_SECONDS = 120.0
ATTACK_PAUSE_SECONDS = 0.3  # between the attack's events, so the story reads as it happens
ONCALL_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:security-oncall"

Say = Callable[[str], None]


class DemoFailed(Exception):
    """The demo could not get as far as it should; the message says where it stopped."""


@dataclass(frozen=True)
class DemoTokens:
    """The demo's callers: a sender of alerts, an analyst who reads, an approver who decides."""

    ingest: str
    analyst: str
    approver: str
    approver_name: str


def run_demo(
    *,
    settings: Settings,
    port: int,
    keep_serving: bool,
    auto_approve: bool = False,
    routine: bool = False,
    say: Say | None = None,
) -> int:
    """Run the demo; return the process exit status."""
    say = say or _print
    settings = demo_settings(settings)
    configure("WARNING")  # the demo's own output is the story; only problems are logged
    _check_playbook(settings)
    say(f"database: {_shown(settings.database_url)} (migrating)")
    migrate.upgrade(settings.database_url)
    local = LocalAws(REGION)
    try:
        aws_url = local.start()
    except LocalAwsFailed as exc:
        raise DemoFailed(f"the local AWS did not start: {exc}") from exc
    server: DemoServer | None = None
    try:
        say(f"local AWS: moto at {aws_url} (account {ACCOUNT}, {REGION}); "
            "nothing reaches the real AWS")
        overrides = demo_overrides(aws_url)
        say("settings the demo sets (as env-file lines; the rest come from the environment):")
        for line in env_file_lines(overrides):
            say(f"  {line}")
        settings = with_local_aws(settings, overrides)
        tokens = create_demo_tokens(settings)
        server = DemoServer(settings, port)
        if port and server.port != port:
            say(f"port {port} is busy; using {server.port}")
        server.start()
        say(f"API: {server.url} (OpenAPI at {server.url}/docs), one in-process worker")
        say(console_line(server.url, tokens))
        return _story(server.url, aws_url, tokens, keep_serving=keep_serving,
                      auto_approve=auto_approve, routine=routine, say=say)
    except (ScenarioFailed, StoryFailed) as exc:
        raise DemoFailed(str(exc)) from exc
    finally:
        if server is not None:
            server.stop()
        local.stop()


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


def demo_overrides(aws_url: str) -> dict[str, Any]:
    """Return the settings the demo sets: the local AWS, and the account as the scenario made it.

    The demo prints them as env-file lines (the README shows them too), so what it shows is
    what it runs with.
    """
    return {
        "aws_endpoint_url": aws_url,
        "aws_region": REGION,
        "responder_role": None,
        **SCENARIO_SETTINGS,
        "approval_notify": [ONCALL_TOPIC],
        "ec2_poll_seconds": 0.5,
    }


def with_local_aws(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Apply the demo's settings over the environment's (:func:`demo_overrides`).

    Whatever the environment says about AWS is overridden: the demo never acts on real AWS.
    """
    return Settings.model_validate({**settings.model_dump(), **overrides})


def create_demo_tokens(settings: Settings) -> DemoTokens:
    """Create the demo's three tokens (names made unique, so a reused database is fine)."""
    suffix = secrets.token_hex(3)
    names = {role_name: f"demo-{role_name}-{suffix}" for role_name in
             ("ingest", "analyst", "approver")}
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            made = {
                role_name: create_token(
                    session=session, name=names[role_name], role=role, actor="demo"
                )
                for role_name, role in (
                    ("ingest", "ingest"), ("analyst", "responder"), ("approver", "responder")
                )
            }
    finally:
        engine.dispose()
    return DemoTokens(**made, approver_name=names["approver"])


def console_line(url: str, tokens: DemoTokens) -> str:
    """Where the console is and how the demo's approver signs in to it.

    The token is to be pasted into the sign-in form, as anyone signs in with a token: never a
    link carrying it (a secret in a URL stays in browser history and proxy logs), and no
    sign-in path that exists for the demo alone. The terminal already shows the token for the
    CLI, so the console adds no new place for it.
    """
    return (f"console: {url}/ui/ (sign in at {url}/ui/sign-in with the demo approver's "
            f"token: {tokens.approver})")


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


def _story(
    url: str,
    aws_url: str,
    tokens: DemoTokens,
    *,
    keep_serving: bool,
    auto_approve: bool,
    routine: bool,
    say: Say,
) -> int:
    with httpx.Client(base_url=url, timeout=30) as http:
        story = Story(http, url, tokens.analyst, say)
        story.heading("The account")
        account = seed_account(aws_url, routine=routine)
        account.client("sns").create_topic(Name=ONCALL_TOPIC.rsplit(":", 1)[1])
        story.account(account)
        story.heading("The planned decommission" if routine else "The attack")
        played = play(account, http, tokens.ingest, say=story.line, pause=ATTACK_PAUSE_SECONDS)
        if not played.run_ids:
            raise DemoFailed(f"the terminations started no run: is playbook {DEMO_PLAYBOOK!r} "
                             "loaded?")
        run_id = played.run_ids[0]
        queued = story.call("GET", f"/v1/runs/{run_id}")
        if queued["status"] == "queued" and queued["not_before"]:
            story.line(f"run {run_id} waits for the burst to go quiet before it judges it (the "
                       f"playbook's settle): it starts at {queued['not_before'][11:19]} unless "
                       "more calls arrive")
        run = story.wait(run_id, {WAITING_APPROVAL, *TERMINAL}, WAIT_SECONDS)
        story.alert(run)
        story.investigation(run)
        if run["status"] == WAITING_APPROVAL:
            request = story.approval(run, approver_token=tokens.approver)
            story.line(f"(RIPOSTE_APPROVAL_NOTIFY also sends the request to {ONCALL_TOPIC})")
            if auto_approve:
                story.heading("Decision")
                story.line(f"--auto-approve: approving as {tokens.approver_name}")
                decided = story.call(
                    "POST", f"/v1/approvals/{request['id']}/decision", tokens.approver,
                    json={"decision": "approve", "plan_hash": request["plan_hash"],
                          "reason": "demo: contain the principal and recover"},
                )
                story.line(f"approval request {decided['id']} is now {decided['status']}; "
                           "the run resumes")
            else:
                story.line("")
                story.line("Waiting for a decision (Ctrl-C stops the demo).")
            try:
                run = story.wait(run_id, set(TERMINAL), WAIT_SECONDS if auto_approve else None)
            except KeyboardInterrupt:
                say("stopping")
                return 0
        story.outcome(run, account)
        verified = story.audit(run_id)
        if keep_serving:
            return _serve_until_interrupted(url, tokens, say)
        return 0 if verified and run["status"] == "succeeded" else 1


def _serve_until_interrupted(url: str, tokens: DemoTokens, say: Say) -> int:
    try:  # from the first line on: Ctrl-C may come as soon as it is printed
        say("")
        say(f"Serving on {url} until Ctrl-C (RIPOSTE_TOKEN={tokens.analyst} reads as the "
            f"analyst; the console is at {url}/ui/).")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
    return 0


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


def _print(line: str) -> None:
    print(line, flush=True)

"""A local AWS for tests: moto in server mode, a real HTTP endpoint, reset between tests.

``moto_endpoint`` (session) starts ``moto.server`` in its own process with the AWS managed
policies loaded (``MOTO_IAM_LOAD_MANAGED_POLICIES=true``). ``aws`` (per test) resets it and
points Riposte's settings and the process's credentials at it, and gives an :class:`AwsSandbox`:

- ``aws.client("iam")``: a plain boto3 client to seed state and check it afterwards, never
  through Riposte's factory, so what a test asserts does not depend on the code under test;
- ``aws.act(name, params, mode=...)``: run one registered action as a step would (input model,
  then ``plan`` in dry-run or ``run`` live), keeping every call its clients made;
- at teardown, every operation an action really sent must be among its declared
  ``permissions``: an action that calls something it does not declare fails its tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from actions import registry
from actions.aws.clients import AwsCall, iam_action, new_session
from actions.base import Action, ActionContext, PlannedCall, RunEnv
from core.settings import Settings
from tests.live_server import free_port

OWN_ACCOUNT = "123456789012"  # moto's default account: the one Riposte's credentials are in
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start one moto server for the whole session and yield its URL."""
    port = free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "moto server exited"
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def reset_moto(url: str) -> None:
    """Empty the emulator. A reset waits for the requests moto is still serving (a live server's
    worker from the previous test may be mid-step), and the CI machine's two cores are shared by
    three test processes: the generous timeout is not a performance limit, only a hang guard."""
    httpx.post(f"{url}/moto-api/reset", timeout=120).raise_for_status()


@dataclass
class Acted:
    """One action carried out by ``AwsSandbox.act``: its output and the calls it made."""

    action: Action[Any]
    ctx: ActionContext
    output: Any

    @property
    def sent(self) -> list[AwsCall]:
        return self.ctx.aws.calls.sent

    @property
    def mutations(self) -> list[AwsCall]:
        """The calls that reached AWS and change something."""
        return [call for call in self.sent if call.mutating]


@dataclass
class AwsSandbox:
    url: str
    settings: Settings
    acted: list[Acted] = field(default_factory=list)

    def client(self, service: str, *, account: str | None = None, region: str = REGION) -> Any:
        """A plain boto3 client on the emulator, in ``account`` (default: the own account)."""
        keys: dict[str, str] = {}
        if account is not None and account != OWN_ACCOUNT:
            sts = new_session().client("sts", region_name=region, endpoint_url=self.url)
            credentials = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/test-admin", RoleSessionName="test"
            )["Credentials"]
            keys = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        return new_session(**keys).client(service, region_name=region, endpoint_url=self.url)

    def env(
        self, *, mode: str = "live", alert: dict[str, Any] | None = None, run_id: str = "run-1"
    ) -> RunEnv:
        """A run environment as a worker builds it, on the sandbox's settings."""
        return RunEnv(run_id=run_id, mode=mode, settings=self.settings, alert=alert or {})

    def act(
        self,
        name: str,
        params: dict[str, Any],
        *,
        mode: str = "live",
        env: RunEnv | None = None,
        step_id: str = "step",
        undo: dict[str, Any] | None = None,
    ) -> Acted:
        """Run action ``name`` as a step would: plan in dry-run, run live.

        With ``undo``: carry out the undo of that undo data, or in dry-run plan it.
        """
        env = env or self.env(mode=mode)
        action = registry.get(name)()
        ctx = ActionContext(run_id=env.run_id, step_id=step_id, mode=env.mode, env=env)
        if undo is not None:
            output = action.plan_undo(ctx, undo) if ctx.dry_run else action.undo(ctx, undo)
        else:
            validated = action.Input.model_validate(params)
            if ctx.dry_run and action.mutating:
                output = action.plan(ctx, validated)
            else:
                output = action.run(ctx, validated)
        acted = Acted(action=action, ctx=ctx, output=output)
        self.acted.append(acted)
        return acted

    def undeclared_operations(self) -> dict[str, set[str]]:
        """Operations each action sent that its ``permissions`` do not declare."""
        missing: dict[str, set[str]] = {}
        for acted in self.acted:
            declared = set(acted.action.permissions)
            # What the action asked for, not only what was sent: botocore's Stubber answers
            # before a request is built, and a dry run refuses what the live run would send.
            for call in acted.ctx.aws.calls.asked:
                needed = iam_action(call.service, call.operation)
                if call.service == "sts" or needed in declared:
                    continue  # sts calls need no permission of the responder policy
                missing.setdefault(acted.action.name, set()).add(needed)
        return missing


def calls_of(plan: list[PlannedCall]) -> list[tuple[str, dict[str, Any]]]:
    """A plan as (operation, params) pairs."""
    return [(call.operation, call.params) for call in plan]


def mutations_of(acted: Acted) -> list[tuple[str, dict[str, Any]]]:
    """The changing calls an action really sent, as (operation, params) pairs."""
    return [(call.operation, call.params) for call in acted.mutations]


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsSandbox]:
    """A freshly reset emulator, with Riposte's settings and credentials pointed at it."""
    reset_moto(moto_endpoint)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "RIPOSTE_AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings(
        aws_endpoint_url=moto_endpoint,
        aws_region=REGION,
        aws_retry_seconds=2.0,
        responder_role="riposte-responder",
    )
    sandbox = AwsSandbox(url=moto_endpoint, settings=settings)
    yield sandbox
    missing = sandbox.undeclared_operations()
    assert not missing, f"operations sent but not in the action's permissions: {missing}"

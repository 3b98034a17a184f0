"""The demo's AWS: moto in server mode as a child process, with fake credentials pointed at it.

Nothing reaches the real AWS: every client the demo and Riposte make is sent to the local
endpoint (``RIPOSTE_AWS_ENDPOINT_URL``), and the credentials are moto's fakes. moto loads the
AWS managed policies (``AWSDenyAll`` among them) so that disabling a user works as in AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping

import httpx

START_SECONDS = 30.0
MOTO_SETTINGS = {
    # AWSDenyAll and the other AWS managed policies exist, as in AWS.
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    # None of moto's ~1300 public images and their snapshots: the account's own are what the
    # backup lookups search, and moto filters snapshots by tag one by one.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
# moto's default account; a local emulator needs credentials, never real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that would send boto3 to a real profile or its configuration instead.
REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


class LocalAwsFailed(Exception):
    """The local AWS endpoint could not be started."""


class LocalAws:
    """A moto server on 127.0.0.1, started as a child process and stopped with it."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._saved: dict[str, str | None] = {}

    def start(self, *, point_boto3: bool = True) -> str:
        """Start moto and wait until it answers; by default point this process's boto3 at it."""
        env = {**os.environ, **MOTO_SETTINGS}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self._process.poll() is not None:
                raise LocalAwsFailed(
                    f"moto server exited with status {self._process.returncode} "
                    "(is the `moto[server]` package installed?)"
                )
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise LocalAwsFailed(f"moto server did not answer at {self.url} "
                                         f"within {START_SECONDS:g}s") from None
                time.sleep(0.1)
        if point_boto3:
            self._point_boto3_here()
        return self.url

    def stop(self) -> None:
        """Stop moto and give the environment back as it was."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None
        _restore(self._saved)
        self._saved = {}

    def _point_boto3_here(self) -> None:
        wanted: dict[str, str | None] = {
            **FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            **dict.fromkeys(REAL_AWS_VARIABLES),
        }
        self._saved = {name: os.environ.get(name) for name in wanted}
        _restore(wanted)


def _restore(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

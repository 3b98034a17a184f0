"""Benchmark the webhooks of `riposte serve` on PostgreSQL against a one-INSERT FastAPI app.

Usage: python bench/ingest.py [--url postgresql+psycopg://root@127.0.0.1:5432/postgres]
                              [--seconds 20] [--connections 32] [--quick]

It creates two scratch databases next to the one named in --url (one migrated with
`riposte db upgrade` for Riposte, one holding a single table for the ceiling) and drops them
whatever happens. Both servers get the same requests from a separate load-generator process:
SNS notifications signed with a throwaway certificate (pinned in RIPOSTE_SNS_CERT_DIR) and
EventBridge events (Security Hub, GuardDuty) sent with an ingest token, each a new alert, and 5%
exact redeliveries of an earlier request. The exit status is 0 whatever the figures; it is 1
only when the benchmark could not run (a server that did not start, a client that died).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/ingest.py` puts bench/ first on sys.path, where bench/engine.py would shadow the
# `engine` package: put the repository root there instead.
_BENCH_DIR = Path(__file__).resolve().parent
_REPO_DIR = _BENCH_DIR.parent
sys.path[:] = [str(_REPO_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Annotated  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from fastapi import Depends, FastAPI, Request  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.engine import (  # noqa: E402
    Report,
    cpu_ticks,
    libpq,
    percentile,
    print_total,
    progress,
    verdict,
)
from engine import audit  # noqa: E402
from engine.store.db import make_engine, make_sessionmaker  # noqa: E402
from tests import sns_keys  # noqa: E402
from tests.samples import load as load_sample  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"

# Targets from the issue, on a 2-core machine.
TARGET_RATIO = 0.60
TARGET_P99_MS = 100.0

REDELIVERY_EVERY = 20  # one request in 20 repeats an earlier one byte for byte (5%)
CEILING_POOL = 4096  # the ceiling cycles through this many requests: a plain INSERT dedups nothing
POOL_MARGIN = 1.25  # Riposte's pool: this times what the ceiling answered in the same time
CHUNK = 500  # requests built per task of the process pool
SNS_TOPIC = sns_keys.TOPIC_ARN
SNS_TOPICS_ALLOWED = '["arn:aws:sns:us-east-1:123456789012:riposte-*"]'
SUBSCRIPTION_ARN = f"{SNS_TOPIC}:c9135db0-26c4-47ec-8998-413945fb5a96"
API_KEY_HEADER = "x-riposte-api-key"


class BenchFailure(Exception):
    """The benchmark could not measure: a server did not start, the load generator died."""


# ---------------------------------------------------------------------------------------------
# Scratch databases


@contextmanager
def scratch_databases(server_url: str, *names: str) -> Iterator[list[str]]:
    """Create empty databases ``names`` on the server of ``server_url``; always drop them."""
    base = make_url(server_url)
    admin = libpq(server_url)

    def drop_all() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop_all()
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
        yield [base.set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        drop_all()


# ---------------------------------------------------------------------------------------------
# Requests: built before the clock starts, as raw HTTP/1.1 bytes


@dataclass(frozen=True)
class Credentials:
    """What the senders authenticate with: the SNS signing key, basic auth, an ingest token."""

    signing_key_pem: bytes
    certificate_pem: bytes
    sns_basic_auth: str  # user:password, as in the subscription URL
    ingest_token: str


def build_requests(start: int, count: int, credentials: Credentials) -> list[bytes]:
    """Build requests ``start`` .. ``start + count - 1``: each a new alert with its own key.

    Half are SNS CloudWatch alarm notifications; a quarter each EventBridge Security Hub and
    GuardDuty findings.
    """
    key = serialization.load_pem_private_key(credentials.signing_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    identity = sns_keys.SigningIdentity(key, credentials.certificate_pem)
    alarm = load_sample("sns_cloudwatch_alarm_redshift")["Message"]
    envelope = load_sample("securityhub_event_imported_envelope")
    finding = load_sample("securityhub_finding_afsbp_iam_8")
    guardduty = load_sample("guardduty_ec2_ssh_brute_force")
    requests: list[bytes] = []
    for n in range(start, start + count):
        uid = f"00000000-0000-4000-8000-{n:012d}"
        kind = n % 4
        if kind in (0, 2):
            requests.append(_sns_request(n, uid, alarm, identity, credentials))
            continue
        if kind == 1:
            event = copy.deepcopy(envelope)
            item = copy.deepcopy(finding)
            item["Id"] = f"{finding['Id']}-{n}"
            event["detail"]["findings"] = [item]
        else:
            event = copy.deepcopy(guardduty)
            event["detail"]["Id"] = f"{n:032x}"
            event["detail"]["Arn"] = event["detail"]["Arn"].rsplit("/", 1)[0] + f"/{n:032x}"
        event["id"] = uid
        body = json.dumps(event).encode()
        requests.append(_http_request(
            "/v1/webhooks/eventbridge", body,
            [("Content-Type", "application/json; charset=utf-8"),
             ("User-Agent", "Amazon/EventBridge/ApiDestinations"),
             (API_KEY_HEADER, credentials.ingest_token)],
        ))
    return requests


def _sns_request(
    n: int, uid: str, alarm: str, identity: sns_keys.SigningIdentity, credentials: Credentials
) -> bytes:
    fields = sns_keys.notification(
        MessageId=uid,
        Subject='ALARM: "martin-test" in US - N. Virginia',
        Message=alarm,
        Timestamp=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    fields.pop("MessageAttributes")
    message = sns_keys.sign(fields, identity)
    basic = base64.b64encode(credentials.sns_basic_auth.encode()).decode()
    return _http_request(
        "/v1/webhooks/sns", json.dumps(message).encode(),
        [("Content-Type", "text/plain; charset=UTF-8"),
         ("User-Agent", "Amazon Simple Notification Service Agent"),
         ("x-amz-sns-message-type", "Notification"),
         ("x-amz-sns-message-id", uid),
         ("x-amz-sns-topic-arn", SNS_TOPIC),
         ("x-amz-sns-subscription-arn", SUBSCRIPTION_ARN),
         ("Authorization", f"Basic {basic}")],
    )


def _http_request(path: str, body: bytes, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in headers),
             f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request_pool(count: int, credentials: Credentials, seed: int = 3) -> list[bytes]:
    """Build ``count`` requests on every CPU, then make one in 20 a redelivery of an earlier one.

    A redelivery repeats, byte for byte, a request 32 to 480 places before it: sent by then, and
    most likely answered, as when SNS or EventBridge retry after a lost answer.
    """
    starts = range(0, count, CHUNK)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as executor:
        chunks = executor.map(build_requests, starts,
                              [min(CHUNK, count - s) for s in starts],
                              [credentials] * len(starts))
        pool = [request for chunk in chunks for request in chunk]
    rng = random.Random(seed)
    for n in range(REDELIVERY_EVERY - 1, count, REDELIVERY_EVERY):
        if n >= 512:
            pool[n] = pool[n - rng.randint(32, 480)]
    return pool


# ---------------------------------------------------------------------------------------------
# The ceiling: a minimal FastAPI app on the same stack, one INSERT per request


CEILING_TABLE = """CREATE TABLE bench_ceiling (
    id bigserial PRIMARY KEY,
    endpoint text NOT NULL,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)"""


_CEILING_INSERT = text("INSERT INTO bench_ceiling (endpoint, body) VALUES (:endpoint, :body) "
                       "RETURNING id")


# The same shapes as api.deps: a session per request from a sync generator dependency, the raw
# body from an async one, a sync route that commits before it answers.
def ceiling_session(request: Request) -> Iterator[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


async def ceiling_body(request: Request) -> bytes:
    return await request.body()


def ceiling_app(url: str) -> FastAPI:
    """Return an app that stores each body it is posted with one INSERT and answers its id."""
    app = FastAPI(title="ingest ceiling")
    app.state.sessions = make_sessionmaker(make_engine(url))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/webhooks/{endpoint}", status_code=202)
    def store(
        endpoint: str,
        body: Annotated[bytes, Depends(ceiling_body)],
        session: Annotated[Session, Depends(ceiling_session)],
    ) -> dict[str, int]:
        with session.begin():
            row_id = session.execute(_CEILING_INSERT, {"endpoint": endpoint,
                                                       "body": body.decode()}).scalar_one()
        return {"id": row_id}

    return app


def serve_ceiling(url: str, port: int) -> None:
    """Child process: serve the ceiling app as `riposte serve` serves Riposte's."""
    import uvicorn

    # What riposte.cli.serve passes; everything else at uvicorn's defaults there and here.
    uvicorn.run(ceiling_app(url), host=HOST, port=port, log_config=None)


# ---------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def riposte_command() -> list[str]:
    """`riposte` from the interpreter's own environment, else the module."""
    script = Path(sys.executable).parent / "riposte"
    if script.exists():
        return [str(script)]
    found = shutil.which("riposte")
    return [found] if found else [sys.executable, "-m", "riposte.cli"]


def riposte_environment(url: str, cert_dir: Path, sns_basic_auth: str) -> dict[str, str]:
    """The process environment with every RIPOSTE_* variable replaced by the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    env.update({
        "RIPOSTE_DATABASE_URL": url,
        "RIPOSTE_PLAYBOOK_DIR": str(_REPO_DIR / "playbooks"),
        "RIPOSTE_SNS_CERT_DIR": str(cert_dir),
        "RIPOSTE_SNS_TOPICS": SNS_TOPICS_ALLOWED,
        "RIPOSTE_SNS_BASIC_AUTH": sns_basic_auth,
        "RIPOSTE_EVENTBRIDGE_API_KEY_HEADER": API_KEY_HEADER,
    })
    return env


def riposte_cli(env: dict[str, str], *args: str) -> str:
    """Run one `riposte` command; return its stdout or raise with its stderr."""
    done = subprocess.run([*riposte_command(), *args], env=env, capture_output=True, text=True,
                          cwd=_REPO_DIR, check=False)
    if done.returncode != 0:
        raise BenchFailure(f"riposte {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path
           ) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until GET /healthz answers, stop it (SIGTERM: graceful) at the end."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, env=env, cwd=_REPO_DIR, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise BenchFailure(f"{command[-1]!r} exited with {proc.returncode}: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchFailure(f"{command!r} did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# The load generator: its own process, raw HTTP/1.1 keep-alive on asyncio (uvloop if present)

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
READ_TIMEOUT_SECONDS = 30.0


@dataclass
class Load:
    """What one load-generator run saw; the window is the measured part, after the warm-up."""

    window_seconds: float
    window_answers: int  # answers, any status, completed inside the window
    window_2xx: int
    window_new: int  # 202: something new was stored
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]  # every request sent, warm-up and tail included; errors by name
    error_samples: list[str]
    exhausted: bool  # the request pool ran out before the window ended
    client_cpu_s: float
    server_cpu_s: float
    machine_busy: float  # share of all CPUs busy during the window, whoever used them

    @property
    def total_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid``, all its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(pool_file: Path, port: int, connections: int, seconds: float, warmup: float,
          cycle: bool, server_pid: int) -> Load:
    """Send the pool's requests in order over ``connections`` keep-alive connections."""
    with pool_file.open("rb") as f:
        pool: list[bytes] = pickle.load(f)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_drive(pool, port, connections, seconds, warmup, cycle, server_pid))
    return uvloop.run(_drive(pool, port, connections, seconds, warmup, cycle, server_pid))


async def _drive(pool: list[bytes], port: int, connections: int, seconds: float, warmup: float,
                 cycle: bool, server_pid: int) -> Load:
    next_request = 0
    exhausted = False
    # (sent, answered, status) of every request; status is the HTTP code or an error's name.
    done: list[tuple[float, float, str]] = []
    error_samples: list[str] = []
    clock = time.perf_counter
    streams = [await asyncio.open_connection(HOST, port) for _ in range(connections)]
    start = clock()
    window_start, window_end = start + warmup, start + warmup + seconds

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_request, exhausted
        while clock() < window_end:
            if next_request >= len(pool) and not cycle:
                exhausted = True
                break
            request = pool[next_request % len(pool)]
            next_request += 1
            sent = clock()
            try:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                              READ_TIMEOUT_SECONDS)
                length = _CONTENT_LENGTH.search(head)
                if length is None:
                    raise ValueError("answer without Content-Length")
                body = await asyncio.wait_for(reader.readexactly(int(length.group(1))),
                                              READ_TIMEOUT_SECONDS)
                status = head[9:12].decode()
                done.append((sent, clock(), status))
                if not status.startswith("2") and len(error_samples) < 5:
                    error_samples.append(f"{status}: {body[:300].decode(errors='replace')}")
                if _CONNECTION_CLOSE.search(head) is None:
                    continue
            except (OSError, EOFError, ValueError, TimeoutError) as exc:
                done.append((sent, clock(), type(exc).__name__))
                if len(error_samples) < 5:
                    error_samples.append(f"{type(exc).__name__}: {exc}")
            writer.close()
            reader, writer = await _reconnect(port, window_end)
        writer.close()

    async def sample_window() -> tuple[float, float, list[int] | None, list[int] | None]:
        await asyncio.sleep(max(0.0, window_start - clock()))
        before = (_own_cpu_seconds(), process_cpu_seconds(server_pid), cpu_ticks())
        await asyncio.sleep(max(0.0, window_end - clock()))
        return (_own_cpu_seconds() - before[0],
                process_cpu_seconds(server_pid) - before[1], before[2], cpu_ticks())

    sampler = asyncio.ensure_future(sample_window())
    await asyncio.gather(*(connection(r, w) for r, w in streams))
    client_cpu, server_cpu, ticks_before, ticks_after = await sampler
    inside = [(s, a, st) for s, a, st in done if window_start <= a < window_end]
    latencies = [1000 * (a - s) for s, a, _ in inside] or [0.0]
    return Load(
        window_seconds=seconds,
        window_answers=len(inside),
        window_2xx=sum(1 for *_, st in inside if st.startswith("2")),
        window_new=sum(1 for *_, st in inside if st == "202"),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies),
        statuses=dict(Counter(st for *_, st in done)),
        error_samples=error_samples,
        exhausted=exhausted,
        client_cpu_s=client_cpu,
        server_cpu_s=server_cpu,
        machine_busy=_busy_share(ticks_before, ticks_after),
    )


async def _reconnect(port: int, until: float
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    while True:
        try:
            return await asyncio.open_connection(HOST, port)
        except OSError:
            if time.perf_counter() > until + READ_TIMEOUT_SECONDS:
                raise
            await asyncio.sleep(0.05)


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _busy_share(before: list[int] | None, after: list[int] | None) -> float:
    if before is None or after is None:
        return float("nan")
    deltas = [b - a for a, b in zip(before, after, strict=False)]
    idle = deltas[3] + deltas[4]  # idle + iowait
    return 1 - idle / max(1, sum(deltas[:8]))


def run_load(pool: list[bytes], work_dir: Path, port: int, server_pid: int, connections: int,
             seconds: float, warmup: float, cycle: bool) -> Load:
    """Run the load generator as its own process against the server on ``port``."""
    pool_file = work_dir / "requests.pickle"
    with pool_file.open("wb") as f:
        pickle.dump(pool, f, protocol=pickle.HIGHEST_PROTOCOL)
    command = [sys.executable, __file__, "--drive", str(pool_file), "--port", str(port),
               "--connections", str(connections), "--seconds", str(seconds),
               "--warmup", str(warmup), "--server-pid", str(server_pid)]
    done = subprocess.run(command + (["--cycle"] if cycle else []), capture_output=True,
                          text=True, check=False)
    pool_file.unlink()
    if done.returncode != 0:
        raise BenchFailure(f"the load generator failed: {done.stderr.strip()[-2000:]}")
    return Load(**json.loads(done.stdout))


# ---------------------------------------------------------------------------------------------
# The measurements


@dataclass
class Stored:
    """What Riposte's database holds after the run."""

    alerts: int
    occurrences: int
    deliveries: dict[str, int]
    runs: int
    chain: audit.ChainReport

    @property
    def duplicates(self) -> int:
        return self.deliveries.get("duplicate", 0)


def stored_by_riposte(url: str) -> Stored:
    with psycopg.connect(libpq(url)) as conn:
        alerts, occurrences = conn.execute(
            "SELECT count(*), coalesce(sum(occurrences), 0) FROM alerts").fetchone() or (0, 0)
        deliveries: dict[str, int] = dict(conn.execute(
            "SELECT outcome, count(*) FROM deliveries GROUP BY outcome").fetchall())
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            chain = audit.verify(session)
    finally:
        engine.dispose()
    return Stored(alerts=alerts, occurrences=occurrences, deliveries=deliveries,
                  runs=runs[0] if runs else 0, chain=chain)


def stored_by_ceiling(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute("SELECT count(*) FROM bench_ceiling").fetchone()
    return row[0] if row else 0


def measure_ceiling(url: str, pool: list[bytes], work_dir: Path, args: argparse.Namespace
                    ) -> tuple[Load, int]:
    with psycopg.connect(libpq(url)) as conn:
        conn.execute(CEILING_TABLE)
    port = free_port()
    command = [sys.executable, __file__, "--serve-ceiling", "--url", url, "--port", str(port)]
    with server(command, dict(os.environ), port, work_dir / "ceiling.log") as proc:
        load = run_load(pool, work_dir, port, proc.pid, args.connections, args.seconds,
                        args.warmup, cycle=True)
    return load, stored_by_ceiling(url)


def measure_riposte(url: str, pool: list[bytes], work_dir: Path, env: dict[str, str],
                    args: argparse.Namespace) -> tuple[Load, Stored, int]:
    port = free_port()
    log = work_dir / "riposte.log"
    with server([*riposte_command(), "serve", "--port", str(port)], env, port, log) as proc:
        load = run_load(pool, work_dir, port, proc.pid, args.connections, args.seconds,
                        args.warmup, cycle=False)
    with log.open("rb") as f:
        log_lines = sum(1 for _ in f)
    return load, stored_by_riposte(url), log_lines


def run_benchmark(server_url: str, args: argparse.Namespace) -> Report:
    report = Report()
    pid = os.getpid()
    with tempfile.TemporaryDirectory(prefix="riposte-bench-ingest-") as tmp, \
            scratch_databases(server_url, f"riposte_bench_ingest_{pid}",
                              f"riposte_bench_ceiling_{pid}") as (riposte_url, ceiling_url):
        work_dir = Path(tmp)
        cert_dir = work_dir / "sns-certs"
        cert_dir.mkdir()
        identity = sns_keys.make_identity()
        (cert_dir / sns_keys.CERT_FILE_NAME).write_bytes(identity.certificate_pem)
        basic_auth = f"sns-bench:{secrets.token_urlsafe(12)}"
        env = riposte_environment(riposte_url, cert_dir, basic_auth)
        progress("migrating with `riposte db upgrade`, creating an ingest token")
        riposte_cli(env, "db", "upgrade")
        token = riposte_cli(env, "token", "create", "--name", "bench-eventbridge",
                            "--role", "ingest").strip()
        credentials = Credentials(
            signing_key_pem=identity.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()),
            certificate_pem=identity.certificate_pem,
            sns_basic_auth=basic_auth,
            ingest_token=token,
        )

        progress(f"ceiling: {CEILING_POOL} requests, {args.connections} connections, "
                 f"{args.warmup:g} s warm-up + {args.seconds:g} s")
        ceiling_pool = request_pool(CEILING_POOL, credentials)
        ceiling, ceiling_rows = measure_ceiling(ceiling_url, ceiling_pool, work_dir, args)
        del ceiling_pool

        ceiling_rate = ceiling.window_answers / ceiling.window_seconds
        count = int(POOL_MARGIN * ceiling_rate * (args.warmup + args.seconds)) + 1000
        progress(f"building {count:,} distinct requests for Riposte (SNS ones signed)")
        pool = request_pool(count, credentials)
        progress(f"riposte serve: {args.connections} connections, {args.warmup:g} s warm-up + "
                 f"{args.seconds:g} s")
        riposte, stored, log_lines = measure_riposte(riposte_url, pool, work_dir, env, args)
        del pool
    add_figures(report, ceiling, ceiling_rows, riposte, stored, log_lines)
    return report


def add_figures(report: Report, ceiling: Load, ceiling_rows: int, riposte: Load,
                stored: Stored, log_lines: int) -> None:
    ceiling_rate = ceiling.window_2xx / ceiling.window_seconds
    rate = riposte.window_2xx / riposte.window_seconds
    report.add("ceiling: one-INSERT FastAPI app, 2xx/s", f"{ceiling_rate:,.0f}", "the ceiling")
    report.add("  p50 / p99 latency", f"{ceiling.p50_ms:.1f} / {ceiling.p99_ms:.1f} ms")
    report.add("  errors", f"{ceiling.errors:,}",
               f"rows stored {ceiling_rows:,} for {ceiling.total_2xx:,} 2xx answers")
    report.add("  server CPU per request",
               f"{1000 * ceiling.server_cpu_s / max(1, ceiling.window_answers):.2f} ms")
    target = TARGET_RATIO * ceiling_rate
    report.add("riposte: alerts accepted (2xx answers)/s", f"{rate:,.0f}",
               f">= {target:,.0f} ({100 * TARGET_RATIO:.0f}% of the ceiling)",
               verdict(rate >= target))
    report.add("  of which new alerts (202)/s",
               f"{riposte.window_new / riposte.window_seconds:,.0f}",
               "the rest are redeliveries (200)")
    report.add("  requests/s, any answer",
               f"{riposte.window_answers / riposte.window_seconds:,.0f}")
    report.add("  ratio to the ceiling", f"{100 * rate / max(ceiling_rate, 1e-9):.0f}%",
               f">= {100 * TARGET_RATIO:.0f}%", verdict(rate >= target))
    report.add("  p50 latency", f"{riposte.p50_ms:.1f} ms")
    report.add("  p99 latency", f"{riposte.p99_ms:.1f} ms", f"< {TARGET_P99_MS:.0f} ms",
               verdict(riposte.p99_ms < TARGET_P99_MS))
    report.add("  max latency", f"{riposte.max_ms:.1f} ms")
    errors = ", ".join(f"{s}: {n}" for s, n in sorted(riposte.statuses.items())
                       if not s.startswith("2"))
    report.add("  errors (non-2xx, broken connections)", f"{riposte.errors:,}",
               f"0{'; ' + errors if errors else ''}", verdict(riposte.errors == 0))
    counted = stored.alerts + stored.duplicates
    lost = riposte.total_2xx - counted
    report.add("  count check: 2xx = alerts + duplicates",
               f"{riposte.total_2xx:,} = {stored.alerts:,} + {stored.duplicates:,}",
               f"lost {max(lost, 0)}, unanswered but stored {max(-lost, 0)}",
               verdict(lost == 0))
    report.add("  alerts' occurrences summed", f"{stored.occurrences:,}",
               f"deliveries {dict(sorted(stored.deliveries.items()))}; runs queued "
               f"{stored.runs}")
    report.add("  server CPU per request",
               f"{1000 * riposte.server_cpu_s / max(1, riposte.window_answers):.2f} ms",
               f"{log_lines:,} log lines written")
    chain = stored.chain
    report.add("  audit chain (GET /v1/audit/verify)", f"{chain.checked:,} rows",
               "intact" if chain.ok else f"broken at row {chain.first_broken_id}: {chain.reason}",
               verdict(chain.ok))
    for name, load in (("ceiling", ceiling), ("riposte", riposte)):
        report.add(f"CPU during the {name} window",
                   f"{100 * load.machine_busy:.0f}% busy",
                   f"of {os.cpu_count()} CPUs; server {load.server_cpu_s / load.window_seconds:.2f}"
                   f" CPU, load generator {load.client_cpu_s / load.window_seconds:.2f} CPU")
    if riposte.exhausted:
        report.add("NOTE", "request pool ran out", "the window ended early; rates are per window")
    for name, load in (("ceiling", ceiling), ("riposte", riposte)):
        for sample in load.error_samples[:3]:
            report.add(f"{name} error sample", sample[:120])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="a PostgreSQL database on the server to use (scratch databases are "
                             "created beside it)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per server")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of load before the measured window")
    parser.add_argument("--quick", action="store_true",
                        help="3 s windows, 1 s warm-up (a smoke test)")
    parser.add_argument("--serve-ceiling", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--drive", metavar="POOL", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cycle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_ceiling:
        serve_ceiling(args.url, args.port)
        return 0
    if args.drive:
        load = drive(args.drive, args.port, args.connections, args.seconds, args.warmup,
                     args.cycle, args.server_pid)
        print(json.dumps(load.__dict__))
        return 0
    if args.quick:
        args.seconds, args.warmup = min(args.seconds, 3.0), min(args.warmup, 1.0)
    if make_url(args.url).get_backend_name() != "postgresql":
        parser.error("--url must name a PostgreSQL database")
    started, ticks = time.monotonic(), cpu_ticks()
    with psycopg.connect(libpq(args.url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(f"Riposte ingest benchmark: PostgreSQL {version[0] if version else '?'} at "
          f"{make_url(args.url).host}; {os.cpu_count()} CPUs shared by the server, the load "
          f"generator and PostgreSQL; {args.connections} connections, {args.seconds:g} s "
          f"measured after {args.warmup:g} s warm-up; load average "
          f"{os.getloadavg()[0]:.2f} at start\n", flush=True)
    try:
        report = run_benchmark(args.url, args)
    except BenchFailure as exc:
        print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    report.print()
    print_total(started, ticks)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark how long a small write waits while `riposte serve` stores a maximal delivery.

Usage: python bench/ingest_lock.py [--url postgresql+psycopg://root@127.0.0.1:5432/postgres]
                                   [--deliveries 2] [--events N] [--probe-every 0.05]
                                   [--ceiling-seconds 5]

Every write appends to the audit chain, whose tail row each transaction locks until it commits:
a delivery stored in one transaction makes every other write wait for all of it. This measures
the latency of two probes, each sent one at a time in its own thread — a new alert
(`POST /v1/alerts`) and an anonymous request (answered 401) — first with nothing else running
(the ceiling), then while `--deliveries` EventBridge arrays of the most events a delivery may
carry (RIPOSTE_MAX_EVENTS_PER_DELIVERY, each event distinct and tiny) are stored one after the
other. One such delivery is stored first with nothing beside it, for its own duration.
It creates a scratch database beside --url, migrated with `riposte db upgrade`, and drops it
whatever happens. The exit status is 0 whatever the figures; 1 when the benchmark could not run.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/ingest_lock.py` puts bench/ first on sys.path, where bench/engine.py would
# shadow the `engine` package: put the repository root there instead.
_BENCH_DIR = Path(__file__).resolve().parent
_REPO_DIR = _BENCH_DIR.parent
sys.path[:] = [str(_REPO_DIR)] + [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from bench.engine import Report, cpu_ticks, libpq, percentile, print_total, progress  # noqa: E402
from bench.ingest import (  # noqa: E402
    API_KEY_HEADER,
    HOST,
    BenchFailure,
    free_port,
    riposte_cli,
    riposte_command,
    scratch_databases,
    server,
)
from core.settings import Settings  # noqa: E402
from engine import audit  # noqa: E402
from engine.store.alerts import ALERTS_PER_TRANSACTION  # noqa: E402
from engine.store.db import make_engine, make_sessionmaker  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
DEFAULT_EVENTS = Settings.model_fields["max_events_per_delivery"].default
DELIVERY_TIMEOUT_SECONDS = 900.0
PROBE_TIMEOUT_SECONDS = 900.0


@dataclass
class Probes:
    """Latencies of the probe requests, by kind, and any answer that was not the expected one."""

    alert_ms: list[float] = field(default_factory=list)
    anonymous_ms: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def probe_kind(port: int, token: str, anonymous: bool, until: threading.Event, every: float,
               probes: Probes, first: int) -> None:
    """Send one kind of probe, one at a time, every ``every`` s, until ``until`` is set."""
    latencies = probes.anonymous_ms if anonymous else probes.alert_ms
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=PROBE_TIMEOUT_SECONDS) as http:
        n = first
        while not until.is_set():
            started = time.perf_counter()
            if anonymous:
                answer, expected = http.get("/v1/runs"), 401
            else:
                body = {"title": f"probe {n}", "severity": 10, "dedup_key": f"probe-{n}"}
                answer = http.post("/v1/alerts", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
                expected = 202
            if answer.status_code == expected:
                latencies.append(1000 * (time.perf_counter() - started))
            else:
                probes.unexpected.append(f"{answer.status_code}: {answer.text[:100]}")
            n += 1
            until.wait(max(0.0, every - (time.perf_counter() - started)))


@contextmanager
def probing(port: int, token: str, every: float, first: int) -> Iterator[Probes]:
    """Probe with a new alert and an anonymous request, each in its own thread, while inside."""
    probes, stop = Probes(), threading.Event()
    threads = [threading.Thread(target=probe_kind,
                                args=(port, token, anonymous, stop, every, probes, first))
               for anonymous in (False, True)]
    for thread in threads:
        thread.start()
    try:
        yield probes
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def maximal_body(events: int, delivery: int) -> bytes:
    """An EventBridge array of ``events`` tiny distinct events (one generic alert each)."""
    return json.dumps([
        {"id": f"d{delivery}-{n}", "source": "bench.lock", "detail-type": "Tiny", "detail": {}}
        for n in range(events)
    ], separators=(",", ":")).encode()


@dataclass
class Delivered:
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failure: str = ""


def deliver(port: int, token: str, bodies: list[bytes], delivered: Delivered) -> None:
    """Post the maximal deliveries one after the other."""
    try:
        with httpx.Client(base_url=f"http://{HOST}:{port}",
                          timeout=DELIVERY_TIMEOUT_SECONDS) as http:
            for body in bodies:
                started = time.monotonic()
                answer = http.post("/v1/webhooks/eventbridge", content=body,
                                   headers={API_KEY_HEADER: token})
                delivered.seconds.append(time.monotonic() - started)
                delivered.statuses.append(answer.status_code)
    except httpx.HTTPError as exc:
        delivered.failure = f"{type(exc).__name__}: {exc}"


def summary(values: Sequence[float]) -> str:
    if not values:
        return "none"
    return (f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f} / "
            f"{max(values):.1f} ms")


def run_benchmark(server_url: str, args: argparse.Namespace) -> Report:
    report = Report()
    with tempfile.TemporaryDirectory(prefix="riposte-bench-lock-") as tmp, \
            scratch_databases(server_url, f"riposte_bench_lock_{os.getpid()}") as [url]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
        env.update({"RIPOSTE_DATABASE_URL": url,
                    "RIPOSTE_PLAYBOOK_DIR": str(_REPO_DIR / "playbooks"),
                    "RIPOSTE_EVENTBRIDGE_API_KEY_HEADER": API_KEY_HEADER,
                    "RIPOSTE_MAX_EVENTS_PER_DELIVERY": str(args.events)})
        progress("migrating with `riposte db upgrade`, creating an ingest token")
        riposte_cli(env, "db", "upgrade")
        token = riposte_cli(env, "token", "create", "--name", "bench-lock",
                            "--role", "ingest").strip()
        bodies = [maximal_body(args.events, d) for d in range(1 + args.deliveries)]
        port = free_port()
        command = [*riposte_command(), "serve", "--host", HOST, "--port", str(port)]
        with server(command, env, port, Path(tmp) / "riposte.log"):
            progress(f"ceiling: the probes alone for {args.ceiling_seconds:g} s")
            with probing(port, token, args.probe_every, 0):
                time.sleep(1.0)  # warm-up
            with probing(port, token, args.probe_every, 1_000_000) as alone:
                time.sleep(args.ceiling_seconds)
            progress(f"one delivery of {args.events:,} events ({len(bodies[0]):,} bytes), "
                     "nothing beside it")
            by_itself = Delivered()
            deliver(port, token, bodies[:1], by_itself)
            progress(f"{args.deliveries} more, one after the other, the probes beside them")
            delivered = Delivered()
            with probing(port, token, args.probe_every, 2_000_000) as beside:
                deliver(port, token, bodies[1:], delivered)
        engine = make_engine(url)
        try:
            with make_sessionmaker(engine)() as session:
                chain = audit.verify(session)
        finally:
            engine.dispose()
    for failed in (by_itself.failure, delivered.failure):
        if failed:
            raise BenchFailure(f"a maximal delivery failed: {failed}")
    add_figures(report, args, alone, beside, by_itself, delivered, chain)
    return report


def add_figures(report: Report, args: argparse.Namespace, alone: Probes, beside: Probes,
                by_itself: Delivered, delivered: Delivered, chain: audit.ChainReport) -> None:
    report.add("one new alert (POST /v1/alerts), alone: p50 / p99 / max",
               summary(alone.alert_ms), f"the ceiling; {len(alone.alert_ms)} probes")
    report.add("  beside maximal deliveries: p50 / p99 / max", summary(beside.alert_ms),
               f"{len(beside.alert_ms)} probes")
    report.add("anonymous request (401), alone: p50 / p99 / max",
               summary(alone.anonymous_ms), f"the ceiling; {len(alone.anonymous_ms)} probes")
    report.add("  beside maximal deliveries: p50 / p99 / max", summary(beside.anonymous_ms),
               f"{len(beside.anonymous_ms)} probes")
    batches = -(-args.events // ALERTS_PER_TRANSACTION)
    for how, done in (("alone", by_itself), ("beside the probes", delivered)):
        for status, seconds in zip(done.statuses, done.seconds, strict=True):
            report.add(f"a delivery of {args.events:,} events, {how}", f"{seconds:.1f} s",
                       f"answer {status}; {batches} transactions of <= "
                       f"{ALERTS_PER_TRANSACTION} alerts, {1000 * seconds / batches:.0f} ms "
                       "each on average")
    unexpected = alone.unexpected + beside.unexpected
    report.add("unexpected answers to probes", str(len(unexpected)),
               "; ".join(unexpected[:3]))
    report.add("audit chain", f"{chain.checked:,} rows",
               "intact" if chain.ok else f"broken at row {chain.first_broken_id}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="a PostgreSQL database on the server to use (a scratch database "
                             "is created beside it)")
    parser.add_argument("--deliveries", type=int, default=2,
                        help="maximal deliveries stored one after the other beside the probes "
                             "(after one stored alone)")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help="events per delivery (default: RIPOSTE_MAX_EVENTS_PER_DELIVERY's)")
    parser.add_argument("--probe-every", type=float, default=0.05,
                        help="seconds between the starts of two probes")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0,
                        help="how long the probe runs alone")
    args = parser.parse_args(argv)
    if make_url(args.url).get_backend_name() != "postgresql":
        parser.error("--url must name a PostgreSQL database")
    started, ticks = time.monotonic(), cpu_ticks()
    with psycopg.connect(libpq(args.url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(f"Riposte audit-lock benchmark: PostgreSQL {version[0] if version else '?'} at "
          f"{make_url(args.url).host}; {os.cpu_count()} CPUs shared by the server, the "
          f"clients and PostgreSQL; load average {os.getloadavg()[0]:.2f} at start\n",
          flush=True)
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

"""Benchmark the playbook engine on PostgreSQL against the commit rate of the same server.

Usage: python bench/engine.py [--url postgresql+psycopg://root@127.0.0.1:5432/postgres]
                              [--runs 1000] [--quick]

It creates a scratch database next to the one named in --url, migrates it, measures, and drops
it whatever happens. It prints every figure beside its target or ceiling. The exit status is 0
whether targets are met or not (a benchmark reports); it is 1 only when the engine did something
wrong (a run not succeeded, a step journaled twice, a broken audit chain).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/engine.py` puts bench/ first on sys.path, where this very file would shadow the
# `engine` package: put the repository root there instead.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH_DIR.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR
]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import psycopg  # noqa: E402
from sqlalchemy import URL, String, event, func, make_url, select  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker  # noqa: E402

from engine import audit, conductor  # noqa: E402
from engine.alerts import NormalizedAlert  # noqa: E402
from engine.playbooks import LoadedPlaybook, parse_playbook  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.alerts import ingest_alert  # noqa: E402
from engine.store.db import make_engine, make_sessionmaker  # noqa: E402
from engine.store.models import Run, StepRecord  # noqa: E402
from engine.store.runs import queue_run  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
STEPS_PER_RUN = 10
TEN_LOG_STEPS = "name: bench-ten-logs\nsteps:\n" + "".join(
    f"  - {{id: s{i:02d}, action: core.log, with: {{message: step {i}}}}}\n"
    for i in range(1, STEPS_PER_RUN + 1)
)
ONE_LOG_STEP = "name: bench-one-log\nsteps:\n  - {id: s01, action: core.log, with: {message: hi}}\n"
FOR_EACH = """name: bench-for-each-{n}
steps:
  - id: each
    action: core.log
    for_each: "range({n}) | list"
    with:
      message: "item {{{{ item }}}}"
"""

# Targets from the issue, on a 2-core machine.
TARGET_STEPS_PER_S = 500.0
TARGET_FIRST_STEP_P99_MS = 50.0
TARGET_FOR_EACH_RATIO = 2.0


class BenchFailure(Exception):
    """The engine did something wrong: the figures around it mean nothing."""


# ---------------------------------------------------------------------------------------------
# Scratch database


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Create riposte_bench_<pid> on the server of ``server_url``, migrate it, always drop it."""
    base = make_url(server_url)
    name = f"riposte_bench_{os.getpid()}"
    admin = libpq(base)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq(url: URL | str) -> str:
    """The libpq form of a SQLAlchemy URL, for psycopg.connect."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# ---------------------------------------------------------------------------------------------
# Ceiling: what the server does with no engine in the way


class _ScratchBase(DeclarativeBase):
    pass


class _ScratchRow(_ScratchBase):
    __tablename__ = "bench_scratch_orm"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    payload: Mapped[str] = mapped_column(String(64))


def bare_commits_per_s(url: str, count: int) -> float:
    """Time ``count`` single-row INSERT + COMMIT through plain psycopg."""
    with psycopg.connect(libpq(url)) as conn:
        conn.execute("CREATE TABLE bench_scratch (id bigserial PRIMARY KEY, payload text)")
        conn.commit()
        started = time.perf_counter()
        for i in range(count):
            conn.execute("INSERT INTO bench_scratch (payload) VALUES (%s)", (f"row {i}",))
            conn.commit()
        return count / (time.perf_counter() - started)


def round_trip_ms(url: str, count: int) -> float:
    """Time ``count`` bare ``SELECT 1`` round trips through plain psycopg (no commit, no disk)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(count):
            conn.execute("SELECT 1").fetchone()
        return 1000 * (time.perf_counter() - started) / count


def orm_commits_per_s(url: str, count: int) -> float:
    """Time ``count`` single-object ORM inserts, each in its own session and commit."""
    engine = make_engine(url)
    try:
        _ScratchBase.metadata.create_all(engine)
        sessions = make_sessionmaker(engine)
        started = time.perf_counter()
        for i in range(count):
            with sessions.begin() as session:
                session.add(_ScratchRow(payload=f"row {i}"))
        return count / (time.perf_counter() - started)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# Worker processes


def serve_worker(url: str, worker_id: str) -> None:
    """Child process: build a Worker, say ready, wait for go, serve until stdin closes.

    On the way out it prints what it cost: statements, commits and pool checkouts (each one a
    pre-ping round trip) it sent, and the CPU time it used while serving.
    """
    from engine import wakeup
    from engine.worker import Worker

    engine = make_engine(url)
    with engine.connect():
        pass  # pay for the first connection before the clock starts
    worker = Worker(sessions=make_sessionmaker(engine), worker_id=worker_id, lease_seconds=30.0)
    counts: Counter[str] = Counter()
    event.listen(engine, "before_cursor_execute", lambda *_: counts.update(["statements"]))
    event.listen(engine, "commit", lambda *_: counts.update(["commits"]))
    event.listen(engine.pool, "checkout", lambda *_: counts.update(["checkouts"]))
    stop = threading.Event()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu_before = _cpu_seconds()

    def stop_at_eof() -> None:
        sys.stdin.read()
        stop.set()
        wakeup.signal()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    worker.serve(stop)
    print(json.dumps({**counts, "cpu_seconds": _cpu_seconds() - cpu_before}), flush=True)
    engine.dispose()


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class WorkerProcesses:
    """K worker processes, started and warmed up, released together by ``go``."""

    def __init__(self, url: str, ids: Sequence[str]) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.costs: Counter[str] = Counter()
        for worker_id in ids:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--serve-worker", worker_id, "--url", url],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                self.stop()  # the others must not outlive the benchmark
                raise BenchFailure(f"worker process {proc.args!r} did not start")

    def go(self) -> datetime:
        """Release every worker; return the wall-clock time it happened."""
        now = datetime.now(UTC)
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return now

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)

    def stop(self) -> Counter[str]:
        """Stop every worker; return the sum of what they report having cost."""
        for proc in self.procs:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
        costs: Counter[str] = Counter()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            for line in proc.stdout.read().splitlines():
                if line.startswith("{"):
                    costs.update(json.loads(line))
            proc.stdout.close()
        self.costs = costs
        return costs


@contextmanager
def worker_processes(url: str, ids: Sequence[str]) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(url, ids)
    try:
        yield workers
    finally:
        workers.stop()


# ---------------------------------------------------------------------------------------------
# Queueing and checking runs


def bench_alert(n: int) -> NormalizedAlert:
    return NormalizedAlert(
        source="generic", kind="bench", title=f"bench alert {n}", severity=50,
        severity_label="MEDIUM",
    )


def queue_runs(
    sessions: sessionmaker[Session], playbook: LoadedPlaybook, count: int, tag: str,
    batch: int = 250,
) -> list[str]:
    """Queue ``count`` runs, each on its own alert, ``batch`` to a transaction."""
    run_ids: list[str] = []
    for start in range(0, count, batch):
        with sessions.begin() as session:
            for n in range(start, min(count, start + batch)):
                run_ids.append(_queue_one(session, playbook, n, tag))
    return run_ids


def _queue_one(session: Session, playbook: LoadedPlaybook, n: int, tag: str) -> str:
    stored = ingest_alert(
        session=session, alert=bench_alert(n), playbooks={}, endpoint="bench",
        body_sha256="0" * 64, body_bytes=0, actor="bench",
    )
    assert stored.alert_id is not None  # a generic alert is never an ignored delivery
    run = queue_run(session=session, alert_id=stored.alert_id, playbook=playbook, mode="live",
                    started_by=tag)
    return run.id


def wait_for_runs(
    sessions: sessionmaker[Session], tag: str, count: int, workers: WorkerProcesses,
    timeout: float,
) -> None:
    """Poll every 100 ms until ``count`` runs tagged ``tag`` have ended."""
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            ended = session.execute(
                select(func.count()).select_from(Run)
                .where(Run.started_by == tag, Run.status.in_(conductor.TERMINAL))
            ).scalar_one()
        if ended >= count:
            return
        if not workers.alive():
            raise BenchFailure(f"a worker process died with {count - ended} runs of {tag} left")
        if time.monotonic() > deadline:
            raise BenchFailure(f"{count - ended} runs of {tag} still not ended after {timeout}s")
        time.sleep(0.1)


def check_runs(
    sessions: sessionmaker[Session], tag: str, count: int, step_ids: Sequence[str]
) -> list[Run]:
    """Every run succeeded, and every step has exactly one journal row, a succeeded one."""
    with sessions() as session:
        runs = list(session.execute(select(Run).where(Run.started_by == tag)).scalars())
        rows = session.execute(
            select(StepRecord.run_id, StepRecord.step_id, StepRecord.status)
            .join(Run, Run.id == StepRecord.run_id).where(Run.started_by == tag)
        ).all()
    problems: list[str] = []
    statuses = Counter(run.status for run in runs)
    if len(runs) != count or statuses != {conductor.SUCCEEDED: count}:
        problems.append(f"expected {count} succeeded runs, found {dict(statuses)}")
    journal = Counter((row.run_id, row.step_id, row.status) for row in rows)
    duplicates = [key for key, seen in journal.items() if seen > 1]
    if duplicates:
        problems.append(f"{len(duplicates)} steps journaled more than once, e.g. {duplicates[0]}")
    expected = {(run.id, step_id, "succeeded") for run in runs for step_id in step_ids}
    if set(journal) != expected:
        missing, extra = expected - set(journal), set(journal) - expected
        problems.append(f"journal: {len(missing)} rows missing, {len(extra)} unexpected")
    if problems:
        raise BenchFailure(f"{tag}: " + "; ".join(problems))
    return runs


def last_finish(runs: Sequence[Run]) -> datetime:
    finished = [run.finished_at for run in runs if run.finished_at is not None]
    return max(finished)


# ---------------------------------------------------------------------------------------------
# The measurements


@dataclass
class Throughput:
    workers: int
    steps_per_s: float
    overhead_ms: float
    cpu_ms_per_step: float  # worker processes' CPU time, all of them
    statements_per_step: float
    commits_per_step: float
    checkouts_per_step: float


def measure_throughput(
    url: str, sessions: sessionmaker[Session], runs: int, workers: int
) -> Throughput:
    """Queue ``runs`` ten-step runs, then let ``workers`` processes drain the queue."""
    playbook = parse_playbook(TEN_LOG_STEPS)
    tag = f"bench-throughput-{workers}"
    queue_runs(sessions, playbook, runs, tag)
    with worker_processes(url, [f"bench-w{workers}-{i}" for i in range(workers)]) as procs:
        started = procs.go()
        wait_for_runs(sessions, tag, runs, procs, timeout=600)
    done = check_runs(sessions, tag, runs, [f"s{i:02d}" for i in range(1, STEPS_PER_RUN + 1)])
    elapsed = (last_finish(done) - started).total_seconds()
    steps = runs * STEPS_PER_RUN
    steps_per_s = steps / elapsed
    return Throughput(
        workers=workers,
        steps_per_s=steps_per_s,
        overhead_ms=1000 * workers / steps_per_s,
        cpu_ms_per_step=1000 * procs.costs["cpu_seconds"] / steps,
        statements_per_step=procs.costs["statements"] / steps,
        commits_per_step=procs.costs["commits"] / steps,
        checkouts_per_step=procs.costs["checkouts"] / steps,
    )


@dataclass
class Latency:
    from_queued_ms: list[float]  # Run.queued_at (set at INSERT) -> first StepRecord.started_at
    from_commit_ms: list[float]  # the queueing transaction's COMMIT returning -> the same


def measure_first_step_latency(
    url: str, sessions: sessionmaker[Session], samples: int
) -> Latency:
    """Queue runs one at a time at an idle, listening worker; time until the first step starts.

    The runs have one step: what is measured ends when the first step starts.
    """
    playbook = parse_playbook(ONE_LOG_STEP)
    tag = "bench-latency"
    latency = Latency([], [])
    with worker_processes(url, ["bench-latency"]) as procs:
        procs.go()
        time.sleep(0.5)  # let the worker find the queue empty and LISTEN
        for n in range(samples):
            with sessions.begin() as session:
                run_id = _queue_one(session, playbook, n, tag)
            committed = datetime.now(UTC)
            run = _wait_for_end(sessions, run_id, procs)
            with sessions() as session:
                first = session.execute(
                    select(func.min(StepRecord.started_at)).where(StepRecord.run_id == run_id)
                ).scalar_one()
            latency.from_queued_ms.append((first - run.queued_at).total_seconds() * 1000)
            latency.from_commit_ms.append((first - committed).total_seconds() * 1000)
            time.sleep(0.02)  # the worker goes back to waiting on LISTEN
    check_runs(sessions, tag, samples, ["s01"])
    return latency


def _wait_for_end(sessions: sessionmaker[Session], run_id: str, procs: WorkerProcesses) -> Run:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sessions() as session:
            run = session.get(Run, run_id)
            if run is not None and run.status in conductor.TERMINAL:
                return run
        if not procs.alive():
            raise BenchFailure("the latency worker died")
        time.sleep(0.005)
    raise BenchFailure(f"run {run_id} did not end within 30 s of being queued")


@dataclass
class ForEach:
    items: int
    runs: int
    wall_ms_per_item: float
    step_ms_per_item: float


def measure_for_each(
    url: str, sessions: sessionmaker[Session], items: int, runs: int
) -> ForEach:
    """Drain ``runs`` one-step runs whose step loops over ``items`` items, with one worker."""
    playbook = parse_playbook(FOR_EACH.format(n=items))
    tag = f"bench-for-each-{items}"
    queue_runs(sessions, playbook, runs, tag)
    with worker_processes(url, [f"bench-for-each-{items}"]) as procs:
        started = procs.go()
        wait_for_runs(sessions, tag, runs, procs, timeout=600)
    done = check_runs(sessions, tag, runs, ["each"])
    with sessions() as session:
        records = list(session.execute(
            select(StepRecord).join(Run, Run.id == StepRecord.run_id).where(Run.started_by == tag)
        ).scalars())
    for record in records:
        if not isinstance(record.output, list) or len(record.output) != items:
            raise BenchFailure(f"{tag}: step output does not hold {items} items")
    step_seconds = [
        (r.finished_at - r.started_at).total_seconds() for r in records if r.finished_at
    ]
    elapsed = (last_finish(done) - started).total_seconds()
    return ForEach(
        items=items,
        runs=runs,
        wall_ms_per_item=1000 * elapsed / (runs * items),
        step_ms_per_item=1000 * statistics.median(step_seconds) / items,
    )


# ---------------------------------------------------------------------------------------------
# Report


def cpu_ticks() -> list[int] | None:
    """Return the machine's CPU time counters (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            return [int(n) for n in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def print_total(started: float, ticks: list[int] | None) -> None:
    """The closing line: wall time, load average and, where the kernel says, CPU steal."""
    steal = steal_percent(ticks, cpu_ticks())
    print(f"\ntotal {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.2f}"
          + (f"; CPU steal {steal:.1f}% (other guests on the host)" if steal is not None else ""))


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time the hypervisor gave to other guests between two readings."""
    if before is None or after is None or len(before) < 8:
        return None
    deltas = [b - a for a, b in zip(before, after, strict=False)]
    return 100 * deltas[7] / max(1, sum(deltas[:8]))


@dataclass
class Report:
    lines: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, what: str, measured: str, versus: str = "", verdict: str = "") -> None:
        self.lines.append((what, measured, versus, verdict))

    def print(self) -> None:
        widths = [max(len(line[i]) for line in self.lines) for i in range(3)]
        header = ("figure", "measured", "target / ceiling", "")
        for what, measured, versus, verdict in [header, *self.lines]:
            print(f"{what:<{widths[0]}}  {measured:>{widths[1]}}  {versus:<{widths[2]}}  "
                  f"{verdict}".rstrip())


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_benchmark(url: str, runs: int, quick: bool) -> Report:
    report = Report()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        progress("ceiling: bare and ORM single-row commits")
        bare = bare_commits_per_s(url, 1000 if quick else 5000)
        orm = orm_commits_per_s(url, 500 if quick else 2000)
        report.add("bare INSERT+COMMIT, psycopg", f"{bare:,.0f}/s", "the ceiling")
        rtt = round_trip_ms(url, 1000 if quick else 3000)
        report.add("ORM INSERT+COMMIT, SQLAlchemy session", f"{orm:,.0f}/s", "for reference")
        report.add("bare SELECT 1 round trip, psycopg", f"{1000 * rtt:.0f} us", "the ceiling")
        for workers in (1, 2):
            progress(f"throughput: {runs} ten-step runs, {workers} worker process(es)")
            result = measure_throughput(url, sessions, runs, workers)
            plural = "s" if workers > 1 else ""
            report.add(
                f"steps/s, {workers} worker{plural} ({runs} runs x 10 core.log)",
                f"{result.steps_per_s:,.0f}",
                f">= {TARGET_STEPS_PER_S:.0f}" if workers == 1 else "no target (2 CPUs, shared)",
                verdict(result.steps_per_s >= TARGET_STEPS_PER_S) if workers == 1 else "",
            )
            report.add(
                "  per-step overhead (worker wall time)", f"{result.overhead_ms:.2f} ms",
                f"<= {1000 / TARGET_STEPS_PER_S:.1f} ms" if workers == 1 else "",
                verdict(result.overhead_ms <= 1000 / TARGET_STEPS_PER_S) if workers == 1 else "",
            )
            report.add(
                "  worker CPU per step", f"{result.cpu_ms_per_step:.2f} ms",
                "user + system CPU of the worker process(es)",
            )
            trips = (
                result.statements_per_step + result.commits_per_step + result.checkouts_per_step
            )
            report.add(
                "  round trips per step", f"{trips:.1f}",
                f"{result.statements_per_step:.1f} statements + {result.commits_per_step:.1f} "
                f"commits + {result.checkouts_per_step:.1f} pool pre-pings",
            )
            floor_ms = (
                (result.statements_per_step + result.checkouts_per_step) * rtt
                + result.commits_per_step * 1000 / bare
            )
            report.add(
                "  the same round trips at bare speed", f"{floor_ms:.2f} ms",
                "each trip at the bare SELECT 1 time or commit rate",
            )
        progress("latency: queued -> first step at an idle worker")
        latency = measure_first_step_latency(url, sessions, 50 if quick else 200)
        queued, committed = latency.from_queued_ms, latency.from_commit_ms
        p99 = percentile(queued, 99)
        report.add(
            f"queued -> first step, p50 ({len(queued)} runs)", f"{percentile(queued, 50):.1f} ms",
            f"from the queueing COMMIT: {percentile(committed, 50):.1f} ms",
        )
        report.add(
            "queued -> first step, p99", f"{p99:.1f} ms",
            f"< {TARGET_FIRST_STEP_P99_MS:.0f} ms; from COMMIT: {percentile(committed, 99):.1f} ms",
            verdict(p99 < TARGET_FIRST_STEP_P99_MS),
        )
        report.add("queued -> first step, max", f"{max(queued):.1f} ms")
        progress("for_each over 100 and 1,000 items")
        small = measure_for_each(url, sessions, 100, 5 if quick else 20)
        large = measure_for_each(url, sessions, 1000, 1 if quick else 3)
        for each in (small, large):
            report.add(
                f"for_each {each.items} items: wall per item ({each.runs} runs)",
                f"{each.wall_ms_per_item:.3f} ms",
                f"step alone {each.step_ms_per_item:.3f} ms/item",
            )
        ratio = large.wall_ms_per_item / small.wall_ms_per_item
        report.add(
            "for_each cost per item, 1000 vs 100", f"{ratio:.2f}x",
            f"<= {TARGET_FOR_EACH_RATIO:.0f}x", verdict(ratio <= TARGET_FOR_EACH_RATIO),
        )
        progress("verifying the audit chain")
        with sessions() as session:
            chain = audit.verify(session)
        if not chain.ok:
            raise BenchFailure(f"audit chain broken at row {chain.first_broken_id}: {chain.reason}")
        report.add("audit chain", f"{chain.checked:,} rows", "verified")
    finally:
        engine.dispose()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="a PostgreSQL database on the server to use (a scratch database "
                             "is created beside it)")
    parser.add_argument("--runs", type=int, default=1000, help="runs per throughput measure")
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke test)")
    parser.add_argument("--serve-worker", metavar="ID", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_worker:
        serve_worker(args.url, args.serve_worker)
        return 0
    runs = min(args.runs, 200) if args.quick else args.runs
    if not make_url(args.url).get_backend_name() == "postgresql":
        parser.error("--url must name a PostgreSQL database")
    started, ticks = time.monotonic(), cpu_ticks()
    try:
        with scratch_database(args.url) as url:
            with psycopg.connect(libpq(url)) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            print(f"Riposte engine benchmark: PostgreSQL {version[0] if version else '?'} at "
                  f"{make_url(url).host}, database {make_url(url).database}, "
                  f"{os.cpu_count()} CPUs\n", flush=True)
            report = run_benchmark(url, runs, args.quick)
    except BenchFailure as exc:
        print(f"CORRECTNESS FAILURE: {exc}", file=sys.stderr)
        return 1
    report.print()
    print_total(started, ticks)
    return 0


if __name__ == "__main__":
    sys.exit(main())

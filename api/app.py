"""Build the FastAPI app: database, playbook library, metrics, routers, and optional workers."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import REGISTRY, CollectorRegistry, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from api import errors, http_metrics, refusals
from api.console import mount as console
from api.deps import Runtime
from api.limits import BodyLimitMiddleware
from api.refused_requests import RefusedRequestsMiddleware
from api.request_ids import RequestIdMiddleware
from api.routes import ROUTERS
from core.logs import access_log
from core.settings import Settings, get_settings
from engine import wakeup
from engine.library import PlaybookLibrary
from engine.liveness import InProcessWorker, UnattendedWatch
from engine.metrics import DatabaseCounts, DatabaseGauges, PlaybookGauges
from engine.slack.interactions import SlackInteractions
from engine.sns import CertificateStore, ConfirmSubscription, confirm_subscription_over_https
from engine.store.approvals import count_pending
from engine.store.db import make_engine, make_sessionmaker
from engine.store.runs import count_by_status
from engine.store.timeline import oldest_pending_request_at
from engine.store.types import utcnow
from engine.store.workers import count_live
from engine.worker import Worker, default_worker_id

log = logging.getLogger("riposte.api")

WORKER_JOIN_SECONDS = 10.0


def create_app(
    settings: Settings | None = None,
    *,
    in_process_workers: int = 0,
    confirm_subscription: ConfirmSubscription = confirm_subscription_over_https,
) -> FastAPI:
    """Return the API app; with ``in_process_workers`` it also runs that many worker threads.

    ``confirm_subscription`` visits an SNS SubscribeURL (tests pass one that records it).
    """
    settings = settings or get_settings()
    access_log(settings.access_log)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    library = PlaybookLibrary(settings.playbook_dir)
    registry = CollectorRegistry(auto_describe=False)
    # Per app, never the global registry: a process (a test run) may build many apps.
    registry.register(DatabaseGauges(
        lambda: _gauge_counts(sessions, silent_after=settings.worker_silent_after)))
    registry.register(PlaybookGauges(library.counts))
    registry.register(_ProcessMetrics())
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        library=library,
        registry=registry,
        sns_certificates=CertificateStore(cert_dir=settings.sns_cert_dir),
        confirm_subscription=confirm_subscription,
    )
    app = FastAPI(
        title="Riposte",
        summary="Automated incident response for AWS: alerts in, playbooks run, all audited.",
        version="0.1.0",
        lifespan=_lifespan(runtime, in_process_workers),
    )
    app.state.runtime = runtime
    # Buttons pressed in Riposte's Slack messages (api/routes/slack.py); None without a bot token.
    app.state.slack = SlackInteractions.from_settings(sessions, settings)
    app.state.workers = []  # the in-process workers, once started (/readyz looks at them)
    errors.install(app)
    # The last added is the outermost: the catch-all also covers the body limit, and the
    # refusals' count sees the body limit's 413s.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RefusedRequestsMiddleware)
    app.add_middleware(errors.CatchAllMiddleware)
    http_metrics.instrument(app, registry)
    for router in ROUTERS:
        app.include_router(router)
    # After the API's error handlers and middleware: the console wraps both for its pages.
    console.install(app, settings)
    # Outermost of all, the console's included: every line a request causes carries its id.
    app.add_middleware(RequestIdMiddleware)
    return app


def _lifespan(
    runtime: Runtime, workers: int
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        app.state.workers = [_start_worker(runtime, n, stop) for n in range(1, workers + 1)]
        watch = _watch_unattended_runs(runtime, stop)
        summaries = asyncio.create_task(
            refusals.write_summaries_every_window(runtime.refusals, runtime.sessions))
        try:
            yield
        finally:
            summaries.cancel()
            stop.set()
            wakeup.signal()
            for worker in app.state.workers:
                worker.thread.join(WORKER_JOIN_SECONDS)
                if worker.thread.is_alive():
                    # Its step goes on in a daemon thread; the run's lease lapses and another
                    # worker resumes it, so nothing is lost by not waiting longer.
                    log.warning("%s still busy at shutdown; not waiting for it", worker.thread.name)
            watch.join(WORKER_JOIN_SECONDS)
            await run_in_threadpool(refusals.write_summaries, runtime.refusals, runtime.sessions,
                                    end_window=True)
            runtime.engine.dispose()

    return lifespan


def _start_worker(runtime: Runtime, number: int, stop: threading.Event) -> InProcessWorker:
    settings = runtime.settings
    worker = Worker(
        sessions=runtime.sessions,
        worker_id=f"{settings.worker_id or default_worker_id()}:api-{number}",
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.worker_poll_seconds,
        approval_expiry=settings.approval_expires_in,
        settings=settings,
    )
    in_process = InProcessWorker(worker, name=f"riposte-worker-api-{number}")
    in_process.start(stop)
    return in_process


def _watch_unattended_runs(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    # Here, not in the workers: when no worker is live, none can tell.
    settings = runtime.settings
    watch = UnattendedWatch(sessions=runtime.sessions, after=settings.run_unattended_after,
                            silent_after=settings.worker_silent_after)
    thread = threading.Thread(target=watch.run, args=(stop, settings.worker_heartbeat_seconds),
                              daemon=True, name="riposte-unattended-watch")
    thread.start()
    return thread


class _ProcessMetrics(Collector):
    """This process's metrics (counters, histograms) from the default registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def _gauge_counts(sessions: sessionmaker[Session], *, silent_after: float) -> DatabaseCounts:
    with sessions() as session:
        oldest = oldest_pending_request_at(session)
        return DatabaseCounts(
            runs_by_status=count_by_status(session), approvals_pending=count_pending(session),
            oldest_pending_seconds=(utcnow() - oldest).total_seconds() if oldest else 0.0,
            workers_live=count_live(session, silent_after=silent_after))

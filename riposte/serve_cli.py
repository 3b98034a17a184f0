"""``riposte serve`` and ``riposte worker``: the HTTP API and the processes that drive runs."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from core.settings import Settings
from riposte.database import session_factory
from riposte.terminal import fail
from riposte.user_errors import load_settings, user_errors


def log_setting_warnings(settings: Settings, *, serving: bool = False) -> None:
    """Log, once at start-up, each setting that is valid but has no effect, and each RIPOSTE_*
    variable that names no setting."""
    for warning in settings.warnings(serving=serving):
        logging.getLogger("riposte.settings").warning(warning)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [RIPOSTE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [RIPOSTE_PORT].")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=0, help="In-process worker threads; 0 when `riposte worker` processes run runs."
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (and, by default, one in-process worker)."""
    import uvicorn

    from api.app import create_app
    from core.logs import configure

    settings = load_settings()
    configure(settings.log_level)
    log_setting_warnings(settings, serving=True)
    with user_errors():
        application = create_app(settings, in_process_workers=workers)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        log_config=None,
    )


def worker(
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Worker name [RIPOSTE_WORKER_ID]; default host:pid.")
    ] = None,
) -> None:
    """Claim and drive runs until SIGTERM or Ctrl-C.

    Only settings it cannot use stop it, at start-up (exit 1). Any later error is logged and
    counted, and the worker goes on; a database that goes away is waited for.
    """
    from core.logs import configure
    from engine import wakeup
    from engine.worker import Worker
    from riposte.worker_probes import serve_probes

    settings = load_settings()
    configure(settings.log_level)
    log_setting_warnings(settings)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        wakeup.signal()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with user_errors():
        working = Worker(
            sessions=session_factory(settings),
            worker_id=worker_id or settings.worker_id,
            lease_seconds=settings.lease_seconds,
            poll_seconds=settings.worker_poll_seconds,
            approval_expiry=settings.approval_expires_in,
            settings=settings,
        )
    port = settings.worker_metrics_port
    if port is not None:
        try:
            serve_probes(port=port, problem=working.problem)
        except OSError as exc:
            fail(f"RIPOSTE_WORKER_METRICS_PORT: cannot listen on port {port}: "
                 f"{exc.strerror or exc}")
    working.serve(stop)

"""What a standalone `riposte worker` answers on RIPOSTE_WORKER_METRICS_PORT: ``/metrics`` (its
Prometheus metrics) and ``/healthz`` (200 while it works, 503 saying why when it does not)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

log = logging.getLogger("riposte.worker")

StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds the worker's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a probe every few seconds is not news; the worker logs what matters


def serve_probes(
    *, port: int, problem: Callable[[], str | None], host: str = "0.0.0.0"
) -> WSGIServer:
    """Serve ``/metrics`` and ``/healthz`` on ``port`` from a daemon thread.

    ``problem`` says why the worker is not working, or None when it is. Raises ``OSError``
    when the port cannot be listened on.
    """
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            found = problem()
            status = "200 OK" if found is None else "503 Service Unavailable"
            body = {"status": "ok"} if found is None else {"error": "unavailable",
                                                          "message": found}
            return _json(start_response, status, body)
        if path == "/metrics":
            answer: Iterable[bytes] = metrics(environ, start_response)
            return answer
        return _json(start_response, "404 Not Found",
                     {"error": "not_found", "message": f"no {path}: try /healthz or /metrics"})

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="riposte-probes").start()
    log.info("worker probes on port %d: /healthz, /metrics", port)
    return server


def _json(start_response: StartResponse, status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]

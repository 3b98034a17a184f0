"""A real OpenID Connect provider for tests: oidc-provider-mock served on localhost in a thread.

It is a standards-compliant provider (discovery, JWKS, authorization and token endpoints,
userinfo), not a mock of Riposte's client. People sign in through its authorization form
(``sub``), with the claims set beforehand by ``PUT /users/<sub>``. The server also keeps every
request made to its authorization and token endpoints, so a test can check what Riposte sent
(the PKCE challenge, then the verifier) against its own computation.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import werkzeug.serving

with warnings.catch_warnings():
    # The provider is built on authlib's older jose module, which authlib now deprecates.
    warnings.simplefilter("ignore", DeprecationWarning)
    import oidc_provider_mock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Where the provider listens: another host than the Riposte under test (127.0.0.1), so that
# their cookies stay apart, as a real provider's and Riposte's do.
HOST = "localhost"


@dataclass
class SeenRequest:
    """One request the provider received: its path and its query or form parameters."""

    path: str
    params: dict[str, str]


@dataclass
class LocalProvider:
    """The provider under test: its issuer and the requests it received, oldest first."""

    issuer: str
    seen: list[SeenRequest] = field(default_factory=list)

    def requests_to(self, path: str) -> list[dict[str, str]]:
        """Return the parameters of each request to ``path`` (e.g. /oauth2/token)."""
        return [request.params for request in self.seen if request.path == path]


class _Recording:
    """WSGI middleware: note each request's parameters, then let the provider answer it."""

    def __init__(self, app: WSGIApplication, seen: list[SeenRequest]) -> None:
        self.app = app
        self.seen = seen

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        params = parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            params |= parse_qs(body.decode("utf-8"))
            environ["wsgi.input"] = io.BytesIO(body)
        self.seen.append(SeenRequest(environ["PATH_INFO"],
                                     {name: values[-1] for name, values in params.items()}))
        return self.app(environ, start_response)


@contextmanager
def serving_provider(**options: Any) -> Iterator[LocalProvider]:
    """Serve a fresh provider (``options``: oidc_provider_mock.app's) and yield it."""
    seen: list[SeenRequest] = []
    app = _Recording(oidc_provider_mock.app(**options), seen)
    server = werkzeug.serving.make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True, name="oidc-provider")
    thread.start()
    try:
        yield LocalProvider(issuer=f"http://{HOST}:{server.server_port}", seen=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

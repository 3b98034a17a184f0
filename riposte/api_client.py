"""The Riposte HTTP API as the CLI's commands reach it: one token, one line for any failure.

``riposte runs``, ``alerts`` and ``approvals`` talk to the API at RIPOSTE_API_URL, never to the
database: every read and decision is the token's, and the audit log names it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

import typer

from riposte.terminal import fail, one_line
from riposte.user_errors import load_settings

if TYPE_CHECKING:
    import httpx

HTTP_TIMEOUT_SECONDS = 30.0
# Items asked per page of a list: at most what the API's list limit allows, old or new.
PAGE_SIZE = 100

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="RIPOSTE_TOKEN",
        show_envvar=True,
        show_default=False,
        help="A responder or admin API token; better given in RIPOSTE_TOKEN than on the command "
        "line, where other users can see it.",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON document, for scripts.")
]


class ApiClient:
    """The Riposte HTTP API as one token sees it; any failure ends the command with one line."""

    def __init__(self, http: httpx.Client, api_url: str) -> None:
        self._http = http
        self._api_url = api_url

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """Return the answer to ``GET path`` (with the query ``params``) as JSON."""
        # No ``params`` at all when none are given: httpx would drop the query ``path`` holds.
        return self._call("GET", path, **({"params": dict(params)} if params else {}))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """Return the answer to ``POST path`` with the JSON ``body`` as JSON."""
        return self._call("POST", path, json=body)

    def listing(
        self, path: str, key: str, *, limit: int, params: Mapping[str, str | int] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return the first ``limit`` items of a list (``{key: [...], "next": link}``),
        following the ``next`` links, and the link to the rest (None when there is no more).

        A server that answers no ``next`` (lists paged by ``offset``, the API's earlier shape)
        is paged by offset, and the link to the rest is one with an ``offset``.
        """
        import httpx

        items: list[dict[str, Any]] = []
        asked = min(limit, PAGE_SIZE)
        query: dict[str, str | int] = {**(params or {}), "limit": asked}
        answer = self.get(path, query)
        while True:
            page = answer[key]
            items += page[: limit - len(items)]
            more = len(items) < limit
            if "next" in answer:
                link = answer["next"]
                if not link or not more:
                    return items, link
                following = httpx.URL(link).copy_set_param(
                    "limit", str(min(limit - len(items), PAGE_SIZE)))
                answer = self.get(str(following))
            else:  # the older shape: no link, limit and offset
                if not page or len(page) < asked:
                    return items, None
                rest = {**query, "offset": len(items)}
                if not more:  # one more item says whether the rest is empty
                    beyond = self.get(path, {**rest, "limit": 1})[key]
                    return items, f"{path}?{urlencode(rest)}" if beyond else None
                asked = min(limit - len(items), PAGE_SIZE)
                answer = self.get(path, {**rest, "limit": asked})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.InvalidURL as exc:
            fail(f"RIPOSTE_API_URL is not a usable URL: {self._api_url} ({exc})")
        except httpx.TransportError as exc:
            why = one_line(str(exc)) or type(exc).__name__
            fail(
                f"cannot reach the Riposte API at {self._api_url} ({why}); is `riposte serve` "
                "running there? RIPOSTE_API_URL names it"
            )
        if response.status_code >= 400:
            fail(f"{response.status_code} {_api_message(response)}")
        try:
            return response.json()
        except ValueError:
            fail(f"{method} {path} answered {response.status_code} with a body that is not JSON")


@contextmanager
def api_client(token: str | None) -> Iterator[ApiClient]:
    """Yield a client of the API at RIPOSTE_API_URL that sends ``token``."""
    import httpx

    if not token:
        fail("no API token: set RIPOSTE_TOKEN (or pass --token) to a responder or admin token")
    if not all("!" <= char <= "~" for char in token):
        # Never echoed: even a mistyped token may be most of a real one.
        fail("the API token holds spaces, control or non-ASCII characters; check RIPOSTE_TOKEN "
              "or --token")
    api_url = load_settings().api_url
    if not api_url.startswith(("http://", "https://")):
        fail(f"RIPOSTE_API_URL must be an http:// or https:// URL, not {_shown_url(api_url)!r}")
    try:
        http = httpx.Client(
            base_url=api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except (httpx.InvalidURL, ValueError) as exc:
        fail(f"RIPOSTE_API_URL is not a usable URL: {_shown_url(api_url)} ({exc})")
    with http:
        yield ApiClient(http, _shown_url(api_url))


def quoted(identifier: str) -> str:
    """Return an id fit for a URL path segment (a ``/`` in it cannot name another route)."""
    return quote(identifier, safe="")


def _api_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    # An RFC 9457 problem's ``detail``; ``message`` in the API's earlier error shape.
    for member in ("detail", "message"):
        if isinstance(body, dict) and isinstance(body.get(member), str):
            return one_line(body[member])
    return one_line(response.reason_phrase or response.text[:200])


def _shown_url(url: str) -> str:
    """Return the API URL fit for printing: without any user or password in it."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url

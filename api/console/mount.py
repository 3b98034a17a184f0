"""Putting the console into the app: its routers, its assets, its headers, its error pages."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.console import decisions, oidc, routes, signin
from api.console.access import HOME, SignedOut, sign_in_url
from api.console.csrf import CsrfRefused
from api.console.headers import STATIC_PREFIX, ConsoleHeadersMiddleware, is_console_path
from api.console.pages import STATIC, render
from api.console.sessions import end_session, has_session_cookie, install_signer
from core.settings import Settings

ROUTERS = (signin.router, oidc.router, routes.router, decisions.router)
Handler = Callable[[Request, Exception], Any]
# Headers of an API error answer that a page keeps (not its type, length or auth challenge).
_KEPT_HEADERS = ("retry-after",)


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console under ``/ui/`` (``/`` redirects there).

    Call after the API's error handlers and middleware are installed: the console's answers
    its errors as pages, and its headers cover every answer, a 500 included.
    """
    install_signer(app, settings)
    for router in ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PREFIX.rstrip("/"), StaticFiles(directory=STATIC), name="console-static")
    for exception, handler in list(app.exception_handlers.items()):
        if exception is not WebSocketRequestValidationError:
            app.exception_handlers[exception] = _as_page_on_console_paths(handler)
    app.add_exception_handler(SignedOut, _signed_out)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_middleware(ConsoleHeadersMiddleware)


def _as_page_on_console_paths(handler: Handler) -> Callable[[Request, Exception],
                                                             Awaitable[Response]]:
    """Wrap an API error handler: on a console path, its message becomes an error page."""

    async def handle(request: Request, exc: Exception) -> Response:
        answer = handler(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        path = request.url.path
        if not is_console_path(path) or path.startswith(STATIC_PREFIX):
            return response
        headers = {name: value for name, value in response.headers.items()
                   if name.lower() in _KEPT_HEADERS}
        return render("error.html", status=response.status_code, headers=headers,
                      viewer=None, nav="", error_message=_message(response))

    return handle


def _message(response: Response) -> str:
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return "Something went wrong."
    message = body.get("detail") if isinstance(body, dict) else None
    return str(message) if message else "Something went wrong."


async def _signed_out(request: Request, exc: Exception) -> Response:
    """Send the person to sign in, and back to the page after (htmx: the whole page goes)."""
    assert isinstance(exc, SignedOut)
    response: Response
    if request.headers.get("hx-request"):
        response = Response(status_code=401,
                            headers={"HX-Redirect": sign_in_url(HOME, exc.why)})
    else:
        back = None
        if request.method == "GET":
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(sign_in_url(back, exc.why), status_code=303)
    if has_session_cookie(request):
        end_session(response)
    return response


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return render("error.html", status=403, viewer=None, nav="", error_message=(
        "Refused: the form did not come from a page of this console, or its page is too old. "
        "Nothing was done; reload the page and try again."))

"""``riposte approvals``: list, show and decide approval requests through the HTTP API.

Decisions go through the API, never straight to the database: each one must carry the identity
of the token that made it (RIPOSTE_TOKEN or --token; the audit log records its name).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

from engine.modes import mode_label, rehearsal_mark
from riposte.terminal import one_line, print_table, shown, when

if TYPE_CHECKING:
    import httpx

approvals_app = typer.Typer(
    help="Approval requests, through the HTTP API at RIPOSTE_API_URL with RIPOSTE_TOKEN.",
    no_args_is_help=True,
)

HTTP_TIMEOUT_SECONDS = 30.0
_SUMMARY_CALLS = 3
_SUMMARY_CHARS = 160

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
RequestId = Annotated[str, typer.Argument(help="The approval request's id.")]
Reason = Annotated[
    str, typer.Option("--reason", help="Why: it is stored with the decision and audited.")
]
PlanHash = Annotated[
    str | None,
    typer.Option(
        "--plan-hash",
        help="The plan hash you reviewed (`riposte approvals show`); refuse to decide if the "
        "request's plan is no longer that one.",
    ),
]


class ApiClient:
    """The Riposte HTTP API as one token sees it; any failure ends the command with one line."""

    def __init__(self, http: httpx.Client, api_url: str) -> None:
        self._http = http
        self._api_url = api_url

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.InvalidURL as exc:
            _fail(f"RIPOSTE_API_URL is not a usable URL: {self._api_url} ({exc})")
        except httpx.TransportError as exc:
            why = one_line(str(exc)) or type(exc).__name__
            _fail(
                f"cannot reach the Riposte API at {self._api_url} ({why}); is `riposte serve` "
                "running there? RIPOSTE_API_URL names it"
            )
        if response.status_code >= 400:
            _fail(f"{response.status_code} {_api_message(response)}")
        try:
            return response.json()
        except ValueError:
            _fail(f"{method} {path} answered {response.status_code} with a body that is not JSON")


@contextmanager
def api_client(token: str | None) -> Iterator[ApiClient]:
    """Yield a client of the API at RIPOSTE_API_URL that sends ``token``."""
    import httpx

    from riposte.cli import load_settings

    if not token:
        _fail("no API token: set RIPOSTE_TOKEN (or pass --token) to a responder or admin token")
    if not all("!" <= char <= "~" for char in token):
        # Never echoed: even a mistyped token may be most of a real one.
        _fail("the API token holds spaces, control or non-ASCII characters; check RIPOSTE_TOKEN "
              "or --token")
    api_url = load_settings().api_url
    if not api_url.startswith(("http://", "https://")):
        _fail(f"RIPOSTE_API_URL must be an http:// or https:// URL, not {_shown_url(api_url)!r}")
    try:
        http = httpx.Client(
            base_url=api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except (httpx.InvalidURL, ValueError) as exc:
        _fail(f"RIPOSTE_API_URL is not a usable URL: {_shown_url(api_url)} ({exc})")
    with http:
        yield ApiClient(http, _shown_url(api_url))


@approvals_app.command("list")
def list_pending(token: TokenOption = None) -> None:
    """List the pending requests you may still decide: id, run, mode, step, approvals, expiry.

    A rehearsal's request (a dry run's) shows as such: approving it changes nothing in AWS.
    """
    with api_client(token) as api:
        requests = api.get("/v1/approvals?status=pending")["approvals"]
    if not requests:
        typer.echo("no pending approval request you may decide")
        return
    rows = [("ID", "RUN", "MODE", "STEP", "REQUIRED", "EXPIRES")] + [
        (r["id"], r["run_id"], mode_label(r["mode"]), r["step_id"], str(r["required"]),
         when(r["expires_at"]))
        for r in requests
    ]
    print_table(rows)


@approvals_app.command("show")
def show(request_id: RequestId, token: TokenOption = None) -> None:
    """Show a request: its plan, the plan hash, the decisions so far and who else may decide."""
    with api_client(token) as api:
        request = api.get(f"/v1/approvals/{quoted(request_id)}")
    typer.echo(f"{rehearsal_mark(request['mode'])}approval request {request['id']}: "
               f"{request['status']}")
    typer.echo(f"  run {request['run_id']} ({request['mode']}), step {request['step_id']}")
    pending = request["status"] == "pending"
    needed = f", {request['approvals_needed']} still needed" if pending else ""
    typer.echo(f"  {request['required']} approval(s) required{needed}")
    typer.echo(f"  created {when(request['created_at'])}, expires {when(request['expires_at'])}")
    if request.get("decided_at"):
        typer.echo(f"  settled {when(request['decided_at'])}")
    typer.echo(f"plan_hash: {request['plan_hash']}")
    typer.echo("plan:")
    for line in json.dumps(request["plan"], indent=2, ensure_ascii=False).splitlines():
        typer.echo(f"  {shown(line)}")
    typer.echo("decisions:" if request["decisions"] else "decisions: none yet")
    for decision in request["decisions"]:
        typer.echo(f"  {when(decision['created_at'])}  {decision['actor']} "
                   f"{decision['decision']}: {one_line(decision['reason'])}")
    typer.echo(f"who else may decide: {one_line(request['deciders']['summary'])}")


@approvals_app.command("approve")
def approve(
    request_id: RequestId, reason: Reason, plan_hash: PlanHash = None, token: TokenOption = None
) -> None:
    """Approve a request: the plan it shows (and its hash) is what you approve."""
    _decide("approve", request_id, reason=reason, reviewed_hash=plan_hash, token=token)


@approvals_app.command("reject")
def reject(
    request_id: RequestId, reason: Reason, plan_hash: PlanHash = None, token: TokenOption = None
) -> None:
    """Reject a request: the step does not run and the run ends rejected."""
    _decide("reject", request_id, reason=reason, reviewed_hash=plan_hash, token=token)


def _decide(
    decision: Literal["approve", "reject"],
    request_id: str,
    *,
    reason: str,
    reviewed_hash: str | None,
    token: str | None,
) -> None:
    with api_client(token) as api:
        path = f"/v1/approvals/{quoted(request_id)}"
        request = api.get(path)
        current = request["plan_hash"]
        if reviewed_hash is not None and reviewed_hash.strip().lower() != current:
            _fail(
                f"the plan of approval request {request['id']} is {current}, not the "
                f"{reviewed_hash.strip()} you reviewed; nothing was decided. Review it again "
                f"with `riposte approvals show {request['id']}`"
            )
        typer.echo(f"plan_hash: {current}")
        typer.echo(f"{rehearsal_mark(request['mode'])}plan: {plan_summary(request['plan'])}")
        # The hash sent is the one just shown: if the plan changes meanwhile, the API refuses.
        decided = api.post(f"{path}/decision",
                           {"decision": decision, "reason": reason, "plan_hash": current})
    verb = "approved" if decision == "approve" else "rejected"
    status = decided["status"]
    pending = status == "pending"
    still = f" ({decided['approvals_needed']} more approval(s) needed)" if pending else ""
    typer.echo(f"{verb} approval request {decided['id']}: it is now {status}{still}")
    if pending:
        typer.echo(f"who else may decide: {one_line(decided['deciders']['summary'])}")


def plan_summary(plan: dict[str, Any]) -> str:
    """Say in one line what a plan would do: per step, its action and calls, or its parameters.

    A plan covering later steps tells them in order after its own (``…; then step …``).
    """
    return one_line("; then ".join(_step_summary(part) for part in plan_parts(plan)))


def plan_parts(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The approved step's plan, then the plans of the later steps it covers."""
    covers = plan.get("covers")
    return [plan, *(sub for sub in covers if isinstance(sub, dict))] if isinstance(
        covers, list
    ) else [plan]


def _step_summary(plan: dict[str, Any]) -> str:
    head = f"step {plan.get('step', '?')}: {plan.get('action', '?')}"
    calls = [call for call in _flat(plan.get("calls")) if isinstance(call, dict)]
    if calls:
        shown = "; ".join(_call_brief(call) for call in calls[:_SUMMARY_CALLS])
        more = f"; and {len(calls) - _SUMMARY_CALLS} more" if len(calls) > _SUMMARY_CALLS else ""
        return f"{head}, {len(calls)} call(s): {shown}{more}"
    if plan.get("unplannable"):
        return f"{head}, approved for no call (cannot be planned now: {plan['unplannable']})"
    params = json.dumps(plan.get("params", {}), ensure_ascii=False, sort_keys=True, default=str)
    if len(params) > _SUMMARY_CHARS:
        params = params[: _SUMMARY_CHARS - 1] + "…"
    return f"{head} with {params}"


def _flat(calls: Any) -> list[Any]:
    # One list of calls per parameter set (a for_each step has several).
    if not isinstance(calls, list):
        return []
    return [call for item in calls for call in (item if isinstance(item, list) else [item])]


def _call_brief(call: dict[str, Any]) -> str:
    name = ".".join(str(part) for part in (call.get("service"), call.get("operation")) if part)
    target = call.get("target")
    return f"{name or '?'}" + (f" on {target}" if target else "")


def _api_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return one_line(body["message"])
    return one_line(response.reason_phrase or response.text[:200])


def _fail(message: str) -> NoReturn:
    from riposte.terminal import fail

    fail(message)





def quoted(request_id: str) -> str:
    from urllib.parse import quote

    return quote(request_id, safe="")


def _shown_url(url: str) -> str:
    """Return the API URL fit for printing: without any user or password in it."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url

"""``riposte approvals``: list, show and decide approval requests through the HTTP API.

Decisions go through the API, never straight to the database: each one must carry the identity
of the token that made it (RIPOSTE_TOKEN or --token; the audit log records its name).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer

from engine.modes import mode_label, rehearsal_mark
from engine.render import parsed_time, plan_lines, plan_summary, time_left
from riposte.api_client import AsJson, TokenOption, api_client, quoted
from riposte.terminal import fail, one_line, print_json, print_table, say, when

approvals_app = typer.Typer(
    help="Approval requests, through the HTTP API at RIPOSTE_API_URL with RIPOSTE_TOKEN.",
    no_args_is_help=True,
)

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


@approvals_app.command("list")
def list_pending(as_json: AsJson = False, token: TokenOption = None) -> None:
    """List the pending requests you may still decide: id, run, mode, step, approvals, expiry.

    A rehearsal's request (a dry run's) shows as such: approving it changes nothing in AWS.
    """
    with api_client(token) as api:
        answer = api.get("/v1/approvals", {"status": "pending"})
    if as_json:
        print_json(answer)
        return
    requests = answer["approvals"]
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
def show(request_id: RequestId, as_json: AsJson = False, token: TokenOption = None) -> None:
    """Show a request: its plan by step and operation, the plan hash, the decisions so far,
    who else may decide and the time left."""
    with api_client(token) as api:
        request = api.get(f"/v1/approvals/{quoted(request_id)}")
    if as_json:
        print_json(request)
        return
    for line in describe_request(request, now=datetime.now(UTC)):
        say(line)


def describe_request(request: dict[str, Any], *, now: datetime) -> list[str]:
    """Return the lines ``riposte approvals show`` prints for a request as the API answers it."""
    pending = request["status"] == "pending"
    needed = f", {request['approvals_needed']} still needed" if pending else ""
    expires = parsed_time(request["expires_at"])
    left = f" ({time_left(expires, now)})" if pending and expires else ""
    lines = [
        f"{rehearsal_mark(request['mode'])}approval request {request['id']}: "
        f"{request['status']}",
        f"  run {request['run_id']} ({request['mode']}), step {request['step_id']}",
        f"  {request['required']} approval(s) required{needed}",
        f"  created {when(request['created_at'])}, expires {when(request['expires_at'])}{left}",
    ]
    if request.get("decided_at"):
        lines.append(f"  settled {when(request['decided_at'])}")
    if request["plan"].get("reason"):
        lines.append("  " + one_line(f"why: {request['plan']['reason']}"))
    lines.append(f"plan_hash: {request['plan_hash']}")
    first, *rest = plan_lines(request["plan"])
    lines += [f"plan: {first} (every parameter: --json)", *rest]
    lines.append("decisions:" if request["decisions"] else "decisions: none yet")
    for decision in request["decisions"]:
        lines.append(f"  {when(decision['created_at'])}  {decision['actor']} "
                     f"{decision['decision']}: {one_line(decision['reason'])}")
    lines.append(f"who else may decide: {one_line(request['deciders']['summary'])}")
    if pending:
        lines.append(f"decide: riposte approvals approve {request['id']} --plan-hash "
                     f"{request['plan_hash']} --reason '…' (or reject)")
    return lines


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
            fail(
                f"the plan of approval request {request['id']} is {current}, not the "
                f"{reviewed_hash.strip()} you reviewed; nothing was decided. Review it again "
                f"with `riposte approvals show {request['id']}`"
            )
        typer.echo(f"plan_hash: {current}")
        typer.echo(one_line(f"{rehearsal_mark(request['mode'])}plan: "
                            f"{plan_summary(request['plan'])}"))
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

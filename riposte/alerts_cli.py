"""``riposte alerts``: the stored alerts and the runs that see them, through the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from engine.render import alert_rows, brief_json, count, principal_name, run_rows
from riposte.api_client import AsJson, TokenOption, api_client, quoted
from riposte.terminal import print_json, print_table, say, when

alerts_app = typer.Typer(
    help="Alerts, through the HTTP API at RIPOSTE_API_URL with RIPOSTE_TOKEN.",
    no_args_is_help=True,
)

AlertId = Annotated[str, typer.Argument(help="The alert's id.")]


@alerts_app.command("list")
def list_alerts(
    limit: Annotated[int, typer.Option(min=1, help="At most this many alerts.")] = 20,
    as_json: AsJson = False,
    token: TokenOption = None,
) -> None:
    """List alerts, newest first: id, severity, source, title, principal, last seen, times seen."""
    with api_client(token) as api:
        alerts, more = api.listing("/v1/alerts", "alerts", limit=limit)
    if as_json:
        print_json({"alerts": alerts, "next": more})
        return
    if not alerts:
        typer.echo("no alert yet")
        return
    print_table(alert_rows(alerts))
    if more:
        typer.echo(f"{count(len(alerts), 'alert')} shown, more exist: --limit {len(alerts) * 2}",
                   err=True)


@alerts_app.command("show")
def show(alert_id: AlertId, as_json: AsJson = False, token: TokenOption = None) -> None:
    """Show an alert: what, who, from where, to what, when, and the runs that see it."""
    with api_client(token) as api:
        alert = api.get(f"/v1/alerts/{quoted(alert_id)}")
        runs, _ = api.listing("/v1/runs", "runs", limit=1000, params={"alert_id": alert["id"]})
    if as_json:
        print_json(alert)
        return
    for line in describe_alert(alert):
        say(line)
    if runs:
        say(f"runs ({len(runs)}):")
        rows = run_rows(runs)
        print_table([("", *rows[0]), *(("", *row) for row in rows[1:])])
    else:
        say("runs: none (no playbook's trigger matched it)")


def describe_alert(alert: dict[str, Any]) -> list[str]:
    """Return the lines ``riposte alerts show`` prints for an alert as
    ``GET /v1/alerts/{id}`` gives it."""
    principal = alert.get("principal") or {}
    who = principal_name(principal)
    lines = [
        " ".join(f"alert {alert['id']}: {alert['title']}".split()),
        f"  severity {alert['severity_label']} ({alert['severity']}), "
        f"{alert['source']}/{alert['kind']}" + (f" {alert['type']}" if alert.get("type") else ""),
        f"  account {alert.get('account') or '-'}, region {alert.get('region') or '-'}",
    ]
    if who:
        kind = f" ({principal['type']})" if principal.get("type") else ""
        mfa = {True: ", MFA used", False: ", MFA not used"}.get(alert["mfa_used"], "") \
            if isinstance(alert.get("mfa_used"), bool) else ""
        lines.append(f"  principal {who}{kind}{mfa}")
    if alert.get("event_name") or alert.get("event_time"):
        lines.append(f"  event {alert.get('event_name') or '-'} at "
                     f"{when(alert['event_time']) if alert.get('event_time') else '-'}")
    if alert.get("source_ip") or alert.get("user_agent"):
        lines.append(f"  from {alert.get('source_ip') or '-'}"
                     + (f", user agent {alert['user_agent']}" if alert.get("user_agent") else ""))
    lines.append(f"  seen {count(alert['occurrences'], 'time')}: first {when(alert['first_seen'])}"
                 f", last {when(alert['last_seen'])}")
    resources = alert.get("resources") or []
    lines.append(f"resources ({len(resources)}):" if resources else "resources: none")
    for resource in resources:
        lines.append(f"  {resource.get('type')} {resource.get('id')}"
                     + (f" ({resource['region']})" if resource.get("region") else ""))
    if alert.get("details") is not None:
        lines.append(f"details: {brief_json(alert['details'])} (all of it: --json)")
    return lines

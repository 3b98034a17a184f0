"""Tell people what a run did: a plain-text run summary, and a Slack-compatible webhook.

Alert contents are attacker-controlled: the summary treats every value as inert text (one
line each, control characters dropped, length capped) and never renders it as a template;
for Slack the text is then escaped (``&``, ``<``, ``>``) so an alert cannot mention
``@channel``, forge a link or break the message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import Field, SecretStr

from actions.base import Action, ActionContext, ActionError, ActionInput, PlannedCall
from actions.registry import register
from core.logs import keep_secret

SUMMARY_LIMIT = 3000  # a summary is meant to be read at a glance
FIELD_LIMIT = 200  # one alert value (a title, an ARN) in the summary
LISTED_LIMIT = 5  # resources named before "and N more"
DONE_LIMIT = 15  # lines of "what was done" before "and N more"
SLACK_SECTION_LIMIT = 3000  # Block Kit's limit on a section's text
WEBHOOK_TIMEOUT = 10.0
# Unicode categories that must not reach a reader: controls (line breaks included), format
# characters (bidi overrides that reorder text), line and paragraph separators.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp"}


def plain(value: object, limit: int = FIELD_LIMIT) -> str:
    """Return ``value`` as one line of inert text of at most ``limit`` characters.

    Line breaks and other control or format characters become spaces, so a value cannot
    forge extra lines ("Status: all clear") in the message it is put into.
    """
    if value is None:
        return ""
    text = "".join(" " if unicodedata.category(char) in _INVISIBLE else char for char in str(value))
    return shorten(" ".join(text.split()), limit)


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def render_summary(
    *,
    title: str,
    alert: Mapping[str, Any] | None = None,
    done: Sequence[str] = (),
    run_id: str | None = None,
    limit: int = SUMMARY_LIMIT,
) -> str:
    """Render a short plain-text summary of a run: the alert, what was done, the run id.

    ``alert`` is the run's alert as templates see it (``title``, ``severity_label``,
    ``account``, ``principal``, ``resources``…); each value is shown as plain text.
    """
    lines = [plain(title) or "Riposte"]
    if alert:
        lines.extend(_alert_lines(alert))
    steps = [line for line in (plain(step) for step in done) if line]
    if steps:
        lines.append("Done:")
        lines.extend(f"- {line}" for line in steps[:DONE_LIMIT])
        if len(steps) > DONE_LIMIT:
            lines.append(f"- … and {len(steps) - DONE_LIMIT} more")
    if plain(run_id):
        lines.append(f"Run: {plain(run_id, 80)}")
    return shorten("\n".join(lines), limit)


def _joined(values: Mapping[str, Any], keys: Sequence[str], limit: int, sep: str = " ") -> str:
    """The non-empty plain values of ``keys``, joined by ``sep``."""
    return sep.join(text for text in (plain(values.get(key), limit) for key in keys) if text)


def _alert_lines(alert: Mapping[str, Any]) -> list[str]:
    what = _joined(alert, ("title",), FIELD_LIMIT) or _joined(alert, ("type",), FIELD_LIMIT)
    origin = _joined(alert, ("source", "kind"), 40)
    lines = [f"Alert: {what or 'untitled alert'}" + (f" ({origin})" if origin else "")]
    label, score = plain(alert.get("severity_label"), 20), plain(alert.get("severity"), 8)
    if label:
        lines.append(f"Severity: {label}" + (f" ({score}/100)" if score else ""))
    where = ", ".join(
        f"{key} {text}" for key in ("account", "region") if (text := plain(alert.get(key), 64))
    )
    if where:
        lines.append(f"Where: {where}")
    principal = alert.get("principal")
    if isinstance(principal, Mapping):
        who, arn = _joined(principal, ("type", "name"), 80), plain(principal.get("arn"))
        if who or arn:
            lines.append(f"Principal: {who or arn}" + (f" ({arn})" if who and arn else ""))
    resources = [r for r in alert.get("resources") or [] if isinstance(r, Mapping)]
    named = [text for r in resources[:LISTED_LIMIT] if (text := _joined(r, ("type", "id"), 80))]
    if named:
        more = len(resources) - LISTED_LIMIT
        lines.append("Resources: " + ", ".join(named) + (f", and {more} more" if more > 0 else ""))
    return lines


def slack_escape(text: str) -> str:
    """Escape the three characters Slack reads as markup (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(text: str, limit: int) -> str:
    """Escape ``text`` for Slack, cut so that the escaped text is at most ``limit`` long."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    kept, size = [], 1  # room for the ellipsis
    for char in text:
        piece = slack_escape(char)
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


class SummaryInput(ActionInput):
    """What a notification says when the step gives no text of its own: the run summary."""

    title: str | None = Field(
        default=None,
        description="First line of the run summary; default: 'Riposte run <run id>'.",
    )
    done: list[str] = Field(
        default=[], description="What the run did, one line each, listed in the run summary."
    )


def summary_of(ctx: ActionContext, params: SummaryInput) -> str:
    """The run summary for a notification step: the alert, what was done, the run id."""
    return render_summary(
        title=params.title or f"Riposte run {ctx.run_id}",
        alert=ctx.alert,
        done=params.done,
        run_id=ctx.run_id,
    )


class WebhookInput(SummaryInput):
    url: SecretStr | None = Field(
        default=None,
        description="Incoming-webhook URL; default: RIPOSTE_NOTIFY_WEBHOOK_URL. Prefer the "
        "setting: a URL given here is stored with the step's parameters.",
    )
    text: str | None = Field(
        default=None,
        description="Message text (escaped for Slack, cut to 3000 characters); default: the "
        "run summary.",
    )
    blocks: bool = Field(
        default=False,
        description="Also send the text as a Block Kit section (verbatim: no auto-linking).",
    )
    timeout_seconds: float = Field(
        default=WEBHOOK_TIMEOUT, gt=0, le=60, description="Longest wait for the webhook's answer."
    )


@register
class PostWebhook(Action[WebhookInput]):
    """Post a message to a Slack-compatible incoming webhook (``{"text": ...}``).

    The URL is a secret: outputs, plans, errors and logs show only its host. The text (the run
    summary by default) is escaped for Slack and capped. A 429 or 5xx answer is a retryable
    step error, any other non-2xx is not; redirects are not followed. Not reversible: an
    incoming webhook cannot withdraw a message. Not idempotent either: webhooks take no
    idempotency key, so a retry after a lost answer may post twice.

    ```yaml
    - id: tell-slack
      action: notify.webhook
      with:
        title: "Riposte contained {{ alert.principal.name }}"
        done:
          - "access keys deactivated"
          - "console password deleted"
    ```
    """

    name = "notify.webhook"
    Input = WebhookInput
    mutating = True  # it posts a message: in dry-run only the plan is made

    def plan(self, ctx: ActionContext, params: WebhookInput) -> list[PlannedCall]:
        url = _webhook_url(ctx, params)
        host = _host(url)
        return [
            PlannedCall(
                service="webhook",
                operation="POST",
                params={"host": host, "payload": _payload(ctx, params)},
                target=host,
            )
        ]

    def run(self, ctx: ActionContext, params: WebhookInput) -> dict[str, Any]:
        if ctx.dry_run:  # the botocore dry-run guard does not cover HTTP: refuse here too
            raise ActionError("DryRunRefused", "dry-run: notify.webhook posts nothing")
        url = _webhook_url(ctx, params)
        host = _host(url)
        payload = _payload(ctx, params)
        try:
            response = httpx.post(
                url, json=payload, timeout=params.timeout_seconds, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise ActionError(
                "WebhookTimeout", f"webhook on {host}: no answer within {params.timeout_seconds:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise ActionError(
                "WebhookUnreachable", f"webhook on {host}: {_without_url(str(exc), url)}"
            ) from exc
        _check_answer(response, host)
        ctx.log.info("posted a message to the webhook on %s", host)
        return {
            "host": host,
            "status": response.status_code,
            "text": payload["text"],
            "undo": None,
            "note": "a message posted to an incoming webhook cannot be withdrawn",
        }


def _webhook_url(ctx: ActionContext, params: WebhookInput) -> str:
    secret = params.url or ctx.settings.notify_webhook_url
    if secret is None:
        raise ActionError(
            "NoWebhookUrl",
            "no webhook URL: set RIPOSTE_NOTIFY_WEBHOOK_URL or give the step a url",
            retryable=False,
        )
    url = secret.get_secret_value().strip()
    keep_secret(url)  # before httpx, which logs every request's URL, can see it
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ActionError(
            "InvalidWebhookUrl",
            "the webhook URL is not an http(s) URL with a host",
            retryable=False,
        )
    return url


def _host(url: str) -> str:
    return httpx.URL(url).host


def _without_url(message: str, url: str) -> str:
    """``message`` unless it quotes the URL's secret part (its path or query)."""
    parsed = httpx.URL(url)
    secrets = [part for part in (parsed.path, parsed.query.decode()) if part.strip("/")]
    if not message or any(secret in message for secret in secrets):
        return "connection failed"
    return plain(message)


def _payload(ctx: ActionContext, params: WebhookInput) -> dict[str, Any]:
    text = plain_block(params.text) if params.text is not None else summary_of(ctx, params)
    escaped = slack_text(text, SLACK_SECTION_LIMIT)
    payload: dict[str, Any] = {"text": escaped}
    if params.blocks:
        payload["blocks"] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": escaped, "verbatim": True}}
        ]
    return payload


def plain_block(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """Return multi-line ``text`` with each line made inert by :func:`plain`, capped."""
    return shorten("\n".join(plain(line, limit) for line in text.splitlines()), limit)


def _check_answer(response: httpx.Response, host: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    said = plain(response.text, 200)
    detail = f"webhook on {host} answered HTTP {status}" + (f": {said}" if said else "")
    if status == 429:
        wait = response.headers.get("Retry-After")
        hint = f" (Retry-After: {plain(wait, 20)}s)" if wait else ""
        raise ActionError("WebhookThrottled", detail + hint)
    if status >= 500:
        raise ActionError("WebhookServerError", detail)
    raise ActionError("WebhookRejected", detail, retryable=False)

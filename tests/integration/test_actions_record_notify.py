"""notify.webhook against a real local HTTP server that records what it receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from actions import registry
from actions.base import ActionContext, ActionError, RunEnv
from core.settings import Settings
from engine.runner import execute_step
from engine.spec import Step
from tests.live_server import free_port, serving

ACTION = "notify.webhook"
SECRET_PATH = "/services/T0001/B0002/s3cr3tt0k3n"
ALERT = {
    "source": "cloudtrail",
    "title": "ConsoleLogin <https://evil.example|click> & <!channel>",
    "severity": 40,
    "severity_label": "MEDIUM",
    "account": "123456789012",
}


@dataclass
class Hook:
    """A Slack-like incoming webhook: records bodies, answers the statuses it is told to."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # next statuses to answer; then 200
    delay: float = 0.0


@pytest.fixture
def hook() -> Iterator[Hook]:
    app = FastAPI()
    state = Hook(url="")

    @app.post(SECRET_PATH)
    async def incoming(request: Request) -> Response:
        await asyncio.sleep(state.delay)
        state.received.append(json.loads(await request.body()))
        status = state.answers.pop(0) if state.answers else 200
        headers = {"Retry-After": "3"} if status == 429 else {}
        return Response("ok" if status == 200 else "no_service", status, headers=headers)

    with serving(app) as base:
        state.url = base + SECRET_PATH
        yield state


def ctx_for(*, mode: str = "live", settings: Settings | None = None) -> ActionContext:
    env = RunEnv(
        run_id="run-1",
        mode=mode,
        settings=settings or Settings(notify_webhook_url=None),
        alert=ALERT,
    )
    return ActionContext(run_id="run-1", step_id="tell", mode=mode, env=env)


def post(params: dict[str, Any], *, mode: str = "live", settings: Settings | None = None) -> Any:
    action = registry.get(ACTION)()
    ctx = ctx_for(mode=mode, settings=settings)
    validated = action.Input.model_validate(params)
    return action.plan(ctx, validated) if mode == "dry_run" else action.run(ctx, validated)


def test_posts_the_run_summary_escaped_for_slack(hook: Hook) -> None:
    output = post({"url": hook.url, "done": ["keys deactivated"]})
    [body] = hook.received
    assert set(body) == {"text"}
    text = body["text"]
    assert text.splitlines()[0] == "Riposte run run-1"
    # The alert cannot mention everyone or forge a link: Slack shows its markup as text.
    assert (
        "Alert: ConsoleLogin &lt;https://evil.example|click&gt; &amp; &lt;!channel&gt; "
        "(cloudtrail)" in text
    )
    assert "<" not in text and ">" not in text
    assert "- keys deactivated" in text
    assert output == {
        "host": "127.0.0.1",
        "status": 200,
        "text": text,
        "undo": None,
        "note": "a message posted to an incoming webhook cannot be withdrawn",
    }
    assert SECRET_PATH not in json.dumps(output)


def test_blocks_carry_the_same_text_verbatim(hook: Hook) -> None:
    post({"url": hook.url, "text": "a <b> & c\nsecond line", "blocks": True})
    [body] = hook.received
    assert body["text"] == "a &lt;b&gt; &amp; c\nsecond line"
    assert body["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": body["text"], "verbatim": True}}
    ]


def test_the_url_setting_is_used_when_the_step_gives_none(hook: Hook) -> None:
    settings = Settings(notify_webhook_url=SecretStr(hook.url))
    post({"text": "from the setting"}, settings=settings)
    assert [b["text"] for b in hook.received] == ["from the setting"]
    with pytest.raises(ActionError) as missing:
        post({"text": "nowhere to go"})
    assert missing.value.code == "NoWebhookUrl"
    assert not missing.value.retryable


def test_dry_run_posts_nothing_and_plans_the_host_and_text(hook: Hook) -> None:
    step = Step.model_validate(
        {"id": "tell", "action": ACTION, "with": {"url": hook.url, "text": "contained <alice>"}}
    )
    env = RunEnv(run_id="run-1", mode="dry_run", alert=ALERT)
    outcome = execute_step(step, {"alert": ALERT}, run_id="run-1", mode="dry_run", env=env)
    assert outcome.status == "succeeded"
    assert hook.received == []
    [planned] = outcome.output["planned"]
    assert (planned["service"], planned["operation"], planned["target"]) == (
        "webhook",
        "POST",
        "127.0.0.1",
    )
    assert planned["params"] == {
        "host": "127.0.0.1",
        "payload": {"text": "contained &lt;alice&gt;"},
    }
    assert SECRET_PATH not in json.dumps(outcome.output)
    # Even called directly, run refuses to post in a dry run.
    with pytest.raises(ActionError, match="DryRunRefused"):
        registry.get(ACTION)().run(
            ctx_for(mode="dry_run"), registry.get(ACTION).Input.model_validate({"url": hook.url})
        )
    assert hook.received == []


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "WebhookThrottled", True),
        (503, "WebhookServerError", True),
        (404, "WebhookRejected", False),
        (400, "WebhookRejected", False),
    ],
)
def test_non_2xx_answers_are_step_errors(
    hook: Hook, status: int, code: str, retryable: bool
) -> None:
    hook.answers = [status]
    with pytest.raises(ActionError) as failed:
        post({"url": hook.url, "text": "hi"})
    assert failed.value.code == code
    assert failed.value.retryable is retryable
    assert f"webhook on 127.0.0.1 answered HTTP {status}: no_service" in failed.value.message
    assert SECRET_PATH not in failed.value.message


def test_a_throttled_post_is_retried_by_the_step_and_posted_once(hook: Hook) -> None:
    hook.answers = [429, 500]
    step = Step.model_validate(
        {
            "id": "tell",
            "action": ACTION,
            "with": {"url": hook.url, "text": "hi"},
            "retry": {"attempts": 3, "on": ["WebhookThrottled", "WebhookServerError"]},
        }
    )
    outcome = execute_step(
        step, {"alert": ALERT}, run_id="run-1", mode="live", sleep=lambda _: None
    )
    assert outcome.status == "succeeded"
    assert outcome.attempts == 3
    assert outcome.output["status"] == 200
    assert len(hook.received) == 3  # two refused, one accepted


def test_an_unreachable_or_slow_webhook_is_a_retryable_error_without_the_url(hook: Hook) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    with pytest.raises(ActionError) as unreachable:
        post({"url": nowhere, "text": "hi"})
    assert unreachable.value.code == "WebhookUnreachable"
    assert unreachable.value.retryable
    assert SECRET_PATH not in unreachable.value.message

    hook.delay = 1.0
    with pytest.raises(ActionError) as slow:
        post({"url": hook.url, "text": "hi", "timeout_seconds": 0.2})
    assert slow.value.code == "WebhookTimeout"
    assert SECRET_PATH not in slow.value.message


def test_a_url_that_is_not_http_is_refused_without_being_shown() -> None:
    with pytest.raises(ActionError) as refused:
        post({"url": "file:///etc/passwd", "text": "hi"})
    assert refused.value.code == "InvalidWebhookUrl"
    assert "passwd" not in refused.value.message

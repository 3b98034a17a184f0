"""Alert fields are data: an attacker's template markup is carried, never rendered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

ECHO = """\
name: echo
description: Repeat attacker-controlled alert fields
trigger:
  source: [generic]
steps:
  - id: say
    action: core.log
    with:
      message: "{{ alert.title }}"
  - id: keep
    action: core.set
    with:
      values:
        x: "{{ alert.details.payload }}"
"""


def test_template_markup_in_an_alert_reaches_the_steps_as_literal_text(
    worker_client: TestClient,
    tokens: Tokens,
    post_alert: PostAlert,
    wait_for_run: WaitForRun,
    write_playbook: Callable[[str, str], Path],
) -> None:
    write_playbook("echo.yml", ECHO)
    title = "{{ 7*7 }}"
    payload = "{{ ''.__class__.__mro__ }}"
    alert = post_alert(worker_client, tokens.as_ingest, title=title,
                       details={"payload": payload})

    run = wait_for_run(worker_client, alert["run_ids"][0], tokens.as_responder, "succeeded")
    say, keep = run["steps"]
    assert say["params"] == {"message": title}
    assert say["output"] == {"message": title}
    assert keep["params"] == {"values": {"x": payload}}
    assert keep["output"] == {"x": payload}
    assert run["vars"]["x"] == payload
    stored = worker_client.get(f"/v1/alerts/{alert['alert_id']}", headers=tokens.as_responder)
    assert stored.json()["title"] == title
    assert stored.json()["details"] == {"payload": payload}

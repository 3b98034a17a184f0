"""Every list pages alike: its own key, ``limit`` and ``cursor``, a ``next`` link until the last
page; the pages hold exactly the list, and items that arrive meanwhile shift no page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens, WaitForRun

NEEDS_APPROVAL = """\
name: {name}
description: Waits for a human
trigger:
  source: [generic]
  kind: [paging]
steps:
  - id: act
    action: core.log
    with:
      message: acting
    approval:
      reason: to have something to list
"""
# Each list, the key of its items, and what names an item.
LISTS = [
    ("/v1/alerts", "alerts", "id"),
    ("/v1/runs", "runs", "id"),
    ("/v1/approvals", "approvals", "id"),
    ("/v1/audit", "events", "id"),
    ("/v1/deliveries", "deliveries", "id"),
    ("/v1/tokens", "tokens", "name"),
    ("/v1/playbooks", "playbooks", "name"),
    ("/v1/workers", "workers", "id"),
]


@pytest.fixture(autouse=True)
def _playbooks(write_playbook: Callable[[str, str], Path]) -> None:
    for name in ("hold-a", "hold-b", "hold-c"):
        write_playbook(f"{name}.yml", NEEDS_APPROVAL.format(name=name))


def _walk(client: TestClient, tokens: Tokens, path: str, key: str,
          name: str) -> tuple[list[Any], list[str]]:
    """Follow ``next`` from the first page of one item; return the items and the links."""
    items: list[Any] = []
    links = [f"{path}?limit=1"]
    while True:
        response = client.get(links[-1], headers=tokens.as_admin)
        assert response.status_code == 200, (links[-1], response.text)
        page = response.json()
        assert len(page[key]) <= 1
        items += [item[name] for item in page[key]]
        if page["next"] is None:
            return items, links
        links.append(page["next"])


def test_every_list_pages_to_exactly_its_items(
    worker_client: TestClient, tokens: Tokens, post_alert: PostAlert, wait_for_run: WaitForRun
) -> None:
    client = worker_client
    for number in range(2):
        alert = post_alert(client, tokens.as_ingest, kind="paging", title=f"p{number}")
        for run_id in alert["run_ids"]:
            wait_for_run(client, run_id, tokens.as_responder, "waiting_approval")

    for path, key, name in LISTS:
        whole = client.get(path, headers=tokens.as_admin).json()
        assert whole["next"] is None, path
        everything = [item[name] for item in whole[key]]
        assert len(everything) >= 1, path  # every list has something to page through
        paged, links = _walk(client, tokens, path, key, name)
        assert paged == everything, path
        assert all(link.startswith(f"{path}?limit=1&cursor=") for link in links[1:]), links


def test_a_page_keeps_its_filters_and_new_items_do_not_shift_it(
    client: TestClient, tokens: Tokens, post_alert: PostAlert
) -> None:
    alerts = [post_alert(client, tokens.as_ingest, kind="paging", title=f"p{n}")["alert_id"]
              for n in range(3)]
    first = client.get("/v1/runs?playbook=hold-b&limit=2", headers=tokens.as_responder).json()
    assert first["next"].startswith("/v1/runs?playbook=hold-b&limit=2&cursor=")
    post_alert(client, tokens.as_ingest, kind="paging", title="later")  # newer runs
    rest = client.get(first["next"], headers=tokens.as_responder).json()
    seen = [run["alert_id"] for run in first["runs"] + rest["runs"]]
    assert seen == alerts[::-1]
    assert {run["playbook"] for run in first["runs"] + rest["runs"]} == {"hold-b"}
    assert rest["next"] is None


@pytest.mark.parametrize("path", [path for path, _, _ in LISTS])
def test_a_cursor_not_of_the_list_is_a_422_naming_it(
    client: TestClient, tokens: Tokens, path: str
) -> None:
    response = client.get(f"{path}?cursor=%21not+a+cursor", headers=tokens.as_admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"]


def test_the_limit_has_a_documented_maximum(client: TestClient, tokens: Tokens) -> None:
    schema = client.get("/openapi.json").json()
    for path, _, _ in LISTS:
        [limit] = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        assert (limit["schema"]["default"], limit["schema"]["maximum"]) == (100, 500), path
        over = client.get(f"{path}?limit=501", headers=tokens.as_admin)
        assert over.status_code == 422 and over.json()["errors"][0]["field"] == "query.limit"

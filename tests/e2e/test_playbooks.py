"""The playbook library over HTTP: what is loaded, what is wrong, and reloads that never touch
a run already started."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.e2e.conftest import PostAlert, Tokens

GOOD = """\
name: good
description: A fine playbook
trigger:
  source: [generic]
steps:
  - id: note
    action: core.log
    with:
      message: "v1 {{ alert.title }}"
  - id: gate
    action: core.log
    with:
      message: after approval
    approval:
      required: 2
"""

BROKEN = """\
name: broken
description: A typo in an action name
steps:
  - id: first
    action: core.log
    with:
      message: fine
  - id: second
    action: core.lgo
    with:
      message: typo above
"""


def test_loaded_playbooks_are_listed_and_broken_files_reported_with_line_and_step(
    client: TestClient, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    write_playbook("good.yml", GOOD)
    write_playbook("broken.yaml", BROKEN)

    response = client.get("/v1/playbooks", headers=tokens.as_responder)
    assert response.status_code == 200
    body = response.json()
    [good] = body["playbooks"]
    assert (good["name"], good["file"], good["description"]) == ("good", "good.yml",
                                                                 "A fine playbook")
    assert good["trigger"]["source"] == ["generic"]
    assert [(s["id"], s["action"]) for s in good["steps"]] == [("note", "core.log"),
                                                               ("gate", "core.log")]
    assert good["steps"][0]["approval"] is None
    assert good["steps"][1]["approval"]["required"] == 2
    [problem] = body["problems"]
    assert (problem["file"], problem["line"], problem["step"]) == ("broken.yaml", 9, "second")
    assert "core.lgo" in problem["message"]
    assert "core.log" in problem["message"]  # the suggestion


def test_one_playbook_is_shown_with_its_text_and_an_unknown_one_is_404(
    client: TestClient, tokens: Tokens, write_playbook: Callable[[str, str], Path]
) -> None:
    write_playbook("good.yml", GOOD)
    response = client.get("/v1/playbooks/good", headers=tokens.as_responder)
    assert response.status_code == 200
    assert response.json()["text"] == GOOD
    missing = client.get("/v1/playbooks/broken", headers=tokens.as_responder)
    assert missing.status_code == 404
    assert "'broken'" in missing.json()["detail"]


def test_an_edited_playbook_is_reloaded_but_a_queued_run_keeps_the_text_it_started_with(
    client: TestClient,
    tokens: Tokens,
    post_alert: PostAlert,
    write_playbook: Callable[[str, str], Path],
) -> None:
    path = write_playbook("good.yml", GOOD)
    before = client.get("/v1/playbooks/good", headers=tokens.as_responder).json()
    run_id = post_alert(client, tokens.as_ingest)["run_ids"][0]

    write_playbook("good.yml", GOOD.replace("v1 ", "version two "))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = client.get("/v1/playbooks/good", headers=tokens.as_responder).json()
    assert after["hash"] != before["hash"]
    assert "version two" in after["text"]

    run = client.get(f"/v1/runs/{run_id}", headers=tokens.as_responder).json()
    assert run["playbook_hash"] == before["hash"]
    new_run_id = post_alert(client, tokens.as_ingest)["run_ids"][0]
    new_run = client.get(f"/v1/runs/{new_run_id}", headers=tokens.as_responder).json()
    assert new_run["playbook_hash"] == after["hash"]


def test_a_removed_playbook_stops_triggering(
    client: TestClient,
    tokens: Tokens,
    post_alert: PostAlert,
    write_playbook: Callable[[str, str], Path],
) -> None:
    path = write_playbook("good.yml", GOOD)
    assert len(post_alert(client, tokens.as_ingest)["run_ids"]) == 1
    path.unlink()
    assert post_alert(client, tokens.as_ingest)["run_ids"] == []
    assert client.get("/v1/playbooks", headers=tokens.as_responder).json()["playbooks"] == []

"""README.md's "Deploy to AWS", read by the tests that run its commands, so the two cannot drift.

Blocks are found by what they hold, not by position: a test fails, naming what it looked for, if
a block it runs is gone.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TITLE = "## Deploy to AWS"


def section() -> str:
    """Return the README's "Deploy to AWS" section, up to the next section."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert TITLE in readme, f"README.md has no {TITLE!r} section"
    text = readme.split(TITLE, 1)[1]
    return text.split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    """Return the section's fenced blocks of ``language`` (sh, json), in order."""
    return re.findall(rf"```{language}\n(.*?)```", section(), re.S)


def shell_block(holding: str) -> str:
    """Return the one shell block holding ``holding``."""
    found = [block for block in blocks("sh") if holding in block]
    assert len(found) == 1, f"README.md {TITLE}: {len(found)} sh blocks hold {holding!r}"
    return found[0]


def shell_commands(holding: str) -> list[str]:
    """Return the commands of the shell block holding ``holding``: continuation lines joined,
    comments after a command dropped."""
    joined = shell_block(holding).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command:
            commands.append(command)
    return commands


def compose_run_arguments(holding: str) -> list[list[str]]:
    """Return the riposte arguments of each `docker compose run … api …` in the block holding
    ``holding`` (what the image's entrypoint, `riposte`, is given)."""
    found = []
    for command in shell_commands(holding):
        match = re.search(r"docker compose run ((?:-\S+(?: \S+=\S+)? )*)api (.*?)(?:\)|$)", command)
        if match:
            found.append(shlex.split(match.group(2)))
    return found


def curl_body(holding: str) -> dict[str, Any]:
    """Return the JSON body (-d '…') of the curl command holding ``holding``."""
    for command in shell_commands(holding):
        if "curl " in command and " -d " in command and holding in command:
            body: dict[str, Any] = json.loads(shlex.split(command.split(" -d ", 1)[1])[0])
            return body
    raise AssertionError(f"README.md {TITLE}: no curl command with {holding!r}")


def sample_event_entries() -> list[dict[str, Any]]:
    """Return test-event.json as README gives it: PutEvents entries."""
    found = [block for block in blocks("json") if '"DetailType"' in block]
    assert len(found) == 1, f"README.md {TITLE}: {len(found)} json blocks hold PutEvents entries"
    entries: list[dict[str, Any]] = json.loads(found[0])
    return entries

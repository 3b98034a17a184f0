"""A playbook that does not load is logged once per change, at error, and counted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.library import PlaybookLibrary

GOOD = """
name: good
steps:
  - {id: note, action: core.log, with: {message: hi}}
"""
TYPO = """
name: typo
steps:
  - {id: note, action: core.logg, with: {message: hi}}
"""
NO_STEPS = """
name: typo
steps: []
"""


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "riposte.playbooks" and r.levelname == "ERROR"]


def touch_later(path: Path, text: str) -> None:
    """Write ``path`` so that its mtime moves even on a coarse filesystem clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 5_000_000_000, before + 5_000_000_000))


def test_an_invalid_playbook_is_logged_once_per_change_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("ERROR", logger="riposte.playbooks")
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "typo.yml").write_text(TYPO)
    library = PlaybookLibrary(tmp_path)

    assert sorted(library.current()) == ["good"]
    [first] = errors(caplog)
    assert str(tmp_path / "typo.yml") in first
    assert "unknown action 'core.logg' (did you mean 'core.log'?)" in first
    for _ in range(3):  # every ingest looks: no new line while nothing changed
        library.current()
    assert library.counts() == (1, 1)
    assert len(errors(caplog)) == 1

    touch_later(tmp_path / "good.yml", GOOD + "\n")  # another file changed: same problem
    library.current()
    assert len(errors(caplog)) == 1

    touch_later(tmp_path / "typo.yml", NO_STEPS)  # a new problem in the invalid file
    library.current()
    assert len(errors(caplog)) == 2
    assert str(tmp_path / "typo.yml") in errors(caplog)[1]

    touch_later(tmp_path / "typo.yml", TYPO.replace("core.logg", "core.log").replace(
        "name: typo", "name: fixed"))
    assert sorted(library.current()) == ["fixed", "good"]
    assert library.counts() == (2, 0)
    assert len(errors(caplog)) == 2


def test_a_missing_directory_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("ERROR", logger="riposte.playbooks")
    library = PlaybookLibrary(tmp_path / "nowhere")
    for _ in range(3):
        assert library.current() == {}
    [line] = errors(caplog)
    assert "playbook directory does not exist (set RIPOSTE_PLAYBOOK_DIR)" in line
    assert library.counts() == (0, 1)

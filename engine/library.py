"""The playbooks on disk, reloaded when a file is added, removed or changed.

A run pins the playbook text it starts with, so a reload never changes a run in progress.
"""

from __future__ import annotations

import threading
from pathlib import Path

from engine.playbooks import LoadedPlaybook, PlaybookProblem, load_all, playbook_files

# (path, mtime in ns, size) of every playbook file: any difference means reload.
Fingerprint = tuple[tuple[str, int, int], ...]


class PlaybookLibrary:
    """The valid playbooks of one directory, by name, and the problems of the invalid ones."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fingerprint: Fingerprint | None = None
        self._playbooks: dict[str, LoadedPlaybook] = {}
        self._problems: list[PlaybookProblem] = []

    def current(self) -> dict[str, LoadedPlaybook]:
        """Return the valid playbooks by name, reloading first if the files changed."""
        with self._lock:
            self._refresh()
            return dict(self._playbooks)

    @property
    def problems(self) -> list[PlaybookProblem]:
        """Return every problem of the playbook files that did not load."""
        with self._lock:
            self._refresh()
            return list(self._problems)

    def _refresh(self) -> None:
        if not self.directory.is_dir():
            self._fingerprint = None
            self._playbooks = {}
            self._problems = [
                PlaybookProblem(str(self.directory), None, None,
                                "playbook directory does not exist (set RIPOSTE_PLAYBOOK_DIR)")
            ]
            return
        fingerprint = _fingerprint(self.directory)
        if fingerprint == self._fingerprint:
            return
        self._playbooks, self._problems = load_all([self.directory])
        self._fingerprint = fingerprint


def _fingerprint(directory: Path) -> Fingerprint:
    entries: list[tuple[str, int, int]] = []
    for path in playbook_files([directory]):
        try:
            stat = path.stat()
        except OSError:  # removed between the listing and the stat: the next look sees it
            entries.append((str(path), -1, -1))
            continue
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)

"""The playbooks on disk, reloaded when a file is added, removed or changed.

A run pins the playbook text it starts with, so a reload never changes a run in progress.
A playbook that does not load is left out, and each of its problems is logged at ``error``
once, when the change that brought it is seen (not at every look); ``problems`` lists them all
and the metrics count them (``riposte_playbooks_invalid``).

Every ingest request asks for the playbooks, so looking must be cheap: one ``stat`` of the
directory and one of each playbook file, with no lock taken. The directory is listed again (a
glob) only when its mtime moved (a file was added, removed or renamed) or is too recent to be
trusted, and the files are parsed again only when the listing or a file's mtime or size changed.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.logs import fields
from engine.playbooks import LoadedPlaybook, PlaybookProblem, load_all, playbook_files

log = logging.getLogger("riposte.playbooks")

# (path, mtime in ns, size) of every playbook file: any difference means reload.
Fingerprint = tuple[tuple[str, int, int], ...]

# A directory mtime this close to the moment it was read may be shared by a change made just
# after the listing (coarse filesystem clocks; FAT has 2 s): such a listing is redone next time.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class _Snapshot:
    """What one listing found; replaced whole, never changed, so readers need no lock."""

    directory_mtime_ns: int | None  # None: the directory does not exist
    listing_trusted: bool  # the directory mtime alone tells whether the listing changed
    files: Fingerprint
    playbooks: dict[str, LoadedPlaybook]
    problems: list[PlaybookProblem]


class PlaybookLibrary:
    """The valid playbooks of one directory, by name, and the problems of the invalid ones.

    ``max_age`` (seconds) lets a look be skipped for that long after the previous one: the
    default, 0, sees every change at the next call; with 1.0 an edit is seen within a second.
    """

    def __init__(self, directory: Path, *, max_age: float = 0.0) -> None:
        self.directory = directory
        self.max_age = max_age
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self._snapshot: _Snapshot | None = None
        self._looked_at = 0.0  # time.monotonic() of the last look that found no change

    def current(self) -> dict[str, LoadedPlaybook]:
        """Return the valid playbooks by name, reloading first if the files changed."""
        return dict(self._fresh().playbooks)

    @property
    def problems(self) -> list[PlaybookProblem]:
        """Return every problem of the playbook files that did not load."""
        return list(self._fresh().problems)

    def _fresh(self) -> _Snapshot:
        snapshot = self._snapshot
        now = time.monotonic()
        if snapshot is not None:
            if self.max_age > 0 and now - self._looked_at < self.max_age:
                return snapshot
            if self._unchanged(snapshot):
                self._looked_at = now
                return snapshot
        with self._lock:
            # Another thread may have reloaded while this one waited.
            snapshot = self._snapshot
            if snapshot is None or not self._unchanged(snapshot):
                snapshot = self._relist(snapshot)
                self._snapshot = snapshot
            self._looked_at = now
            return snapshot

    def _unchanged(self, snapshot: _Snapshot) -> bool:
        """Tell, without listing the directory, that nothing changed since ``snapshot``."""
        mtime_ns = _directory_mtime_ns(self.directory)
        if mtime_ns is None or snapshot.directory_mtime_ns is None:
            return mtime_ns == snapshot.directory_mtime_ns
        if not snapshot.listing_trusted or mtime_ns != snapshot.directory_mtime_ns:
            return False
        return _stat_files(path for path, _, _ in snapshot.files) == snapshot.files

    def _relist(self, previous: _Snapshot | None) -> _Snapshot:
        # The directory is read before it is listed: a change made during the listing moves
        # its mtime past the one kept here, so the next look lists again.
        read_at_ns = time.time_ns()
        mtime_ns = _directory_mtime_ns(self.directory)
        if mtime_ns is None:
            problem = PlaybookProblem(
                str(self.directory), None, None,
                "playbook directory does not exist (set RIPOSTE_PLAYBOOK_DIR)",
            )
            _log_new_problems([problem], previous)
            return _Snapshot(None, False, (), {}, [problem])
        files = _stat_files(playbook_files([self.directory]))
        trusted = read_at_ns - mtime_ns > _RACY_NS
        if previous is not None and previous.directory_mtime_ns is not None and (
            files == previous.files
        ):
            return _Snapshot(mtime_ns, trusted, files, previous.playbooks, previous.problems)
        playbooks, problems = load_all([self.directory])
        _log_new_problems(problems, previous)
        return _Snapshot(mtime_ns, trusted, files, playbooks, problems)

    def counts(self) -> tuple[int, int]:
        """Return how many playbooks loaded and how many files did not (for the metrics)."""
        snapshot = self._fresh()
        return len(snapshot.playbooks), len({problem.file for problem in snapshot.problems})


def _log_new_problems(problems: list[PlaybookProblem], previous: _Snapshot | None) -> None:
    """Log at ``error`` each problem that the previous look did not find."""
    known = set(previous.problems) if previous is not None else set()
    for problem in problems:
        if problem not in known:
            log.error("playbook %s left out: %s", problem.file, problem,
                      extra=fields(event="playbook.invalid", file=problem.file,
                                   line=problem.line, step=problem.step,
                                   problem=problem.message))


def _directory_mtime_ns(directory: Path) -> int | None:
    try:
        info = os.stat(directory)
    except OSError:
        return None
    return info.st_mtime_ns if stat.S_ISDIR(info.st_mode) else None


def _stat_files(paths: Iterable[str | Path]) -> Fingerprint:
    entries: list[tuple[str, int, int]] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:  # removed between the listing and the stat: the next look sees it
            entries.append((str(path), -1, -1))
            continue
        entries.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(entries)

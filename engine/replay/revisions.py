"""Read the playbooks of a directory as they are at a git revision (``riposte replay --base``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from engine.playbooks import LoadedPlaybook, PlaybookInvalid, parse_playbook

PLAYBOOK_SUFFIXES = (".yml", ".yaml")


class RevisionUnreadable(ValueError):
    """The revision or the directory cannot be read from git; the message says why."""


def playbooks_at(revision: str, directory: Path) -> dict[str, LoadedPlaybook]:
    """Return the playbooks ``directory`` holds at ``revision``, by name.

    A file that is not a valid playbook at that revision raises ``PlaybookInvalid``: a replay
    against it would compare with nothing.
    """
    directory = directory.resolve()
    top = Path(_git(directory if directory.is_dir() else directory.parent,
                    "rev-parse", "--show-toplevel").strip())
    try:
        inside = directory.relative_to(top).as_posix()
    except ValueError:
        raise RevisionUnreadable(f"{directory} is not inside the git repository {top}") from None
    _git(top, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}",
         what=f"no commit {revision!r} in {top}")
    listed = _git(top, "ls-tree", "-z", "--name-only", revision, "--", f"{inside}/")
    files = sorted(p for p in listed.split("\0") if p.endswith(PLAYBOOK_SUFFIXES))
    loaded: dict[str, LoadedPlaybook] = {}
    problems = []
    for path in files:
        text = _git(top, "show", f"{revision}:{path}")
        try:
            playbook = parse_playbook(text, f"{revision}:{path}")
        except PlaybookInvalid as exc:
            problems += exc.problems
            continue
        loaded[playbook.spec.name] = playbook
    if problems:
        raise PlaybookInvalid(problems)
    return loaded


def _git(cwd: Path, *args: str, what: str | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RevisionUnreadable(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        reason = what or (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise RevisionUnreadable(f"git {' '.join(args[:2])}: {reason}")
    return done.stdout

"""Compare two replays of the same alerts, and tell the expected differences from the others.

A difference is one of:

    newly-triggered       the alert now starts or joins a run of the playbook
    no-longer-triggered   it did, and does not any more (the reasons say which condition fails)
    step-now-runs         a step of the alert's run runs now and did not (skipped, not reached,
                          or not in the playbook)
    step-no-longer-runs   the other way round
    call-added            the run plans an AWS call it did not
    call-removed          the other way round
    result-changed        the run ends otherwise (succeeded, partial, failed …)

A team keeps the differences a change is meant to make in an expectations file (YAML), next to
the playbooks, so the CI run of the change passes and the next one starts clean::

    expected:
      - playbook: compromised-credentials   # glob on the playbook's name (required)
        kind: call-removed                  # optional: any kind
        alert: "guardduty:*"                # optional: glob on the alert's key
        detail: "iam.UpdateAccessKey*"      # optional: glob on the step or call
        reason: keys are deactivated by disable-user now   # required: why it is expected
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DifferenceKind = Literal[
    "newly-triggered", "no-longer-triggered", "step-now-runs", "step-no-longer-runs",
    "call-added", "call-removed", "result-changed",
]
TRIGGERED = frozenset({"started", "joined"})


@dataclass(frozen=True)
class Difference:
    """One way the new playbooks treat an alert otherwise than the old ones."""

    playbook: str
    alert: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.playbook}: {self.kind}: {self.detail} (alert {self.alert})"

    def as_json(self) -> dict[str, str]:
        return {"playbook": self.playbook, "alert": self.alert, "kind": self.kind,
                "detail": self.detail}


class Expectation(BaseModel):
    """One difference a change is meant to make (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    playbook: str = Field(min_length=1)
    kind: DifferenceKind | None = None
    alert: str | None = None
    detail: str | None = None
    reason: str = Field(min_length=1)

    def covers(self, difference: Difference) -> bool:
        """Tell whether this expectation accepts the difference."""
        return (
            fnmatch.fnmatchcase(difference.playbook, self.playbook)
            and (self.kind is None or self.kind == difference.kind)
            and (self.alert is None or fnmatch.fnmatchcase(difference.alert, self.alert))
            and (self.detail is None or fnmatch.fnmatchcase(difference.detail, self.detail))
        )


class Expectations(BaseModel):
    """The expectations file."""

    model_config = ConfigDict(extra="forbid")

    expected: list[Expectation] = Field(default_factory=list)


class ExpectationsInvalid(ValueError):
    """An expectations file that cannot be used; the message names the file and the entry."""


def load_expectations(path: Path) -> Expectations:
    """Read an expectations file, naming every problem by its place in the file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectationsInvalid(f"{path}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise ExpectationsInvalid(f"{path}: not YAML: {exc}") from None
    try:
        return Expectations.model_validate(document or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise ExpectationsInvalid(f"{path}: {problems}") from None


@dataclass(frozen=True)
class Verdict:
    """The differences, split into those accepted and those nobody said to expect."""

    accepted: list[Difference]
    unexpected: list[Difference]
    unused: list[Expectation]  # expected, and not seen: stale, or the change is not all there


def judge(
    differences: Sequence[Difference],
    expectations: Expectations | None = None,
    *,
    accepted_playbooks: Iterable[str] = (),
) -> Verdict:
    """Accept the differences an expectation covers or whose playbook is accepted wholesale."""
    expected = expectations.expected if expectations is not None else []
    wholesale = set(accepted_playbooks)
    used: set[int] = set()
    accepted: list[Difference] = []
    unexpected: list[Difference] = []
    for difference in differences:
        covering = [n for n, e in enumerate(expected) if e.covers(difference)]
        used.update(covering)
        if covering or difference.playbook in wholesale:
            accepted.append(difference)
        else:
            unexpected.append(difference)
    unused = [e for n, e in enumerate(expected) if n not in used]
    return Verdict(accepted, unexpected, unused)


def compare(base: dict[str, Any], head: dict[str, Any]) -> list[Difference]:
    """List how ``head`` (a report of the same alerts) differs from ``base``."""
    differences: list[Difference] = []
    for old, new in zip(base["alerts"], head["alerts"], strict=True):
        names = sorted(set(old["playbooks"]) | set(new["playbooks"]))
        for name in names:
            differences += _playbook_differences(
                name, new["key"], old["playbooks"].get(name), new["playbooks"].get(name)
            )
    return differences


def _playbook_differences(
    name: str, alert: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> list[Difference]:
    was = old is not None and old["outcome"] in TRIGGERED
    now = new is not None and new["outcome"] in TRIGGERED
    if now and not was:
        return [Difference(name, alert, "newly-triggered", _outcome(new))]
    if was and not now:
        reasons = "; ".join(new["reasons"]) if new and new["reasons"] else (
            "the playbook is gone" if new is None else new["outcome"]
        )
        return [Difference(name, alert, "no-longer-triggered", reasons)]
    old_run = old.get("run") if old else None
    new_run = new.get("run") if new else None
    if old_run is None or new_run is None:
        return []  # both join other alerts' runs (compared there), or neither triggers
    differences = [
        Difference(name, alert, kind, detail)
        for kind, detail in [
            *(("step-now-runs", s) for s in _ran(new_run) if s not in _ran(old_run)),
            *(("step-no-longer-runs", s) for s in _ran(old_run) if s not in _ran(new_run)),
            *(("call-added", c) for c in _calls(new_run) if c not in _calls(old_run)),
            *(("call-removed", c) for c in _calls(old_run) if c not in _calls(new_run)),
        ]
    ]
    if old_run["result"] != new_run["result"]:
        differences.append(Difference(name, alert, "result-changed",
                                      f"{old_run['result']} -> {new_run['result']}"))
    return differences


def _outcome(shown: dict[str, Any] | None) -> str:
    if shown is None:
        return "-"
    if shown["outcome"] == "joined":
        return f"joins the run started by {shown['started_by']}"
    return "starts a run"


def _ran(run: dict[str, Any]) -> list[str]:
    return [step["id"] for step in run["steps"] if step["status"] in ("ran", "failed")]


def _calls(run: dict[str, Any]) -> list[str]:
    return [
        call_text(call)
        for step in run["steps"]
        for call in step["calls"]
    ]


def call_text(call: dict[str, Any]) -> str:
    """Write a planned call on one line: ``iam.UpdateAccessKey({…}) on <target>``."""
    params = json.dumps(call.get("params", {}), sort_keys=True, ensure_ascii=False, default=str)
    target = f" on {call['target']}" if call.get("target") else ""
    return f"{call['service']}.{call['operation']}({params}){target}"

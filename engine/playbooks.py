"""Load playbooks from YAML and report every problem with its file, line and step."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.checks.fields import describe
from engine.checks.params import parameter_problems
from engine.checks.scope import template_problems
from engine.checks.triggers import trigger_value_problems
from engine.spec import PINNED, Playbook, Step, Trigger
from engine.triggers import KEY_FIELDS

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class PlaybookProblem:
    """One thing wrong with a playbook, located as precisely as the YAML allows."""

    file: str
    line: int | None
    step: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        step = f" step '{self.step}':" if self.step else ""
        return f"{where}:{step} {self.message}"


class PlaybookInvalid(Exception):
    """A playbook that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[PlaybookProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedPlaybook:
    """A valid playbook together with the exact text and hash it was parsed from."""

    spec: Playbook
    text: str
    hash: str
    file: str


def text_hash(text: str) -> str:
    """Return the hash that pins a playbook's text to a run."""
    return hashlib.sha256(text.encode()).hexdigest()


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (``on:`` stays the string 'on'), and no aliases.

    Aliases buy a playbook nothing and allow self-reference and expansion bombs.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in playbooks", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_playbook(text: str, file: str = "<playbook>", *, pinned: bool = False) -> LoadedPlaybook:
    """Parse and validate playbook text; raise ``PlaybookInvalid`` listing every problem.

    ``pinned``: the text a run pinned when it began, which may predate a stricter rule (bare
    approvers: ``engine.identities``); it is read as it was meant then.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PlaybookInvalid([PlaybookProblem(file, line, None, f"YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise PlaybookInvalid([PlaybookProblem(file, None, None, f"YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise PlaybookInvalid([PlaybookProblem(file, 1, None, "a playbook must be a mapping")])
    locator = _Locator(file, root, data)
    # The data as written: every step's parameters and templates, whatever else is wrong.
    problems = [locator.problem(loc, msg) for loc, msg in _written_problems(data, pinned=pinned)]
    try:
        spec = Playbook.model_validate(data, context={PINNED: pinned})
    except ValidationError as exc:
        # Steps that are valid on their own are still checked, so one run reports everything.
        problems += [locator.problem(loc, msg) for loc, msg in describe(exc.errors(), data,
                                                                         Playbook)]
        problems += [locator.problem(loc, msg) for loc, msg in _semantic_problems(*_steps(data))]
        problems += [locator.problem(loc, msg)
                     for loc, msg in _triggers_problems(_triggers(data), values=not pinned,
                                                        written=data.get("trigger"))]
        raise PlaybookInvalid(_in_line_order(problems)) from exc
    steps = list(enumerate(spec.steps))
    problems += [
        locator.problem(loc, msg)
        for loc, msg in [
            *_triggers_problems(list(enumerate(spec.triggers)), values=not pinned),
            *_semantic_problems(steps, [step.id for step in spec.steps]),
        ]
    ]
    if problems:
        raise PlaybookInvalid(_in_line_order(problems))
    return LoadedPlaybook(spec=spec, text=text, hash=text_hash(text), file=file)


def _written_problems(data: dict[str, Any], *, pinned: bool) -> list[tuple[Loc, str]]:
    """Check each step's parameters, and (unless pinned) every template, on the raw data.

    A pinned text was checked when its run began; names it reads are not judged again by
    rules added since, which could strand the run.
    """
    raw_steps = data.get("steps")
    problems = [
        (("steps", index, *loc), message)
        for index, step in enumerate(raw_steps if isinstance(raw_steps, list) else [])
        if isinstance(step, dict)
        for loc, message in parameter_problems(step)
    ]
    return problems if pinned else problems + template_problems(data)


def _in_line_order(problems: list[PlaybookProblem]) -> list[PlaybookProblem]:
    """Sort problems as the file reads; those of the whole file (no line) first."""
    return sorted(problems, key=lambda problem: problem.line or 0)


def load_file(path: Path) -> LoadedPlaybook:
    """Read and parse one playbook file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookInvalid([PlaybookProblem(str(path), None, None, str(exc))]) from exc
    return parse_playbook(text, str(path))


def playbook_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into the ``*.yml``/``*.yaml`` files they hold, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yml"), *path.glob("*.yaml")]))
        else:
            files.append(path)
    return files


def load_all(paths: Iterable[Path]) -> tuple[dict[str, LoadedPlaybook], list[PlaybookProblem]]:
    """Load every playbook under ``paths``; return the valid ones by name and all problems."""
    loaded: dict[str, LoadedPlaybook] = {}
    problems: list[PlaybookProblem] = []
    for path in playbook_files(paths):
        try:
            playbook = load_file(path)
        except PlaybookInvalid as exc:
            problems.extend(exc.problems)
            continue
        name = playbook.spec.name
        if name in loaded:
            problems.append(
                PlaybookProblem(str(path), None, None, f"name {name!r} also used by "
                                f"{loaded[name].file}")
            )
            continue
        loaded[name] = playbook
    return loaded, problems


def _steps(data: dict[str, Any]) -> tuple[list[tuple[int, Step]], list[Any]]:
    """Return the steps of an invalid playbook that are valid on their own, and every step id."""
    raw = data.get("steps")
    if not isinstance(raw, list):
        return [], []
    valid: list[tuple[int, Step]] = []
    for i, item in enumerate(raw):
        try:
            valid.append((i, Step.model_validate(item)))
        except ValidationError:
            continue  # its problems are already reported
    return valid, [item.get("id") if isinstance(item, dict) else None for item in raw]


def _triggers(data: dict[str, Any]) -> list[tuple[int, Trigger]]:
    """Return the triggers of an invalid playbook that are valid on their own, by position."""
    raw = data.get("trigger")
    valid: list[tuple[int, Trigger]] = []
    items = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    for i, item in enumerate(items):
        try:
            valid.append((i, Trigger.model_validate(item)))
        except ValidationError:
            continue  # its problems are already reported
    return valid


def _triggers_problems(
    triggers: list[tuple[int, Trigger]], *, values: bool = True, written: Any = None
) -> list[tuple[Loc, str]]:
    # Messages call a trigger of several by its place (``written``: the raw ``trigger:``).
    several = len(triggers) > 1 or (isinstance(written, list) and len(written) > 1)
    return [(("trigger", i, *loc), msg) for i, trigger in triggers
            for loc, msg in [
                *_trigger_problems(trigger),
                *(trigger_value_problems(trigger, f"trigger[{i}]" if several else "trigger")
                  if values else []),
            ]]


def _trigger_problems(trigger: Trigger) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if trigger.correlate is not None and trigger.threshold is not None:
        problems.append((("threshold",),
                         "a trigger either correlates or counts to a threshold, not both"))
    keyed = [("correlate", "by", trigger.correlate.by if trigger.correlate else [])]
    keyed.append(("threshold", "group_by", trigger.threshold.group_by if trigger.threshold else []))
    for block, name, fields in keyed:
        for index, path in enumerate(fields):
            if path not in KEY_FIELDS:
                problems.append(((block, name, index),
                                 f"{block}.{name}: {_unknown_field(path)}"))
    return problems


def _unknown_field(path: str) -> str:
    close = difflib.get_close_matches(path, KEY_FIELDS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown alert field {path!r}{hint}; one of {', '.join(KEY_FIELDS)}"


def _semantic_problems(steps: list[tuple[int, Step]], ids: list[Any]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, step in steps:
        if step.id in seen:
            problems.append((("steps", i, "id"), f"duplicate step id {step.id!r}"))
        seen.add(step.id)
        if step.on_error not in ("fail", "continue") and step.on_error not in ids[i + 1 :]:
            # Jumps go forward only, so no playbook can loop forever.
            problems.append(
                (("steps", i, "on_error"),
                 f"on_error {step.on_error!r} is neither fail, continue nor a later step's id")
            )
        problems.extend(_cover_problems(steps, i, step))
    return problems


def _cover_problems(steps: list[tuple[int, Step]], i: int, step: Step) -> list[tuple[Loc, str]]:
    """An approval covers later steps that have no approval of their own."""
    if step.approval is None:
        return []
    later = {other.id: other for j, other in steps if j > i}
    problems: list[tuple[Loc, str]] = []
    for k, covered in enumerate(step.approval.covers):
        loc = ("steps", i, "approval", "covers", k)
        if covered not in later:
            problems.append((loc, f"covers {covered!r}, which is not a later step's id"))
        elif later[covered].approval is not None:
            problems.append(
                (loc, f"covers {covered!r}, which asks an approval of its own: drop one of them")
            )
    return problems


class _Locator:
    """Map a validation location (``steps.2.with.seconds``) to a YAML line and step id."""

    def __init__(self, file: str, root: yaml.Node | None, data: dict[str, Any]) -> None:
        self.file = file
        self.root = root
        self.data = data

    def problem(self, loc: Sequence[str | int], message: str) -> PlaybookProblem:
        return PlaybookProblem(self.file, self._line(loc), self._step(loc), message)

    def _step(self, loc: Sequence[str | int]) -> str | None:
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            steps = self.data.get("steps")
            if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
                step_id = steps[loc[1]].get("id")
                return str(step_id) if step_id is not None else f"#{loc[1] + 1}"
        return None

    def _line(self, loc: Sequence[str | int]) -> int | None:
        node = self.root
        if node is None:
            return None
        for index, part in enumerate(loc):
            if part == 0 and tuple(loc[:index]) == ("trigger",) and isinstance(
                node, yaml.MappingNode
            ):
                continue  # one trigger written as a mapping: the first of the list it stands for
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if pair is None:  # a missing key: point at the mapping that lacks it
                    break
                # The last part names a key: its line, even when its value spans many lines.
                node = pair[0] if index == len(loc) - 1 else pair[1]
                continue
            if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                continue
            break
        return int(node.start_mark.line) + 1

"""What a playbook's templates can read at one step, as shapes a static check can walk.

The runner gives templates ``alert`` (``engine.alerts.template_view``: the normalized alert with
its id), ``alerts`` (every alert of the run), ``steps`` (the results of the steps so far,
``engine.conductor.step_finished``), ``vars``, ``run`` and, in a ``for_each`` step's ``with``,
``item``. A shape says which names a value has; a free-form one (details, outputs) has any.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from engine.alerts import NormalizedAlert

Kind = Literal["record", "list", "steps", "vars", "free"]


@dataclass(frozen=True)
class Shape:
    """A value of the context: the names it has (None: any), or a list and its items.

    ``name`` is how a message writes it (``alert.principal``); ``absent`` explains names that
    exist elsewhere but not here (a later step).
    """

    name: str
    kind: Kind = "record"
    fields: Mapping[str, Shape] | None = None
    item: Shape | None = None
    absent: Mapping[str, str] = field(default_factory=dict)


FREE = Shape("value", "free")
# Python methods a template may call on a value (``(steps.x.output or {}).get('summary')``).
DICT_METHODS = frozenset(name for name in dir(dict) if not name.startswith("_"))
LIST_METHODS = frozenset(name for name in dir(list) if not name.startswith("_"))
# What ``engine.conductor`` records for each step that ran (``approval`` once one was asked).
STEP_RESULT = ("status", "output", "error", "attempts", "left_undone", "approval")
_STEP_PARTS: Mapping[str, Shape] = {
    "error": Shape("error", fields={"code": FREE, "message": FREE}),
    "approval": Shape("approval", fields={"request": FREE, "status": FREE}),
}
RUN_FIELDS = ("id", "mode", "playbook")


def model_shape(model: type[BaseModel], name: str, extra: Sequence[str] = ()) -> Shape:
    """Return the shape of a pydantic model as a template sees its JSON dump."""
    fields: dict[str, Shape] = dict.fromkeys(extra, FREE)
    for key, info in model.model_fields.items():
        fields[info.alias or key] = _annotation_shape(info.annotation, f"{name}.{key}")
    return Shape(name, fields=fields)


@functools.cache
def alert_shape(name: str = "alert") -> Shape:
    """Return the shape of an alert in templates: the model's fields and the alert's id."""
    return model_shape(NormalizedAlert, name, extra=("id",))


def step_shape(step_id: str) -> Shape:
    """Return the shape of the result of a step that ran before."""
    owner = f"steps.{step_id}" if step_id.isidentifier() else f"steps[{step_id!r}]"
    fields = {key: _STEP_PARTS.get(key, FREE) for key in STEP_RESULT}
    return Shape(owner, fields={key: renamed(shape, f"{owner}.{key}")
                                for key, shape in fields.items()})


def steps_shape(earlier: Sequence[str], later: Sequence[str], itself: str | None) -> Shape:
    """Return ``steps`` as one step sees it: the steps before it, and why others are not."""
    absent = dict.fromkeys(
        later, "comes later in the playbook; a step reads only the steps before it"
    )
    if itself is not None:
        absent[itself] = "is this step itself; a step reads only the steps before it"
    return Shape("steps", "steps", fields={step_id: step_shape(step_id) for step_id in earlier},
                 absent=absent)


def vars_shape(known: Sequence[str] | None) -> Shape:
    """Return ``vars`` with the names set so far; None: an earlier step sets names not known."""
    fields = None if known is None else {key: renamed(FREE, f"vars.{key}") for key in known}
    return Shape("vars", "vars", fields=fields)


def run_shape() -> Shape:
    """Return ``run``: the run's id, mode and playbook name."""
    return Shape("run", fields=dict.fromkeys(RUN_FIELDS, FREE))


def alerts_shape() -> Shape:
    """Return ``alerts``: every alert of the run (one, or a burst's), oldest first."""
    return Shape("alerts", "list", item=alert_shape("alerts[…]"))


def renamed(shape: Shape, name: str) -> Shape:
    """Return the same shape under another name (``item`` for an item of ``alert.resources``)."""
    return Shape(name, shape.kind, shape.fields, shape.item, shape.absent)


def _annotation_shape(annotation: Any, name: str) -> Shape:
    options = [arg for arg in _options(annotation) if arg is not type(None)]
    if len(options) != 1:
        return renamed(FREE, name)
    option = options[0]
    if isinstance(option, type) and issubclass(option, BaseModel):
        return model_shape(option, name)
    if get_origin(option) is list and get_args(option):
        return Shape(name, "list", item=_annotation_shape(get_args(option)[0], f"{name}[…]"))
    return renamed(FREE, name)  # text, numbers, times, free-form mappings: any name goes


def _options(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return _options(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [inner for arg in get_args(annotation) for inner in _options(arg)]
    return [annotation]

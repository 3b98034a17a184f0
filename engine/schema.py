"""The playbook JSON Schema, generated from the spec models and the action registry.

``playbooks/schema.json`` is this schema written out (``make schema``); editors use it through
yaml-language-server, and a unit test fails when the file is stale.
"""

from __future__ import annotations

import copy
import json
import re
import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator

from actions import reference, registry
from engine import spec
from engine.spec import Playbook

JsonSchema = dict[str, Any]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMMENT = (
    "Generated from engine/spec.py and the action registry: do not edit, run `make schema` "
    "(riposte schema > playbooks/schema.json). Editors with yaml-language-server use it when a "
    "playbook starts with: # yaml-language-server: $schema=./schema.json"
)
# A parameter holding Jinja2 markup is only known at run time, whatever type the action wants.
TEMPLATE_STRING: JsonSchema = {"type": "string", "pattern": r"\{\{|\{%"}
# The spec's duration regex without Python's named groups, which JSON Schema regexes lack.
DURATION_STRING: JsonSchema = {
    "type": "string",
    "pattern": re.sub(r"\(\?P<\w+>", "(", spec._DURATION.pattern),
}
_UNCONSTRAINING = {"title", "description", "default", "examples", "type"}
# What pydantic writes for a duration's bounds (its BeforeValidator hides the number type).
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def playbook_schema() -> JsonSchema:
    """Return the JSON Schema (draft 2020-12) that every valid playbook satisfies."""
    schema = Playbook.model_json_schema(by_alias=True)
    defs: dict[str, JsonSchema] = schema["$defs"]
    models = (Playbook, spec.Step, spec.Retry, spec.Approval, spec.Trigger, spec.Correlate,
              spec.Threshold, spec.Settle)
    for model in models:
        target = schema if model is Playbook else defs[model.__name__]
        _accept_duration_strings(model, target)
    actions = registry.all_actions()
    step = defs["Step"]
    summaries = [reference.summary(action) for _, action in sorted(actions.items())]
    step["properties"]["action"] = {
        "description": step["properties"]["action"].get("description", ""),
        "enum": sorted(actions),
        # Each name's one-line summary, which yaml-language-server (like VS Code's JSON
        # service) shows beside it when completing and on hover: Markdown where the editor
        # renders it, plain text otherwise. An enum, not oneOf/const: errors stay one line.
        "enumDescriptions": [reference.plain(line) for line in summaries],
        "markdownEnumDescriptions": summaries,
        "title": "Action",
        "type": "string",
    }
    rules: list[JsonSchema] = []
    for name, action in sorted(actions.items()):
        # Each action's nested models live under its own prefix so two actions never clash.
        params = action.Input.model_json_schema(ref_template=f"#/$defs/{name}.{{model}}")
        for nested, nested_schema in params.pop("$defs", {}).items():
            defs[f"{name}.{nested}"] = _templatable(nested_schema)
        defs[name] = _templatable(params)
        rules.append(
            {
                "if": {"properties": {"action": {"const": name}}, "required": ["action"]},
                "then": {"properties": {"with": {
                    "$ref": f"#/$defs/{name}",
                    "description": f"Parameters of {name} (docs/actions.md).",
                }}},
            }
        )
    step["allOf"] = rules
    return {
        "$schema": DIALECT,
        "$comment": COMMENT,
        **schema,
        "title": "Riposte playbook",
    }


def render_schema() -> str:
    """Return the schema as the stable text stored in ``playbooks/schema.json``."""
    return json.dumps(playbook_schema(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _templatable(model_schema: JsonSchema) -> JsonSchema:
    """Let every parameter of an input model (nested ones too) be a template string instead."""
    return _children_templatable(copy.deepcopy(model_schema))


def _children_templatable(value: JsonSchema) -> JsonSchema:
    for key in ("items", "additionalProperties"):
        if isinstance(value.get(key), dict):
            value[key] = _or_template(value[key])
    if isinstance(value.get("properties"), dict):
        value["properties"] = {k: _or_template(v) for k, v in value["properties"].items()}
    if isinstance(value.get("anyOf"), list):
        value["anyOf"] = [_children_templatable(option) for option in value["anyOf"]]
    return value


def _or_template(value: JsonSchema) -> JsonSchema:
    value = _children_templatable(value)
    options = value.get("anyOf", [value])
    if any(o.get("type") == "string" and set(o) <= _UNCONSTRAINING for o in options):
        return value  # any string is accepted already, templates included
    if "anyOf" in value:
        value["anyOf"] = [*value["anyOf"], TEMPLATE_STRING]
        return value
    annotations: JsonSchema = {
        k: value.pop(k) for k in ("title", "description", "default") if k in value
    }
    return {**annotations, "anyOf": [value, TEMPLATE_STRING]}


def _accept_duration_strings(model: type[BaseModel], model_schema: JsonSchema) -> None:
    """Make duration fields take "30s" / "5m" / "1h" as the spec does, not only numbers."""
    for name, field in model.model_fields.items():
        if not _is_duration(field.annotation, field.metadata):
            continue
        prop = model_schema["properties"][field.alias or name]
        seconds: JsonSchema = {"minimum": 0, "type": "number"}
        options = [seconds, DURATION_STRING]
        if any(o.get("type") == "null" for o in prop.get("anyOf", [])):
            options.append({"type": "null"})
        for key in ("anyOf", "type", "minimum"):
            prop.pop(key, None)
        # Bounds bind the number of seconds; a string's are checked when the playbook loads.
        for key, keyword in _BOUNDS.items():
            if key in prop:
                seconds[keyword] = prop.pop(key)
        prop["anyOf"] = options


def _is_duration(annotation: Any, metadata: list[Any]) -> bool:
    if any(_parses_durations(m) for m in metadata):
        return True
    if typing.get_origin(annotation) is Annotated:
        return any(_parses_durations(m) for m in annotation.__metadata__)
    return any(_is_duration(arg, []) for arg in typing.get_args(annotation))


def _parses_durations(marker: Any) -> bool:
    return isinstance(marker, BeforeValidator) and marker.func is spec._seconds

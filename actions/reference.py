"""The action reference (``docs/actions.md``), written from the registry and the action classes.

Everything in it comes from the code: the docstring (summary, prose, YAML example), the input
model (parameters, types, defaults, descriptions), the declared IAM grants, and whether the
action mutates and can be undone. ``riposte docs actions`` prints it; a unit test fails when
the file in the repository is not what this module writes.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

from actions import registry
from actions.base import Action

JsonSchema = dict[str, Any]

REGENERATE = "riposte docs actions > docs/actions.md"
EXAMPLE = re.compile(r"```yaml\n(?P<body>.*?)```", re.DOTALL)
# reStructuredText literals (``x``), as docstrings write them, become Markdown code spans.
_LITERAL = re.compile(r"``(?P<text>[^`]+?)``")
# The sentence of a docstring that says how a change is undone, or that it cannot be.
_UNDO_SENTENCE = re.compile(r"(?:^|(?<=[.!?] ))(?P<sentence>(?:Undo|Not reversible)\b.*)")


def summary(action: type[Action[Any]]) -> str:
    """Return the action's one-line summary: its docstring's first line, in Markdown."""
    return markdown(inspect.getdoc(action) or "").split("\n", 1)[0].strip()


def markdown(text: str) -> str:
    """Rewrite a docstring's reStructuredText literals as Markdown code spans."""
    return _LITERAL.sub(lambda m: f"`{m['text']}`", text)


def plain(text: str) -> str:
    """Drop the code marks of a Markdown line, for places that show plain text."""
    return text.replace("`", "")


def undo_sentence(action: type[Action[Any]]) -> str:
    """Return the docstring's sentence on undoing the action ("Undo …" / "Not reversible: …")."""
    body = _prose(action).partition("\n")[2]  # the summary says what it does, not how undone
    for paragraph in body.split("\n\n"):
        found = _UNDO_SENTENCE.search(" ".join(paragraph.split()))
        if found:
            return _first_sentence(found["sentence"])
    return ""


def render_action_reference() -> str:
    """Return ``docs/actions.md``: every registered action, its parameters, grants and undo."""
    actions = registry.all_actions()
    lines = [
        "# Action reference",
        "",
        f"<!-- Generated from the action registry: do not edit, run `{REGENERATE}`. -->",
        "",
        "Every action a playbook step can name in `action:`, with its parameters (`with:`), "
        "the IAM permissions Riposte needs for it (`riposte policy` prints the least-privilege "
        "policy for a set of playbooks), whether it changes anything and how a rollback "
        "(`POST /v1/runs/{id}/rollback`) undoes it.",
        "",
        "- **Mutating** actions change something outside Riposte (AWS, or a message sent). In "
        "a dry run they are not run: the step's output is the calls they would make, and an "
        "approval request shows the same plan.",
        "- **Rollback**: a reversible action records exactly what it changed, and nothing "
        "it found already in place; a rollback of the run puts that back, newest change "
        "first, behind one approval, as its section's \"Undo …\" says. The changes of the "
        "other mutating actions are listed as not undone.",
        "- Any parameter may be a template (`\"{{ alert.principal.name }}\"`); a parameter "
        "left unset takes the default its description gives.",
        "",
        "| Action | What it does | Mutating | Rollback |",
        "|--------|--------------|----------|----------|",
    ]
    for name, action in actions.items():
        lines.append(f"| [`{name}`](#{_anchor(name)}) | {_cell(summary(action))} | "
                     f"{'yes' if action.mutating else 'no'} | {_undo_word(action)} |")
    for name, action in actions.items():
        lines += ["", *_section(name, action)]
    return "\n".join(lines) + "\n"


def _section(name: str, action: type[Action[Any]]) -> Iterator[str]:
    yield f"## `{name}`"
    yield ""
    yield markdown(_prose(action))
    yield ""
    yield f"**Mutating:** {'yes' if action.mutating else 'no'}. **Rollback:** {_undo_text(action)}"
    yield ""
    yield "### Parameters"
    yield ""
    yield from _parameters(action.Input.model_json_schema())
    yield ""
    yield "### IAM permissions"
    yield ""
    yield from _permissions(action)
    example = EXAMPLE.search(inspect.getdoc(action) or "")
    if example:
        yield ""
        yield "### Example"
        yield ""
        yield "```yaml"
        yield example["body"].rstrip("\n")
        yield "```"


def _prose(action: type[Action[Any]]) -> str:
    """The docstring without its YAML example."""
    text = EXAMPLE.sub("", inspect.getdoc(action) or "")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _first_sentence(text: str) -> str:
    """The text up to the first full stop outside parentheses that ends a sentence."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "." and depth == 0 and (index + 1 == len(text) or text[index + 1] == " "):
            if not text[max(0, index - 3) : index + 1].endswith(("e.g.", "i.e.")):
                return text[: index + 1]
    return text


def _undo_word(action: type[Action[Any]]) -> str:
    if not action.mutating:
        return "nothing to undo"
    return "undoes it" if action.reversible else "not reversible"


def _undo_text(action: type[Action[Any]]) -> str:
    if not action.mutating:
        return "nothing to undo: it changes nothing."
    fallback = "undoes it." if action.reversible else "not reversible: listed as not undone."
    return markdown(undo_sentence(action)) or fallback


def _parameters(model: JsonSchema) -> Iterator[str]:
    defs: dict[str, JsonSchema] = model.get("$defs", {})
    yield from _table(model, defs)
    for nested, nested_schema in sorted(defs.items()):
        yield ""
        about = nested_schema.get("description", "")
        yield f"`{nested}`{': ' + markdown(about) if about else ''}"
        yield ""
        yield from _table(nested_schema, defs)


def _table(model: JsonSchema, defs: dict[str, JsonSchema]) -> Iterator[str]:
    properties: dict[str, JsonSchema] = model.get("properties", {})
    if not properties:
        yield "None."
        return
    required = set(model.get("required", []))
    yield "| Parameter | Type | Default | Description |"
    yield "|-----------|------|---------|-------------|"
    for name, prop in properties.items():
        default = "required" if name in required else _default(prop)
        yield (f"| `{name}` | {_cell(_type(prop, defs))} | {default} | "
               f"{_cell(markdown(prop.get('description', '')))} |")


def _default(prop: JsonSchema) -> str:
    if "default" not in prop or prop["default"] is None:
        return "unset"
    return f"`{json.dumps(prop['default'])}`"


def _type(prop: JsonSchema, defs: dict[str, JsonSchema]) -> str:
    """Say in words what a JSON Schema accepts: ``list of string``, ``one of `a`, `b```, …"""
    if "$ref" in prop:
        return f"`{prop['$ref'].rsplit('/', 1)[-1]}`"
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if options:
        return " or ".join(_type(o, defs) for o in options)
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any value")
    if kind == "array":
        words = "list of " + _type(prop.get("items", {}), defs)
    elif kind == "object":
        values = prop.get("additionalProperties")
        words = f"mapping of {_type(values, defs)}" if isinstance(values, dict) else "mapping"
    elif prop.get("format") == "date-time":
        words = "date-time (ISO 8601)"
    elif prop.get("format") == "password":
        words = "string (secret)"
    else:
        words = str(kind)
    bounds = _bounds(prop)
    return f"{words} ({bounds})" if bounds else words


def _bounds(prop: JsonSchema) -> str:
    said = []
    for keyword, word in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                          ("exclusiveMaximum", "<")):
        if keyword in prop:
            said.append(f"{word} {prop[keyword]}")
    for low, high, unit in (("minItems", "maxItems", "items"),
                            ("minLength", "maxLength", "characters")):
        if low in prop or high in prop:
            said.append(_count(prop.get(low), prop.get(high), unit))
    return ", ".join(said)


def _count(low: int | None, high: int | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low} to {high} {unit}"
    if high is not None:
        return f"at most {high} {unit}"
    return "not empty" if low == 1 else f"at least {low} {unit}"


def _permissions(action: type[Action[Any]]) -> Iterator[str]:
    if not action.permissions:
        yield "None: it makes no AWS call."
        return
    if not action.grants:
        yield ", ".join(f"`{p}`" for p in action.permissions) + " (on any resource)."
        return
    yield "| IAM actions | On | Why |"
    yield "|-------------|----|-----|"
    for grant in action.grants:
        actions = ", ".join(f"`{a}`" for a in grant.actions)
        resources = ", ".join(f"`{r}`" for r in grant.scope.resources)
        if grant.scope.conditions:
            resources += " when " + ", ".join(
                f"`{key}` {operator} `{_condition_value(value)}`"
                for operator, keys in grant.scope.conditions.items()
                for key, value in keys.items()
            )
        yield f"| {actions} | {_cell(resources)} | {_cell(grant.scope.reason)} |"


def _condition_value(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else " | ".join(value)


def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(text.split()))


def _anchor(name: str) -> str:
    """GitHub's heading anchor for ``## `name```: lowercase, punctuation but - and _ dropped."""
    return re.sub(r"[^a-z0-9_ -]", "", name.lower()).replace(" ", "-")

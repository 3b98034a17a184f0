"""Check a template or expression against the names its step can read, without running it.

The Jinja2 syntax tree of the sandbox that will render it is walked: a name the context does
not hold, a field the alert has not, a step that has not run yet, a ``vars`` name nothing
sets, a filter or test the sandbox lacks, or a syntax error is found here rather than by the
first real alert.
"""

from __future__ import annotations

from collections.abc import Mapping

from jinja2 import TemplateSyntaxError, nodes

from engine import templates
from engine.checks import did_you_mean
from engine.checks.context import DICT_METHODS, FREE, LIST_METHODS, Shape, renamed

# A test or filter that exists to read what may be missing: ``vars.x is defined``,
# ``steps.x.output | default({})``. Names under them are not required to be set.
_OPTIONAL_TESTS = frozenset({"defined", "undefined"})
_OPTIONAL_FILTERS = frozenset({"default", "d"})
ITEM_ONLY = "'item' is defined only in the with: of a step that has for_each"


def expression_problems(
    source: str, names: Mapping[str, Shape], *, expression: bool
) -> tuple[list[str], Shape]:
    """Return what is wrong with one template or bare expression, and the shape it gives."""
    try:
        tree = templates.parse(source, expression=expression)
    except TemplateSyntaxError as exc:
        if expression and "{{" in source:  # the usual slip: braces where none belong
            return ["an expression is written without {{ }} (e.g. when: alert.severity > 50)"], FREE
        kind = "expression" if expression else "template"
        return [f"{kind} syntax error: {exc.message}"], FREE
    walker = _Walker(names, _local_names(tree))
    shape = walker.visit(tree)
    return walker.problems, shape if expression else FREE


def _local_names(tree: nodes.Node) -> frozenset[str]:
    """Names the template sets itself ({% set %}, {% for %}, macros), which need no context."""
    local = {name.name for name in tree.find_all(nodes.Name) if name.ctx in ("store", "param")}
    if any(True for _ in tree.find_all(nodes.For)):
        local.add("loop")
    if any(True for _ in tree.find_all((nodes.Macro, nodes.CallBlock))):
        local |= {"caller", "varargs", "kwargs"}
    return frozenset(local)


class _Walker:
    """Visit a syntax tree, giving each expression its shape and noting each problem once."""

    def __init__(self, names: Mapping[str, Shape], local: frozenset[str]) -> None:
        self.names = names
        self.local = local
        self.problems: list[str] = []

    def note(self, problem: str) -> Shape:
        if problem not in self.problems:
            self.problems.append(problem)
        return FREE

    def visit(self, node: nodes.Node, optional: bool = False) -> Shape:
        if isinstance(node, nodes.Name) and node.ctx == "load":
            return self._name(node.name)
        if isinstance(node, nodes.Getattr):
            return self._field(self.visit(node.node, optional), node.attr, optional)
        if isinstance(node, nodes.Getitem):
            return self._item(node, optional)
        if isinstance(node, nodes.Filter | nodes.Test):
            return self._call(node, optional)
        for child in node.iter_child_nodes():
            self.visit(child)
        return FREE

    def _name(self, name: str) -> Shape:
        if name in self.local or name in templates.GLOBALS:
            return FREE
        if name in self.names:
            return self.names[name]
        if name == "item":
            return self.note(ITEM_ONLY)
        readable = sorted(self.names)
        return self.note(f"{name!r} is not defined{did_you_mean(name, readable)}; templates "
                         f"read {', '.join(readable)}")

    def _item(self, node: nodes.Getitem, optional: bool) -> Shape:
        owner = self.visit(node.node, optional)
        key = node.arg
        if isinstance(key, nodes.Const) and isinstance(key.value, str):
            return self._field(owner, key.value, optional, subscript=True)
        self.visit(key)
        if owner.kind == "list" and owner.item is not None:
            if isinstance(key, nodes.Slice):
                return owner
            if isinstance(key, nodes.Const) and isinstance(key.value, int):
                return renamed(owner.item, f"{owner.name}[{key.value}]")
        return FREE

    def _call(self, node: nodes.Filter | nodes.Test, optional: bool) -> Shape:
        if isinstance(node, nodes.Filter):
            known, what, reads_missing = templates.FILTERS, "filter", _OPTIONAL_FILTERS
        else:
            known, what, reads_missing = templates.TESTS, "test", _OPTIONAL_TESTS
        if node.name not in known:
            self.note(f"no {what} {node.name!r} in the sandbox{did_you_mean(node.name, known)}")
        if node.node is not None:  # None: the filter of a {% filter %} block
            self.visit(node.node, optional or node.name in reads_missing)
        for child in node.iter_child_nodes(exclude=("node",)):
            self.visit(child)
        return FREE

    def _field(self, owner: Shape, name: str, optional: bool, subscript: bool = False) -> Shape:
        if owner.kind == "free" or (owner.fields is None and owner.kind != "list"):
            return FREE
        if owner.kind == "list":
            if name in LIST_METHODS and not subscript:
                return FREE
            return self.note(f"{owner.name} is a list: read one of its items "
                             f"({owner.name}[0].{name}) or all ({owner.name} | "
                             f"map(attribute='{name}'))")
        assert owner.fields is not None
        if name in owner.fields:
            return owner.fields[name]
        if name in owner.absent:
            return self.note(f"step {name!r} {owner.absent[name]}")
        if name in DICT_METHODS and not subscript:
            return FREE
        if optional and owner.kind in ("steps", "vars"):
            return FREE  # read through `is defined` or `default`: it may be missing
        hint = did_you_mean(name, owner.fields)
        if owner.kind == "steps":
            return self.note(f"no step {name!r} before this one{hint}")
        if owner.kind == "vars":
            return self.note(f"vars.{name} is set neither by the playbook's vars nor by an "
                             f"earlier step{hint}")
        listed = f"; it has {', '.join(owner.fields)}" if len(owner.fields) <= 8 else ""
        return self.note(f"{owner.name} has no field {name!r}{hint}{listed}")

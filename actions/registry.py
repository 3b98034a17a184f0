"""The one registry of actions: names to classes."""

from __future__ import annotations

import difflib
import functools
import importlib
import pkgutil
from typing import Any, TypeVar

from actions.base import Action

A = TypeVar("A", bound=type[Action[Any]])

_ACTIONS: dict[str, type[Action[Any]]] = {}


def register(cls: A) -> A:
    """Register an action class under its ``name``; a name can be taken only once."""
    if cls.name in _ACTIONS and _ACTIONS[cls.name] is not cls:
        raise ValueError(f"action name {cls.name!r} is registered twice")
    _ACTIONS[cls.name] = cls
    return cls


@functools.cache
def _load() -> None:
    # Importing every module of the package runs their @register decorators.
    import actions

    for module in pkgutil.walk_packages(actions.__path__, prefix="actions."):
        importlib.import_module(module.name)


def all_actions() -> dict[str, type[Action[Any]]]:
    """Return every registered action by name."""
    _load()
    return dict(sorted(_ACTIONS.items()))


def get(name: str) -> type[Action[Any]]:
    """Return the action class registered as ``name``; ``KeyError`` names the nearest match."""
    actions = all_actions()
    if name not in actions:
        raise KeyError(unknown_action_message(name))
    return actions[name]


def unknown_action_message(name: str) -> str:
    """Say that ``name`` is not an action, suggesting the closest registered one."""
    close = difflib.get_close_matches(name, list(all_actions()), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown action {name!r}{hint}"

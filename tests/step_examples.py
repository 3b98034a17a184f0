"""Wrap an action's docstring example (one step) into a playbook it can validate in.

An example is one step of some playbook: the steps and ``vars`` it reads come before it there.
The wrapper gives it those (a core.log step per step id it reads, a null per ``vars`` name), so
the static checks judge the example's own mistakes, not the playbook it was cut from.
"""

from __future__ import annotations

import re
import textwrap

_STEPS_READ = re.compile(r"steps\.([A-Za-z0-9_]+)|steps\['([^']+)'\]")
_VARS_READ = re.compile(r"vars\.([A-Za-z0-9_]+)")


def example_playbook(example: str, name: str = "docstring-example") -> str:
    """Return playbook text whose last step is ``example`` (a YAML list of one step)."""
    earlier = sorted({a or b for a, b in _STEPS_READ.findall(example)})
    read_vars = sorted(set(_VARS_READ.findall(example)))
    lines = [f"name: {name}"]
    if read_vars:
        lines.append("vars: {" + ", ".join(f"{var}: null" for var in read_vars) + "}")
    lines.append("steps:")
    lines += [f"  - {{id: {step}, action: core.log, with: {{message: earlier}}}}"
              for step in earlier]
    return "\n".join(lines) + "\n" + textwrap.indent(textwrap.dedent(example), "  ")

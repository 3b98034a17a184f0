"""Static checks of a playbook: what would fail when a real alert runs into it, found at load.

Each check returns ``Finding``s: a location in the playbook's data (``("steps", 2, "when")``)
and a message in a playbook author's words; ``engine.playbooks`` turns locations into lines.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

Loc = tuple[str | int, ...]
Finding = tuple[Loc, str]


def did_you_mean(word: str, options: Iterable[str], *, cutoff: float = 0.7) -> str:
    """Return `` (did you mean 'x'?)`` for the option closest to ``word``, or nothing."""
    choices = sorted({str(option) for option in options})
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    if not close:  # 'high' for 'HIGH', 'awsec2instance' for 'AwsEc2Instance'
        folded = {choice.casefold(): choice for choice in choices}
        match = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=cutoff)
        close = [folded[match[0]]] if match else []
    return f" (did you mean {close[0]!r}?)" if close else ""

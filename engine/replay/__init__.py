"""Replay recorded alerts through playbooks in dry-run: ``riposte plan`` and ``riposte replay``.

``bursts`` decides which runs alerts in time order would start (as the store's triggers do),
``report`` rehearses those runs and reports per alert, ``differences`` compares two reports and
judges them against what a team said to expect, ``cassettes`` records and replays the AWS
lookups, ``revisions`` reads the playbooks of a git revision.
"""

from engine.replay.bursts import BurstPlan, Handling, plan_runs, why_not_triggered
from engine.replay.report import alert_key, planned_calls, quiet_actions, replay

__all__ = [
    "BurstPlan",
    "Handling",
    "alert_key",
    "plan_runs",
    "planned_calls",
    "quiet_actions",
    "replay",
    "why_not_triggered",
]

"""The README's table of alert sources names every source, kind and resource type Riposte makes.

The values are read from the normalizers' own code (``engine/normalize/``), not from a list kept
beside the README, so a new source or kind that the README does not mention fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from api.schemas.alerts import AlertIn

ROOT = Path(__file__).resolve().parents[2]
NORMALIZERS = sorted((ROOT / "engine" / "normalize").glob("*.py"))


def strings(node: ast.expr) -> set[str]:
    """The string literals ``node`` may evaluate to: both results of ``a if c else b``, each
    operand of ``a or b``; none for a name or a call (their values come from the tables)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return strings(node.body) | strings(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(strings(value) for value in node.values))
    return set()


def produced() -> dict[str, set[str]]:
    """The sources, kinds and resource types the normalizers write, read from their code."""
    found: dict[str, set[str]] = {"source": set(), "kind": set(), "type": set()}
    for path in NORMALIZERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg in ("source", "kind"):
                        found[keyword.arg] |= strings(keyword.value)
                    called = node.func.id if isinstance(node.func, ast.Name) else ""
                    if called == "Resource" and keyword.arg == "type":
                        found["type"] |= strings(keyword.value)
            # Tables of values: CloudTrail's kinds by eventType, resource types by ARN.
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                table = {"_KINDS": "kind", "_ARN_TYPES": "type"}
                for name in names & set(table):
                    for value in node.value.values:
                        found[table[name]] |= strings(value)
    found["source"].add(str(AlertIn.model_fields["source"].default))
    found["type"].add("Other")  # what resource_from_arn calls an ARN of any other type
    return found


def readme_sources_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^#### Sources, kinds and resource types\n(.*?)(?=^#)", readme, re.S | re.M)
    assert found, "README.md lacks its '#### Sources, kinds and resource types' section"
    return found[1]


def test_the_code_reading_finds_what_the_normalizers_are_known_to_make() -> None:
    values = produced()
    assert {"cloudtrail", "cloudwatch", "guardduty", "securityhub", "sns", "eventbridge",
            "generic"} <= values["source"]
    assert {"api-call", "console-signin", "finding", "alarm", "insight"} <= values["kind"]
    assert {"AwsEc2Instance", "AwsCloudWatchAlarm", "AwsIamAccessKey"} <= values["type"]


@pytest.mark.parametrize("field", ["source", "kind", "type"])
def test_the_readme_names_every_value_the_normalizers_produce(field: str) -> None:
    section = readme_sources_section()
    missing = sorted(v for v in produced()[field] if f"`{v}`" not in section)
    assert not missing, f"README.md's sources table does not name these {field} values: {missing}"

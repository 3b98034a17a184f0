"""CloudFormation building blocks shared by the stacks: intrinsic functions, ids, output text.

Templates are plain dicts in CloudFormation's JSON form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``),
printed as YAML (the long forms are valid YAML) or JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import yaml

Format = Literal["yaml", "json"]
TEMPLATE_VERSION = "2010-09-09"
# ``${Name}`` in a Fn::Sub string; ``${!Name}`` is CloudFormation's escape for a literal.
_VARIABLE = re.compile(r"\$\{(?!!)([^}]*)\}")
# CloudFormation's pseudo parameters: always substitutable.
PSEUDO_PARAMETERS = frozenset({
    "AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
    "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
})


def ref(name: str) -> dict[str, Any]:
    """Return ``{"Ref": name}``."""
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, Any]:
    """Return ``{"Fn::GetAtt": [resource, attribute]}``."""
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> dict[str, Any]:
    """Return ``{"Fn::Sub": text}``."""
    return {"Fn::Sub": text}


def substituted(value: Any, *, names: frozenset[str] = frozenset()) -> Any:
    """Wrap every string holding ``${`` in ``Fn::Sub``, anywhere in a JSON-like value.

    Only pseudo parameters (``${AWS::AccountId}``) and ``names`` (the template's parameters and
    resources) are substituted; any other ``${...}`` — an IAM policy variable such as
    ``${aws:username}`` — is escaped to ``${!...}`` so it reaches IAM as written.
    """
    if isinstance(value, dict):
        return {key: substituted(item, names=names) for key, item in value.items()}
    if isinstance(value, list):
        return [substituted(item, names=names) for item in value]
    if isinstance(value, str) and "${" in value:
        known = PSEUDO_PARAMETERS | names

        def escape(match: re.Match[str]) -> str:
            inner = match.group(1)
            name = inner.split(".", 1)[0]  # ${Resource.Attribute}
            return match.group(0) if name in known else "${!" + inner + "}"

        return sub(_VARIABLE.sub(escape, value))
    return value


def logical_id(*parts: str) -> str:
    """Return a CloudFormation logical id from words: ``("mass-termination", "1a2b")`` ->
    ``MassTermination1a2b``."""
    words = re.split(r"[^A-Za-z0-9]+", " ".join(parts))
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> Any:
    """Return an ARN in this stack's partition (and region, account) as a Fn::Sub."""
    where = ("${AWS::Region}" if region else "") + ":" + ("${AWS::AccountId}" if account else "")
    return sub(f"arn:${{AWS::Partition}}:{service}:{where}:{resource}")


def render(template: dict[str, Any], fmt: Format, *, header: str = "") -> str:
    """Return the template as YAML (after ``header`` as comment lines) or JSON."""
    if fmt == "json":
        return json.dumps(template, indent=2) + "\n"
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    body = yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=False, default_flow_style=False)
    return comment + body


class _Dumper(yaml.SafeDumper):
    """A safe dumper that never writes anchors (CloudFormation reads them, people stumble)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

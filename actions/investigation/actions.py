"""``investigation.assess`` and ``investigation.narrate``: the seed's steps 2 to 5 as steps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field, ValidationError

from actions.base import Action, ActionContext, ActionError, ActionInput
from actions.geo.lookup import LookupIp, LookupIpInput
from actions.investigation.artifacts import extract
from actions.investigation.assess import assess
from actions.investigation.location import addresses_to_look_up
from actions.investigation.narrative import narrate
from actions.investigation.sources import Sources
from actions.registry import register


class AssessInput(ActionInput):
    alerts: list[dict[str, Any]] | None = Field(
        default=None,
        description="Every alert of the run (`{{ alerts }}`), for a threshold or correlated "
        "run; default: the run's alert only.",
    )
    events: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=1000,
        description="CloudTrail events found for the alert, shaped like alerts (the `events` "
        "of a caller of aws.cloudtrail.find_callers): the calls an alarm counted. They are "
        "the triggering events, and their principal is judged when the alert names none.",
    )
    history: dict[str, Any] | None = Field(
        default=None, description="The output of aws.cloudtrail.principal_history."
    )
    principal: dict[str, Any] | None = Field(
        default=None, description="The output of aws.iam.describe_principal."
    )
    instances: dict[str, Any] | None = Field(
        default=None, description="The output of aws.ec2.describe_instances."
    )
    usual_countries: list[str] | None = Field(
        default=None,
        description="ISO country codes the principal normally comes from; default: the "
        "countries of its addresses in the history before the event.",
    )
    geolocate: bool = Field(
        default=True,
        description="Look the event's and the history's addresses up (offline, as "
        "geo.lookup_ip does).",
    )


@register
class Assess(Action[AssessInput]):
    """Answer the analyst's questions about the alert from the enrichment outputs, with evidence.

    Extracts the artifacts of the triggering events (time, name, source IP, user, account,
    instances, state changes; a CloudWatch alarm as an alarm, with the calls it counted given
    as ``events``) and answers each question AWS data can answer as a finding —
    question, answer, evidence, confidence, and ``signal`` (unusual, notable, normal) — such as
    whether the event is off-hours for the principal, where its address is compared with the
    principal's usual countries, failed sign-ins and MFA, recent changes to the principal, and
    the instances' age, history, workload and backups. What it cannot answer (an input missing,
    threat intelligence, a manager's confirmation) is listed in ``open_questions`` with why.
    The ``verdict`` says whether the activity is unusual (the finding ids that make it so), a
    severity, and the kind of principal (user, role, …) for the playbook's containment steps.
    Sets the run variables ``findings``, ``open_questions`` and ``verdict``.

    ```yaml
    - id: assess
      action: investigation.assess
      with:
        alerts: "{{ alerts }}"
        history: "{{ steps.history.output }}"
        principal: "{{ steps.who.output }}"
        instances: "{{ steps.describe.output }}"
    ```
    """

    name = "investigation.assess"
    Input = AssessInput

    def run(self, ctx: ActionContext, params: AssessInput) -> dict[str, Any]:
        accounts = {
            account: entry.model_dump() for account, entry in ctx.settings.accounts.items()
        }
        sources = Sources(
            artifacts=extract(ctx.alert, params.alerts or [], params.events or []),
            history=params.history,
            principal=params.principal,
            instances=params.instances,
            usual_countries=params.usual_countries,
            accounts=accounts,
        )
        if params.geolocate:
            geo, error = _geolocate(ctx, addresses_to_look_up(sources))
        else:
            geo, error = {}, "the step turned geolocation off (geolocate: false)"
        sources = replace(sources, geo=geo, geo_error=error)
        result = assess(sources)
        ctx.set_vars({key: result[key] for key in ("findings", "open_questions", "verdict")})
        return result


def _geolocate(ctx: ActionContext, addresses: list[str]) -> tuple[dict[str, Any], str | None]:
    """Look each address up as geo.lookup_ip does; an unusable database is said, not raised."""
    lookup = LookupIp()
    answers: dict[str, Any] = {}
    for address in addresses:
        try:
            params = LookupIpInput(ip=address)
        except ValidationError:
            continue  # not an address (CloudTrail writes e.g. "AWS Internal"): nothing to place
        try:
            answers[address] = lookup.run(ctx, params)
        except ActionError as exc:
            if exc.code != "GeoDatabaseUnavailable":
                raise
            return answers, f"the geolocation database is unavailable ({exc.message})"
    return answers, None


class NarrateInput(ActionInput):
    findings: list[dict[str, Any]] = Field(
        default_factory=list, description="The findings of investigation.assess."
    )
    open_questions: list[dict[str, Any]] = Field(
        default_factory=list, description="Its open questions."
    )
    verdict: dict[str, Any] = Field(default_factory=dict, description="Its verdict.")


@register
class Narrate(Action[NarrateInput]):
    """Write the narrative and the recommendation from the findings only, sentence by sentence.

    The narrative says, in plain English, what happened, when, by whom, from where, why it is
    unusual (or that it matches the principal's usual pattern) and what it puts at risk; the
    recommendation says what to contain, revoke and relaunch and whom to confirm with. Each
    sentence lists the findings it was written from (``sentences``); a value no finding holds
    is never stated. Sets the run variables ``narrative`` and ``recommendation``, which
    approvers read with the plan.

    ```yaml
    - id: narrate
      action: investigation.narrate
      with:
        findings: "{{ vars.findings }}"
        open_questions: "{{ vars.open_questions }}"
        verdict: "{{ vars.verdict }}"
    ```
    """

    name = "investigation.narrate"
    Input = NarrateInput

    def run(self, ctx: ActionContext, params: NarrateInput) -> dict[str, Any]:
        written = narrate(params.findings, params.open_questions, params.verdict)
        ctx.set_vars({"narrative": written["narrative"],
                      "recommendation": written["recommendation"]})
        return written

"""Settings of Slack: the app that posts approval requests and whose buttons decide them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from core.setting_variables import VariableSettings, variable


class SlackPerson(BaseModel):
    """Who a Slack user decides as: a Riposte identity (the actor's name) and its role."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: Literal["responder", "admin"]

    @field_validator("name")
    @classmethod
    def _a_name(cls, name: str) -> str:
        # engine/slack/people.py also refuses Riposte's reserved names (system, admin...).
        if name != name.strip() or ":" in name or not name.isprintable():
            raise ValueError(f"{name!r} is not a name: no ':', no blanks around, printable")
        return name


class SlackSettings(VariableSettings):
    """Which Slack app posts approval requests and who its users are to Riposte."""

    # --- Slack: interactive approvals (engine/slack, POST /v1/webhooks/slack/interactions) ----
    slack_bot_token: SecretStr | None = Field(
        default=None,
        description="Bot token (xoxb-...) of Riposte's Slack app, which posts to slack: targets "
        "(scopes chat:write, and users:read.email for people mapped by e-mail); a secret.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret of that Slack app: every request Slack sends to "
        "/v1/webhooks/slack/interactions must be signed with it; a secret. Unset: the endpoint "
        "refuses every request (the buttons do nothing).",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Base URL of Slack's Web API (another one only for tests or a proxy).",
    )
    slack_people: dict[str, SlackPerson] = Field(
        default={},
        description="Who a Slack user is to Riposte (a JSON object): Slack user id or e-mail -> "
        '{"name": ..., "role": "responder" or "admin"}; the name is the actor of their '
        "decisions, matched against approvers' token:<name> entries, the run's starter and "
        "who delivered its alerts. An unmapped user's clicks are refused.",
    )

    def _slack_warnings(self, *, serving: bool) -> list[str]:
        if not serving or self.slack_bot_token is None:
            return []
        if self.slack_signing_secret is None:
            return [f"{variable('slack_bot_token')} is set but {variable('slack_signing_secret')}"
                    " is not: Slack messages show Approve and Reject buttons that this API "
                    "refuses; set the signing secret of the Slack app"]
        if not self.slack_people:
            return [f"{variable('slack_people')} maps nobody: every decision made in Slack is "
                    "refused; map Slack user ids or e-mails to approvers' names and roles"]
        return []

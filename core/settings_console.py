"""Settings of the console: its sessions and sign-in with OpenID Connect."""

from __future__ import annotations

from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from core.setting_variables import VariableSettings, variable

# The roles a console sign-in can be given: engine/identities.py's ROLES, lowest first (the
# settings do not reach up into engine/; tests/e2e/test_console_oidc.py keeps the two the same).
Role = Literal["ingest", "responder", "admin"]
# Hosts an OIDC issuer may be reached on over plain http: this machine only (tests, a demo).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class ConsoleSettings(VariableSettings):
    """How the console signs people in and how long their sessions last."""

    # --- The console: sessions (api/console/sessions.py) ---------------------------------------
    console_secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs the console's session cookies: 32 characters or more of "
        "random (openssl rand -hex 32), in a secret file. Unset: each API process makes a "
        "random key of its own, so sessions end when it restarts and are not shared between API "
        "replicas.",
    )
    console_session_hours: float = Field(
        default=8.0,
        gt=0,
        le=24 * 30,
        description="How long a console sign-in lasts before the person signs in again (a "
        "token's session also ends as soon as its token is revoked or expires).",
    )

    @field_validator("console_secret_key")
    @classmethod
    def _console_key_long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        # Checked here, not by Field(min_length): the message must not echo the key.
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("too short to sign sessions: give 32 characters or more of random "
                             "(openssl rand -hex 32)")
        return key

    # --- The console: sign-in with OpenID Connect (api/console/oidc.py) ------------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the OpenID Connect provider people sign in to the console "
        "with, exactly as its ID tokens' `iss` says (https; http only on localhost); its "
        "configuration is read from {issuer}/.well-known/openid-configuration. Unset: no OIDC "
        "sign-in.",
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="Client id of Riposte's application at the provider; required with "
        "RIPOSTE_OIDC_ISSUER. Its redirect URI is {RIPOSTE_PUBLIC_URL}/ui/sign-in/oidc/callback.",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="Client secret of that application (a confidential client), sent to the "
        "token endpoint; a secret. Unset: a public client, proven by PKCE alone.",
    )
    oidc_scopes: str = Field(
        default="openid email profile",
        description="Scopes asked for, separated by blanks (OAuth's own form); must hold "
        "openid. Add the one that makes your provider send groups where it needs one "
        "(`groups` for Okta, Dex, Authentik).",
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="Claim of the ID token (or, when the token lacks it, of the userinfo "
        "answer) that lists the person's groups.",
    )
    oidc_roles: dict[str, Role] = Field(
        default={},
        description="Which provider group gives which Riposte role: a JSON object "
        "({\"secops-oncall\": \"responder\", \"secops-leads\": \"admin\"}) or "
        "group=role pairs separated by commas. A person in several groups gets the highest of "
        "their roles (ingest < responder < admin); one in none is refused.",
    )

    # Defined after VariableSettings._decode_text (in a subclass), so that it runs before it
    # (pydantic runs a field's "before" validators last-defined first): _decode_text would
    # read group=role pairs as bad JSON.
    @field_validator("oidc_roles", mode="before")
    @classmethod
    def _group_role_pairs(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().startswith("{"):
            return value
        roles: dict[str, str] = {}
        for pair in value.split(","):
            if not pair.strip():
                continue
            group, equals, role = pair.rpartition("=")  # a role has no "=", a group may
            if not equals or not group.strip():
                raise ValueError(
                    f"{pair.strip()!r} is not group=role: write group=role pairs separated by "
                    "commas, or a JSON object (for group names that hold a comma)")
            if role.strip() not in get_args(Role):
                raise ValueError(
                    f"{pair.strip()!r}: {role.strip()!r} is not a role "
                    f"({', '.join(get_args(Role))}); a group name that holds a comma needs the "
                    "JSON form")
            roles[group.strip()] = role.strip()
        return roles

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_is_https(cls, issuer: str | None) -> str | None:
        if issuer is None or not issuer.strip():
            return None
        issuer = issuer.strip()
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{issuer!r} is not an https:// URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"{issuer!r}: an issuer is reached over https (http only on "
                             "localhost, for tests)")
        if parts.query or parts.fragment:
            raise ValueError(f"{issuer!r}: an issuer has no query nor fragment")
        return issuer

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes_hold_openid(cls, scopes: str) -> str:
        words = scopes.replace(",", " ").split()
        if "openid" not in words:
            raise ValueError(f"{scopes!r} lacks openid, without which there is no ID token")
        return " ".join(words)

    @field_validator("oidc_roles")
    @classmethod
    def _groups_named(cls, roles: dict[str, str]) -> dict[str, str]:
        if any(not group.strip() for group in roles):
            raise ValueError("a group's name must not be empty")
        return roles

    @model_validator(mode="after")
    def _oidc_has_a_client(self) -> ConsoleSettings:
        if self.oidc_issuer is not None and not (self.oidc_client_id or "").strip():
            raise ValueError(
                f"{variable('oidc_issuer')} is set but {variable('oidc_client_id')} is not: set "
                "it to the client id of Riposte's application at the provider"
            )
        return self

    def _oidc_warnings(self, *, serving: bool) -> list[str]:
        issuer = variable("oidc_issuer")
        if self.oidc_issuer is None:
            unused = [variable(name) for name in ("oidc_client_id", "oidc_client_secret",
                                                  "oidc_roles")
                      if getattr(self, name)]
            if not unused:
                return []
            verb = "are" if len(unused) > 1 else "is"
            return [f"{' and '.join(unused)} {verb} set but {issuer} is not: the console offers "
                    f"no OpenID Connect sign-in; set {issuer} to offer it"]
        if not serving or self.oidc_roles:
            return []
        return [f"{issuer} is set but {variable('oidc_roles')} maps no group to a role: every "
                "OpenID Connect sign-in is refused; map your groups, e.g. "
                '{"secops-oncall": "responder", "secops-leads": "admin"}']

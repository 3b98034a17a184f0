"""Signing in to the console with OpenID Connect, against a real provider running locally.

Riposte runs under uvicorn; the provider (tests/oidc_provider.py) is oidc-provider-mock, a
standards-compliant OpenID provider served in a thread. A browser (an httpx client with a cookie
jar) goes from Riposte to the provider's authorization form, signs in as a person whose claims
the test set, and comes back to Riposte's callback: every redirect is followed by hand, so a
test can look at, or change, what travels between the two.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, get_args
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from api.app import create_app
from api.console.oidc_flow import FLOW_COOKIE
from api.console.sessions import COOKIE as SESSION_COOKIE
from api.console.sessions import SECURE_COOKIE as SECURE_SESSION_COOKIE
from api.console.sessions import ConsoleIdentity, ConsoleSession, SessionSigner
from core.settings import Role, Settings, SettingsInvalid, read_settings
from engine.identities import ROLES
from tests.e2e.conftest import Tokens
from tests.live_server import free_port, serving
from tests.oidc_provider import LocalProvider, serving_provider

# The provider (not Riposte) still configures authlib's ID tokens the way authlib deprecates; it
# warns in the provider's server thread, which pytest's warnings-as-errors would turn into 500s.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:get_jwt_config\(self, grant\) is deprecated:DeprecationWarning")

GROUP_ROLES = {"secops-oncall": "responder", "secops-leads": "admin"}
SECRET = "client-secret-of-riposte"
CONSOLE_KEY = "0123456789abcdef" * 4  # RIPOSTE_CONSOLE_SECRET_KEY: every replica has the same


# Every client of the module shares one: loading the CA certificates for each costs ~0.1 s.
TLS = httpx.create_ssl_context()


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    # A sign-in writes its audit rows as everything else does (tested on both databases):
    # SQLite alone keeps this module's time small.
    return sqlite_url


@pytest.fixture
def provider() -> Iterator[LocalProvider]:
    with serving_provider() as local:
        yield local


def oidc_settings(settings: Settings, issuer: str | None, **more: Any) -> Settings:
    """The e2e settings, signing in with OIDC at ``issuer`` as a confidential client."""
    return Settings.model_validate({
        **settings.model_dump(), "oidc_issuer": issuer, "oidc_client_id": "riposte-console",
        "oidc_client_secret": SECRET, "oidc_roles": GROUP_ROLES,
        "console_secret_key": CONSOLE_KEY, **more,
    })


@pytest.fixture
def make_riposte(settings: Settings, tokens: Tokens) -> Iterator[Callable[..., str]]:
    """Return ``start(issuer, **settings)``: serve a Riposte app and return its base URL."""
    with ExitStack() as servers:
        def start(issuer: str | None, **more: Any) -> str:
            app = create_app(oidc_settings(settings, issuer, **more))
            return servers.enter_context(serving(app))

        yield start


@pytest.fixture
def riposte(make_riposte: Callable[..., str], provider: LocalProvider) -> str:
    return make_riposte(provider.issuer)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """The person's browser: it keeps cookies; each redirect is followed by the test."""
    with httpx.Client(follow_redirects=False, timeout=10, verify=TLS) as client:
        yield client


def person(provider: LocalProvider, sub: str, **claims: Any) -> None:
    """Give the person ``sub`` these claims at the provider (its own API, as an admin would)."""
    answer = httpx.put(f"{provider.issuer}/users/{sub}", json=claims, verify=TLS)
    assert answer.status_code == 204, answer.text


def go_to_provider(browser: httpx.Client, riposte: str, next_path: str = "/ui/runs") -> str:
    """Ask Riposte to sign in; return the provider's authorization URL it sends the browser to."""
    answer = browser.get(f"{riposte}/ui/sign-in/oidc", params={"next": next_path})
    assert answer.status_code == 302, answer.text
    assert FLOW_COOKIE in answer.cookies
    return answer.headers["location"]


def sign_in_at_provider(browser: httpx.Client, authorize_url: str, sub: str) -> str:
    """Sign in on the provider's form as ``sub``; return the callback URL it sends back to."""
    answer = browser.post(authorize_url, data={"sub": sub})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def sign_in(browser: httpx.Client, riposte: str, provider: LocalProvider, sub: str,
            next_path: str = "/ui/runs") -> httpx.Response:
    """The whole sign-in as a browser goes through it; return Riposte's answer to the callback."""
    callback = sign_in_at_provider(browser, go_to_provider(browser, riposte, next_path), sub)
    return browser.get(callback)


def with_query(url: str, **changes: str) -> str:
    """Return ``url`` with these query parameters changed."""
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def audit_rows(riposte: str, tokens: Tokens, verb: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{riposte}/v1/audit", headers=tokens.as_admin, verify=TLS)
    assert answer.status_code == 200, answer.text
    return [event for event in answer.json()["events"] if event["verb"] == verb]


def session_of(browser: httpx.Client) -> ConsoleSession:
    """The console session the browser holds, read with the console's key."""
    value = browser.cookies.get(SESSION_COOKIE)
    assert value is not None, "no session cookie was set"
    session = SessionSigner(CONSOLE_KEY, max_age=3600).loads(value)
    assert session is not None, "the session cookie is not one the console signed"
    return session


def has_session(browser: httpx.Client) -> bool:
    """Whether the browser holds a console session cookie (valid or not)."""
    return any(cookie.name in (SESSION_COOKIE, SECURE_SESSION_COOKIE)
               for cookie in browser.cookies.jar)


# ---------------------------------------------------------------------------------------------
# Signed in


def test_a_person_in_mapped_groups_is_signed_in_with_the_highest_role_and_sent_on(
    browser: httpx.Client, riposte: str, provider: LocalProvider, tokens: Tokens,
) -> None:
    person(provider, "alice", email="alice@example.com", email_verified=True,
           groups=["marketing", "secops-oncall", "secops-leads"])

    answer = sign_in(browser, riposte, provider, "alice", next_path="/ui/runs?status=failed")

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/runs?status=failed"
    assert FLOW_COOKIE not in browser.cookies  # good for one callback only
    assert session_of(browser).identity == ConsoleIdentity(
        name="alice@example.com", role="admin", via="oidc", subject="alice",
        email="alice@example.com")
    inbox = browser.get(f"{riposte}/ui/")
    assert inbox.status_code == 200, inbox.text
    assert "alice@example.com (admin)" in inbox.text
    [signed_in] = audit_rows(riposte, tokens, "console.signed_in")
    assert signed_in["actor"] == "alice@example.com"
    assert signed_in["details"] == {
        "via": "oidc", "issuer": provider.issuer, "subject": "alice", "email": "alice@example.com",
        "role": "admin", "groups": ["secops-leads", "secops-oncall"],
    }


def test_the_authorization_request_carries_a_pkce_s256_challenge_the_token_request_proves(
    browser: httpx.Client, riposte: str, provider: LocalProvider,
) -> None:
    person(provider, "bob", email="bob@example.com", groups=["secops-oncall"])

    assert sign_in(browser, riposte, provider, "bob").status_code == 303

    [authorization] = provider.requests_to("/oauth2/authorize")
    [token] = provider.requests_to("/oauth2/token")
    assert authorization["code_challenge_method"] == "S256"
    assert authorization["response_type"] == "code"
    assert authorization["scope"] == "openid email profile"
    assert authorization["redirect_uri"] == f"{riposte}/ui/sign-in/oidc/callback"
    assert len(authorization["state"]) >= 32 and len(authorization["nonce"]) >= 32
    # RFC 7636 4.2, computed here: BASE64URL(SHA256(code_verifier)) without padding.
    verifier = token["code_verifier"]
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    assert authorization["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert token["redirect_uri"] == authorization["redirect_uri"]
    assert "client_secret" not in token  # sent as HTTP basic credentials, never in the form


def test_a_sign_in_begun_on_one_api_replica_finishes_on_another(
    browser: httpx.Client, make_riposte: Callable[..., str], provider: LocalProvider,
) -> None:
    # Two API processes with the same settings, as behind a load balancer: the flow's state is
    # in the browser's cookie, not in the memory of the one that began it.
    first, second = make_riposte(provider.issuer), make_riposte(provider.issuer)
    person(provider, "carol", email="carol@example.com", groups=["secops-oncall"])
    callback = sign_in_at_provider(browser, go_to_provider(browser, first), "carol")

    answer = browser.get(callback.replace(first, second))

    assert answer.status_code == 303, answer.text
    assert has_session(browser)


def test_an_email_the_provider_has_not_verified_does_not_name_the_person(
    browser: httpx.Client, riposte: str, provider: LocalProvider, tokens: Tokens,
) -> None:
    person(provider, "dave-7f3a", email="admin@example.com", email_verified=False,
           groups=["secops-oncall"])

    assert sign_in(browser, riposte, provider, "dave-7f3a").status_code == 303

    [signed_in] = audit_rows(riposte, tokens, "console.signed_in")
    assert signed_in["actor"] != "admin@example.com"
    assert signed_in["details"] == {
        "via": "oidc", "issuer": provider.issuer, "subject": "dave-7f3a",
        "email": "admin@example.com", "email_verified": False, "role": "responder",
        "groups": ["secops-oncall"]}
    assert session_of(browser).identity == ConsoleIdentity(
        name="oidc:dave-7f3a", role="responder", via="oidc", subject="dave-7f3a", email=None)


# ---------------------------------------------------------------------------------------------
# Refused


def test_a_person_in_no_mapped_group_is_refused_and_the_refusal_is_audited_as_them(
    browser: httpx.Client, riposte: str, provider: LocalProvider, tokens: Tokens,
) -> None:
    person(provider, "erin", email="erin@example.com", groups=["marketing", "sales"])

    answer = sign_in(browser, riposte, provider, "erin")

    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "erin@example.com" in answer.text
    assert "none of your groups (marketing, sales) is given a role" in answer.text
    assert "RIPOSTE_OIDC_ROLES" in answer.text
    assert not has_session(browser)
    [refused] = audit_rows(riposte, tokens, "console.sign_in_refused")
    assert refused["actor"] == "erin@example.com"
    assert refused["details"]["reason"] == "no_mapped_group"
    assert refused["details"]["groups"] == ["marketing", "sales"]
    assert audit_rows(riposte, tokens, "console.signed_in") == []


def test_a_person_whose_groups_give_only_a_role_without_the_console_is_refused(
    browser: httpx.Client, make_riposte: Callable[..., str], provider: LocalProvider,
    tokens: Tokens,
) -> None:
    riposte = make_riposte(provider.issuer, oidc_roles={"sensors": "ingest"})
    person(provider, "gina", email="gina@example.com", groups=["sensors"])

    answer = sign_in(browser, riposte, provider, "gina")

    assert answer.status_code == 403
    assert "give you the ingest role, which cannot use the console" in answer.text
    assert not has_session(browser)
    [refused] = audit_rows(riposte, tokens, "console.sign_in_refused")
    assert (refused["actor"], refused["details"]["reason"]) == (
        "gina@example.com", "role_cannot_use_console")


def test_a_provider_that_sends_no_groups_is_named_on_the_refusal(
    browser: httpx.Client, riposte: str, provider: LocalProvider,
) -> None:
    person(provider, "frank", email="frank@example.com")

    answer = sign_in(browser, riposte, provider, "frank")

    assert answer.status_code == 403
    said = html.unescape(answer.text)
    assert "the provider sent no 'groups' claim (RIPOSTE_OIDC_GROUPS_CLAIM)" in said


def test_an_answer_whose_state_differs_is_refused_before_its_code_is_used(
    browser: httpx.Client, riposte: str, provider: LocalProvider, tokens: Tokens,
) -> None:
    person(provider, "alice", email="alice@example.com", groups=["secops-leads"])
    callback = sign_in_at_provider(browser, go_to_provider(browser, riposte), "alice")

    answer = browser.get(with_query(callback, state="another-sign-in-s-state"))

    assert answer.status_code == 400
    assert "does not belong to the sign-in this browser started" in answer.text
    assert not has_session(browser)
    assert provider.requests_to("/oauth2/token") == []  # the code was never exchanged
    [refused] = audit_rows(riposte, tokens, "console.sign_in_refused")
    assert (refused["actor"], refused["details"]["reason"]) == ("anonymous", "state_mismatch")


def test_an_id_token_issued_for_another_nonce_is_refused(
    browser: httpx.Client, riposte: str, provider: LocalProvider, tokens: Tokens,
) -> None:
    # The provider echoes the authorization request's nonce into the ID token: an attacker who
    # replaces it (or replays a code from another sign-in) gets a token Riposte must refuse.
    person(provider, "alice", email="alice@example.com", groups=["secops-leads"])
    authorize_url = go_to_provider(browser, riposte)
    callback = sign_in_at_provider(browser, with_query(authorize_url, nonce="not-riposte-s"),
                                   "alice")

    answer = browser.get(callback)

    assert answer.status_code == 400
    assert "its nonce is not the one this sign-in sent" in answer.text
    assert not has_session(browser)
    assert provider.requests_to("/oauth2/token")  # refused after the exchange, on the token
    [refused] = audit_rows(riposte, tokens, "console.sign_in_refused")
    assert refused["details"]["reason"] == "id_token_invalid"


def test_a_callback_without_the_sign_in_s_cookie_is_refused(
    browser: httpx.Client, riposte: str, provider: LocalProvider,
) -> None:
    person(provider, "alice", email="alice@example.com", groups=["secops-leads"])
    callback = sign_in_at_provider(browser, go_to_provider(browser, riposte), "alice")
    browser.cookies.clear()  # another browser, or the cookie expired

    answer = browser.get(callback)

    assert answer.status_code == 400
    assert "no sign-in under way here" in answer.text
    assert not has_session(browser)


def test_a_flow_cookie_the_browser_changed_is_refused(
    browser: httpx.Client, riposte: str, provider: LocalProvider,
) -> None:
    person(provider, "alice", email="alice@example.com", groups=["secops-leads"])
    callback = sign_in_at_provider(browser, go_to_provider(browser, riposte), "alice")
    [cookie] = [cookie for cookie in browser.cookies.jar if cookie.name == FLOW_COOKIE]
    assert cookie.value is not None
    middle = len(cookie.value) // 3  # in the signed content, not in the signature
    cookie.value = (cookie.value[:middle] + ("A" if cookie.value[middle] != "A" else "B")
                    + cookie.value[middle + 1:])

    answer = browser.get(callback)

    assert answer.status_code == 400
    assert "no sign-in under way here" in answer.text
    assert not has_session(browser)


def test_a_sign_in_denied_at_the_provider_is_a_page_saying_so(
    browser: httpx.Client, riposte: str, provider: LocalProvider,
) -> None:
    authorize_url = go_to_provider(browser, riposte)
    denied = browser.post(authorize_url, data={"action": "deny"})
    assert denied.status_code == 302

    answer = browser.get(denied.headers["location"])

    assert answer.status_code == 403
    assert "Not signed in: the identity provider did not sign you in: access_denied" in answer.text
    assert not has_session(browser)


def test_an_unreachable_provider_is_a_page_saying_so_not_a_server_error(
    browser: httpx.Client, make_riposte: Callable[..., str], tokens: Tokens,
) -> None:
    riposte = make_riposte(f"http://localhost:{free_port()}")  # nothing listens there

    answer = browser.get(f"{riposte}/ui/sign-in/oidc")

    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert "Not signed in: the identity provider cannot be reached" in answer.text
    [refused] = audit_rows(riposte, tokens, "console.sign_in_refused")
    assert refused["details"]["reason"] == "provider_unreachable"


def test_without_an_issuer_there_is_no_oidc_sign_in(
    browser: httpx.Client, make_riposte: Callable[..., str],
) -> None:
    riposte = make_riposte(None, oidc_client_id=None, oidc_client_secret=None, oidc_roles={})

    answer = browser.get(f"{riposte}/ui/sign-in/oidc")

    assert answer.status_code == 404
    assert "RIPOSTE_OIDC_ISSUER is not set" in answer.text


def test_a_sign_in_never_sends_the_browser_off_the_console(
    browser: httpx.Client, riposte: str, provider: LocalProvider,
) -> None:
    person(provider, "bob", email="bob@example.com", groups=["secops-oncall"])

    answer = sign_in(browser, riposte, provider, "bob", next_path="https://evil.example/ui/")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/"


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [name for name in os.environ if name.startswith("RIPOSTE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RIPOSTE_OIDC_ISSUER", "https://login.example.com/tenant/v2.0")
    monkeypatch.setenv("RIPOSTE_OIDC_CLIENT_ID", "riposte")
    return monkeypatch


@pytest.mark.parametrize("written", [
    "secops-oncall=responder, secops-leads=admin",
    '{"secops-oncall": "responder", "secops-leads": "admin"}',
])
def test_group_roles_are_pairs_or_a_json_object(env: pytest.MonkeyPatch, written: str) -> None:
    env.setenv("RIPOSTE_OIDC_ROLES", written)

    assert read_settings().oidc_roles == GROUP_ROLES


@pytest.mark.parametrize(("variables", "problem"), [
    ({"RIPOSTE_OIDC_ISSUER": "http://login.example.com"},
     "RIPOSTE_OIDC_ISSUER: 'http://login.example.com': an issuer is reached over https (http "
     "only on localhost, for tests)"),
    ({"RIPOSTE_OIDC_CLIENT_ID": ""},
     "RIPOSTE_OIDC_ISSUER is set but RIPOSTE_OIDC_CLIENT_ID is not: set it to the client id of "
     "Riposte's application at the provider"),
    ({"RIPOSTE_OIDC_ROLES": "secops=root"},
     "RIPOSTE_OIDC_ROLES: 'secops=root': 'root' is not a role (ingest, responder, admin); a "
     "group name that holds a comma needs the JSON form"),
    ({"RIPOSTE_OIDC_ROLES": '{"secops": "boss"}'},
     "RIPOSTE_OIDC_ROLES['secops']: Input should be 'ingest', 'responder' or 'admin', not "
     "'boss'"),
    ({"RIPOSTE_OIDC_SCOPES": "email profile"},
     "RIPOSTE_OIDC_SCOPES: 'email profile' lacks openid, without which there is no ID token"),
])
def test_oidc_settings_riposte_cannot_use_stop_it_naming_the_variable(
    env: pytest.MonkeyPatch, variables: dict[str, str], problem: str,
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)

    with pytest.raises(SettingsInvalid) as refused:
        read_settings()

    assert str(refused.value) == f"invalid settings: {problem}"


def test_oidc_settings_without_an_issuer_or_roles_are_warnings(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_OIDC_CLIENT_SECRET", "s3cr3t")

    assert [said for said in read_settings().warnings(serving=True) if "OIDC" in said] == [
        "RIPOSTE_OIDC_ISSUER is set but RIPOSTE_OIDC_ROLES maps no group to a role: every "
        "OpenID Connect sign-in is refused; map your groups, e.g. "
        '{"secops-oncall": "responder", "secops-leads": "admin"}']
    env.delenv("RIPOSTE_OIDC_ISSUER")
    env.setenv("RIPOSTE_OIDC_ROLES", "secops=admin")
    assert read_settings().warnings() == [
        "RIPOSTE_OIDC_CLIENT_ID and RIPOSTE_OIDC_CLIENT_SECRET and RIPOSTE_OIDC_ROLES are set "
        "but RIPOSTE_OIDC_ISSUER is not: the console offers no OpenID Connect sign-in; set "
        "RIPOSTE_OIDC_ISSUER to offer it"]


def test_the_roles_a_group_may_give_are_riposte_s_roles_lowest_first() -> None:
    # ``metrics`` is a scraper's token role, never a person's: no group gives it.
    assert get_args(Role) == tuple(role for role in ROLES if role != "metrics")

"""The console's doors: token sign-in exchanged for a signed session cookie, signed-out
visitors sent to sign in (and only ever back to a console page), sessions that end with their
token, CSRF on every form, and the Content-Security-Policy on every answer.

SQLite only: nothing here is the database's (the store functions are tested on both).
"""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from api.app import create_app
from core.settings import Settings
from engine.store.models import AuditEvent
from tests.e2e.conftest import Tokens
from tests.e2e.console_client import CONSOLE_CSP, console_client, page, sign_in, signed_in


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def console(settings: Settings, tokens: Tokens) -> Iterator[TestClient]:
    """A browser on this machine, not signed in, of an app with no worker."""
    with console_client(create_app(settings)) as client:
        yield client


def set_cookies(response: object) -> dict[str, SimpleCookie]:
    """The cookies an answer sets, by name, with their attributes."""
    found = {}
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        found.update(dict.fromkeys(cookie, cookie))
    return found


def location(response: object) -> tuple[str, dict[str, list[str]]]:
    where = urlsplit(response.headers["location"])  # type: ignore[attr-defined]
    return where.path, parse_qs(where.query)


def test_a_signed_out_visitor_is_sent_to_sign_in_and_back_to_the_page_after(
    console: TestClient, tokens: Tokens
) -> None:
    assert console.get("/", follow_redirects=False).headers["location"] == "/ui/"

    sent = console.get("/ui/runs?status=failed", follow_redirects=False)

    assert sent.status_code == 303
    assert location(sent) == ("/ui/sign-in", {"next": ["/ui/runs?status=failed"]})
    signed = sign_in(console, tokens.responder, next_path="/ui/runs?status=failed")
    assert signed.headers["location"] == "/ui/runs?status=failed"
    assert console.get("/ui/runs?status=failed").status_code == 200
    # The inbox refreshing itself (htmx) when the session is gone: the whole page goes.
    console.cookies.clear()
    fragment = console.get("/ui/inbox", headers={"HX-Request": "true"}, follow_redirects=False)
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"] == "/ui/sign-in"
    for path in ("/ui/", "/ui/alerts", "/ui/playbooks", "/ui/audit", "/ui/runs/x",
                 "/ui/approvals/x", "/ui/alerts/x", "/ui/runs/x/rollback"):
        assert console.get(path, follow_redirects=False).status_code == 303, path


@pytest.mark.parametrize("elsewhere", ["https://evil.example/ui/", "//evil.example/ui/",
                                       "/\\evil.example", "/v1/runs", "javascript:alert(1)"])
def test_sign_in_never_sends_the_browser_off_the_console(
    console: TestClient, tokens: Tokens, elsewhere: str
) -> None:
    form = page(console.get("/ui/sign-in")).get("sign-in-form")

    signed = console.post("/ui/sign-in", follow_redirects=False, data={
        "csrf_token": form.field("csrf_token"), "token": tokens.responder, "next": elsewhere})

    assert signed.status_code == 303 and signed.headers["location"] == "/ui/"


def test_a_token_is_exchanged_for_a_secure_http_only_same_site_session_that_expires(
    settings: Settings, tokens: Tokens, sessionmaker: object
) -> None:
    with console_client(create_app(settings.model_copy(update={"console_session_hours": 2.0})),
                        base_url="https://riposte.example.com") as browser:
        signed = sign_in(browser, tokens.responder)
        assert browser.get("/ui/").status_code == 200

    assert signed.status_code == 303
    cookies = set_cookies(signed)
    session = cookies["__Host-riposte_session"]["__Host-riposte_session"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"].lower() == "lax" and session["path"] == "/"
    assert session["max-age"] == "7200"
    # Signed, not secret: it names the person and how they signed in, never the token.
    _, payload = URLSafeTimedSerializer("any key").loads_unsafe(session.value)
    assert {payload["n"], payload["r"], payload["v"]} == {"alice", "responder", "token"}
    assert tokens.responder not in session.value and tokens.responder not in str(payload)
    with sessionmaker() as db:  # type: ignore[operator]
        [row] = db.query(AuditEvent).filter_by(verb="console.signed_in").all()
        assert (row.actor, row.details["via"]) == ("alice", "token")


def test_over_plain_http_on_this_machine_the_session_cookie_is_not_secure(
    console: TestClient, tokens: Tokens
) -> None:
    signed = sign_in(console, tokens.responder)

    session = set_cookies(signed)["riposte_session"]["riposte_session"]
    assert not session["secure"] and session["httponly"] and session["max-age"] == "28800"


def test_a_session_ends_at_its_token_s_next_click_once_the_token_is_revoked(
    console: TestClient, tokens: Tokens
) -> None:
    signed_in(console, tokens.other_responder)
    assert console.get("/ui/").status_code == 200

    revoked = console.delete("/v1/tokens/bob", headers=tokens.as_admin)
    assert revoked.status_code == 200

    sent = console.get("/ui/alerts", follow_redirects=False)
    assert location(sent) == ("/ui/sign-in", {"next": ["/ui/alerts"], "why": ["revoked"]})
    assert set_cookies(sent)["riposte_session"]["riposte_session"]["max-age"] == "0"
    said = page(console.get(sent.headers["location"])).get("message").text
    assert "revoked or has expired" in said


def test_a_forged_or_too_old_session_cookie_is_no_session(
    console: TestClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = URLSafeTimedSerializer("not the key", salt="riposte.console.session").dumps(
        {"n": "root", "r": "admin", "v": "token", "s": None, "e": None, "c": "x"})
    console.cookies.set("riposte_session", forged)
    assert location(console.get("/ui/", follow_redirects=False))[1]["why"] == ["expired"]

    console.cookies.clear()
    signed_in(console, tokens.responder)
    later = TimestampSigner.get_timestamp(TimestampSigner("k")) + 8 * 3600 + 1
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert location(console.get("/ui/", follow_redirects=False))[1]["why"] == ["expired"]


def test_a_wrong_or_ingest_token_is_refused_at_sign_in_and_audited(
    console: TestClient, tokens: Tokens, sessionmaker: object
) -> None:
    for token, status, said in ((tokens.revoked, 401, "unknown, revoked or expired"),
                                ("rip_not-a-token", 401, "unknown, revoked or expired"),
                                (tokens.ingest, 403, "the console needs a responder or admin")):
        refused = sign_in(console, token)
        assert refused.status_code == status
        assert said in page(refused).get("message").text
        assert not {"riposte_session", "__Host-riposte_session"} & set(set_cookies(refused))
    assert console.get("/ui/", follow_redirects=False).status_code == 303
    with sessionmaker() as db:  # type: ignore[operator]
        refusals = db.query(AuditEvent).filter_by(verb="auth.refused").all()
        assert [e.actor for e in refusals] == ["anonymous", "anonymous", "sensor"]
        assert all(e.details["path"] == "/ui/sign-in" for e in refusals)


def test_a_form_without_its_csrf_token_is_refused(console: TestClient, tokens: Tokens) -> None:
    # Sign-in: another site can post to it, but not with the value of the form's own cookie.
    posted = console.post("/ui/sign-in", data={"token": tokens.responder},
                          follow_redirects=False)
    assert posted.status_code == 403 and "Nothing was done" in page(posted).get("error").text
    console.get("/ui/sign-in")  # the form's cookie, without the form's token
    posted = console.post("/ui/sign-in", data={"token": tokens.responder, "csrf_token": "x"},
                          follow_redirects=False)
    assert posted.status_code == 403 and "riposte_session" not in set_cookies(posted)

    # Signing out: the session's own token or nothing.
    signed_in(console, tokens.responder)
    assert console.post("/ui/sign-out", data={"csrf_token": "x"}).status_code == 403
    assert console.get("/ui/").status_code == 200
    csrf = page(console.get("/ui/")).get("sign-out-form").field("csrf_token")
    out = console.post("/ui/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.headers["location"] == "/ui/sign-in"
    assert console.get("/ui/", follow_redirects=False).status_code == 303


def test_every_console_answer_carries_the_strict_content_security_policy(
    console: TestClient, tokens: Tokens
) -> None:
    answers = {path: console.get(path, follow_redirects=False)
               for path in ("/", "/ui/sign-in", "/ui/", "/ui/static/htmx.min.js")}
    signed_in(console, tokens.responder)
    answers |= {path: console.get(path, follow_redirects=False)
                for path in ("/ui/", "/ui/inbox", "/ui/runs", "/ui/alerts", "/ui/playbooks",
                             "/ui/audit", "/ui/runs/no-such-run", "/ui/approvals/none",
                             "/ui/runs?limit=0", "/ui/static/console.css")}

    for path, answer in answers.items():
        assert answer.headers["content-security-policy"] == CONSOLE_CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "same-origin", path
    assert answers["/ui/"].headers["cache-control"] == "no-store"
    # Errors are pages saying what is wrong, never JSON or a traceback.
    assert answers["/ui/runs/no-such-run"].status_code == 404
    assert "no run 'no-such-run'" in page(answers["/ui/runs/no-such-run"]).get("error").text
    assert answers["/ui/runs?limit=0"].status_code == 422
    # Nothing the policy would refuse is on a page: only Riposte's own script and sheet.
    for path in ("/ui/sign-in", "/ui/", "/ui/runs", "/ui/audit"):
        html = page(console.get(path))
        assert [s.attrs.get("src") for s in html.by_tag("script")] == ["/ui/static/htmx.min.js"]
        assert not html.by_tag("style")
        assert not [e for e in html.iter() if "style" in e.attrs or
                    any(name.startswith("on") for name in e.attrs)]
    # The API is untouched: JSON, no console headers.
    api = console.get("/v1/runs", headers=tokens.as_responder)
    assert api.status_code == 200 and "content-security-policy" not in api.headers

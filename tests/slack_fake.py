"""A local stand-in for Slack: its Web API over real HTTP, and its signed interaction requests.

``FakeSlack`` serves the Web API methods Riposte calls — ``chat.postMessage``,
``chat.update``, ``chat.postEphemeral``, ``views.open``, ``views.update``, ``users.info`` — with
the request and answer shapes of Slack's documentation (``{"ok": true, ...}``, or
``{"ok": false, "error": "..."}`` with HTTP 200), keeps every message as it now reads, and
records every call. ``slack_sdk`` is pointed at it by its base URL, as Riposte's settings do.

``signed_interaction`` builds what Slack posts when someone presses a button or submits a modal:
a form with the JSON ``payload``, signed with the app's signing secret by the documented v0
scheme (HMAC-SHA256 of ``v0:{timestamp}:{body}``), computed here with hmac, not with the code
under test.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

T = TypeVar("T")
BOT_TOKEN = "xoxb-riposte-test"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Call:
    """One Web API call: the method and its arguments (JSON body, form or query)."""

    method: str
    args: dict[str, Any]


@dataclass
class Message:
    """A message as it reads now, where it is, and each version it had."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    versions: list[list[dict[str, Any]]] = field(default_factory=list)

    def buttons(self) -> list[dict[str, Any]]:
        """The buttons of its actions blocks (none once a request is settled)."""
        return [element for block in self.blocks if block.get("type") == "actions"
                for element in block.get("elements", []) if element.get("type") == "button"]

    def button_values(self) -> list[dict[str, str]]:
        """What each button carries, read as JSON."""
        return [json.loads(button["value"]) for button in self.buttons()]

    def header(self) -> str:
        return next((str(block["text"]["text"]) for block in self.blocks
                     if block.get("type") == "header"), "")

    def all_text(self) -> str:
        """Every piece of text of its blocks, joined (to look for what a person reads)."""
        return json.dumps(self.blocks, ensure_ascii=False)


class FakeSlack:
    """Slack's Web API for one workspace, on a local port."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, str] = {}
        self.unknown_channels: set[str] = set()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self.url = ""

    # --- What a test reads ------------------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [call.args for call in self.calls if call.method == method]

    def posted_in(self, channel: str, *, replies: bool = False) -> list[Message]:
        """The messages posted in ``channel`` (a name as posted to, or an id), oldest first;
        ``replies``: the replies in threads instead of the top-level messages."""
        wanted = self.channel_id(channel)
        with self._lock:
            return [m for m in self.messages.values() if m.channel == wanted
                    and (m.thread_ts is not None) == replies]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return self.messages[(channel, ts)]

    def ephemerals_to(self, user: str) -> list[str]:
        return [str(args["text"]) for args in self.calls_to("chat.postEphemeral")
                if args.get("user") == user]

    @staticmethod
    def channel_id(channel: str) -> str:
        """The id Slack gives a channel posted to by name (a user's: their direct message)."""
        if channel.startswith("#"):
            return "C" + hashlib.sha256(channel.encode()).hexdigest()[:8].upper()
        if channel.startswith("U"):
            return "D" + channel[1:]
        return channel

    def wait_for(self, what: Callable[[], T | None], *, seconds: float = 10.0,
                 said: str = "") -> T:
        """Poll ``what`` until it gives something, within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            found = what()
            if found:
                return found
            assert time.monotonic() < deadline, f"Slack never saw it: {said}"
            time.sleep(0.05)

    # --- The Web API ------------------------------------------------------------------------

    def answer(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        with self._lock:
            self.calls.append(Call(method, args))
            if token != BOT_TOKEN:
                return {"ok": False, "error": "invalid_auth"}
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return {"ok": False, "error": "unknown_method"}
            answer: dict[str, Any] = handler(args)
            return answer

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel in self.unknown_channels:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        number = next(self._numbers)
        ts = f"{1_700_000_000 + number}.{number:06d}"
        message = Message(channel=self.channel_id(channel), ts=ts, text=str(args.get("text")),
                          blocks=_blocks(args), thread_ts=args.get("thread_ts"))
        message.versions.append(message.blocks)
        self.messages[(message.channel, ts)] = message
        return {"ok": True, "channel": message.channel, "ts": ts,
                "message": {"text": message.text, "ts": ts, "blocks": message.blocks}}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        message = self.messages.get(key)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text, message.blocks = str(args.get("text")), _blocks(args)
        message.versions.append(message.blocks)
        return {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": f"{time.time():.6f}"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = _view(args)
        view_id = f"V{next(self._numbers):08d}"
        self.views[view_id] = view
        return {"ok": True, "view": {"id": view_id, **view}}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = str(args.get("view_id"))
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        self.views[view_id] = _view(args)
        return {"ok": True, "view": {"id": view_id, **self.views[view_id]}}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user"))
        profile = {"email": self.emails[user]} if user in self.emails else {}
        return {"ok": True, "user": {"id": user, "profile": profile}}


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    parsed: list[dict[str, Any]] = json.loads(blocks) if isinstance(blocks, str) else blocks
    return parsed


def _view(args: dict[str, Any]) -> dict[str, Any]:
    view = args.get("view") or {}
    parsed: dict[str, Any] = json.loads(view) if isinstance(view, str) else view
    return parsed


def _handler(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            if "json" in (self.headers.get("Content-Type") or ""):
                args = json.loads(raw or "{}")
            else:
                args = {key: values[0] for key, values in parse_qs(raw).items()}
            self._answer(args)

        def do_GET(self) -> None:
            query = urlsplit(self.path).query
            self._answer({key: values[0] for key, values in parse_qs(query).items()})

        def _answer(self, args: dict[str, Any]) -> None:
            method = urlsplit(self.path).path.removeprefix("/api/")
            header = self.headers.get("Authorization") or ""
            token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
            body = json.dumps(slack.answer(method, args, token)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            return

    return Handler


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    """Serve a :class:`FakeSlack` on a free loopback port; its ``url`` is the API's base."""
    slack = FakeSlack()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(slack))
    server.daemon_threads = True
    slack.url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True, name="fake-slack")
    thread.start()
    try:
        yield slack
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# What Slack posts to the app's interactivity URL


def signed_interaction(
    payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> tuple[str, dict[str, str]]:
    """The form body Slack posts for ``payload`` and its signed headers."""
    body = urlencode({"payload": json.dumps(payload)})
    sent = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{sent}:{body}".encode(), hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": sent,
        "X-Slack-Signature": f"v0={digest}",
    }


def button_press(
    message: Message, *, user: str, approve: bool = True, team: str = "T0RIPOSTE"
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user`` pressing Approve (or Reject) on ``message``."""
    action_id = "riposte.approve" if approve else "riposte.reject"
    [button] = [b for b in message.buttons() if b["action_id"] == action_id]
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "team": {"id": team, "domain": "riposte-test"},
        "api_app_id": "A0RIPOSTE",
        "trigger_id": f"{int(time.time())}.{user}.trigger",
        "container": {"type": "message", "message_ts": message.ts,
                      "channel_id": message.channel, "is_ephemeral": False},
        "channel": {"id": message.channel, "name": "secops"},
        "message": {"type": "message", "ts": message.ts, "text": message.text,
                    "blocks": message.blocks},
        "response_url": "https://hooks.slack.invalid/actions/T0/1/x",
        "actions": [{"action_id": action_id, "block_id": "riposte.decide", "type": "button",
                     "value": button["value"], "action_ts": f"{time.time():.6f}"}],
    }


def modal_submission(view: dict[str, Any], *, user: str, reason: str,
                     team: str = "T0RIPOSTE") -> dict[str, Any]:
    """The ``view_submission`` payload of ``user`` giving ``reason`` in the modal ``view``."""
    return {
        "type": "view_submission",
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "team": {"id": team, "domain": "riposte-test"},
        "api_app_id": "A0RIPOSTE",
        "trigger_id": f"{int(time.time())}.{user}.submit",
        "view": {
            "id": "V0SUBMITTED", "type": "modal", "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"], "hash": "1700000000.abc",
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input",
                                                       "value": reason}}}},
        },
    }

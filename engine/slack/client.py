"""The Slack Web API, through ``slack_sdk``'s ``WebClient``: the few methods Riposte calls.

Every failure is a :class:`SlackFailure` naming the method and Slack's error code (never the
token). Calls are synchronous: they run in worker threads, never on the API's event loop.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from core.logs import keep_secret
from core.settings import Settings

log = logging.getLogger("riposte.slack")

TIMEOUT_SECONDS = 10


class SlackFailure(Exception):
    """A Slack Web API call that did not do what was asked; the message says which and why."""


@dataclass(frozen=True)
class PostedMessage:
    """Where Slack put a message: the channel's id and the message's ``ts``."""

    channel: str
    ts: str


class SlackChat:
    """Riposte's Slack app, acting with its bot token."""

    def __init__(self, *, token: str, base_url: str, timeout: int = TIMEOUT_SECONDS) -> None:
        keep_secret(token)
        self._client = WebClient(
            token=token, base_url=base_url, timeout=timeout,
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1),
                            RateLimitErrorRetryHandler(max_retry_count=2)],
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackChat | None:
        """The app of ``RIPOSTE_SLACK_BOT_TOKEN`` at ``RIPOSTE_SLACK_API_URL``; None if unset."""
        if settings.slack_bot_token is None:
            return None
        return cls(token=settings.slack_bot_token.get_secret_value(),
                   base_url=settings.slack_api_url)

    def post(
        self, channel: str, *, text: str, blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> PostedMessage:
        """Post a message (a reply when ``thread_ts`` is given); return where it is."""
        answer = self._call("chat.postMessage", self._client.chat_postMessage, channel=channel,
                            text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False,
                            unfurl_media=False)
        return PostedMessage(channel=str(answer["channel"]), ts=str(answer["ts"]))

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a message Riposte posted."""
        self._call("chat.update", self._client.chat_update, channel=channel, ts=ts, text=text,
                   blocks=blocks)

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """Say something only ``user`` sees, in ``channel``."""
        self._call("chat.postEphemeral", self._client.chat_postEphemeral, channel=channel,
                   user=user, text=text)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal for the click ``trigger_id`` stands for; return the view's id."""
        answer = self._call("views.open", self._client.views_open, trigger_id=trigger_id,
                            view=view)
        return str(answer["view"]["id"])

    def update_view(self, view_id: str, view: dict[str, Any]) -> None:
        """Replace an open modal."""
        self._call("views.update", self._client.views_update, view_id=view_id, view=view)

    def email_of(self, user: str) -> str | None:
        """The e-mail of a Slack user (scope users:read.email), or None if Slack gives none."""
        answer = self._call("users.info", self._client.users_info, user=user)
        email = (answer.get("user") or {}).get("profile", {}).get("email")
        return str(email) if email else None

    @staticmethod
    def _call(method: str, call: Any, **arguments: Any) -> dict[str, Any]:
        try:
            response = call(**arguments)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackFailure(f"Slack {method}: {error or 'refused'}") from None
        except (SlackClientError, OSError) as exc:  # unreachable, timed out
            raise SlackFailure(f"Slack {method}: {type(exc).__name__}: {exc}") from None
        data = response.data
        if not isinstance(data, dict):
            raise SlackFailure(f"Slack {method}: the answer is not a JSON object: "
                               f"{json.dumps(data)[:200] if data else 'empty'}")
        return data

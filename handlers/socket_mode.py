"""Socket Mode: the WebSocket to Slack (Bolt's adapter over slack_sdk's built-in client), and what the HTTP side
server beside it serves — everything HTTP mode serves except `/slack/events`, which Slack is not using."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from handlers.http import SLACK_PATH

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

NOT_HERE = (
    "Socket Mode is on: Slack sends this app's events over its WebSocket, not to /slack/events. "
    "For HTTP mode, unset SLACK_APP_TOKEN and use manifest.http.yml.\n"
)


class SocketModeConnection:
    """Bolt's `SocketModeHandler`: `connect()` asks Slack for a URL (`apps.connections.open`) and opens it; the
    client reconnects by itself when Slack sends `disconnect` or closes the socket."""

    def __init__(self, app: App, *, app_token: str) -> None:
        self._handler = SocketModeHandler(app, app_token)

    def connect(self) -> None:
        """Raises SlackApiError when Slack refuses the app token, SlackClientError or OSError when it cannot be
        reached. A WebSocket that fails to open is retried by the client, not raised."""
        try:
            self._handler.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            self.close()
            raise

    def connected(self) -> bool:
        return bool(self._handler.client.is_connected())

    def close(self) -> None:
        """Close the WebSocket; listeners already running finish first (their acks may no longer get through:
        Slack delivers an unacknowledged event again, and the inbox skips it if it was handled)."""
        self._handler.close()  # type: ignore[no-untyped-call]


def side_app(application: WSGIApplication) -> WSGIApplication:
    """HTTP mode's routes (health, webhooks, whatever else `make_wsgi_app` serves) minus `/slack/events`."""

    def routed(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == SLACK_PATH:
            body = NOT_HERE.encode()
            start_response(
                "404 Not Found",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return application(environ, start_response)

    return routed


def health_with_connection(
    health: Callable[[], dict[str, Any]], connection: SocketModeConnection
) -> Callable[[], dict[str, Any]]:
    """`/healthz` in Socket Mode also says whether the WebSocket is up: a bot that cannot hear Slack is not ok."""

    def report() -> dict[str, Any]:
        found = dict(health())
        connected = connection.connected()
        found["socket_mode"] = "connected" if connected else "reconnecting"
        found["ok"] = bool(found.get("ok")) and connected
        return found

    return report

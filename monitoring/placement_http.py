"""The placement agent's HTTP JSON API: routes each request to the `Agent`, answers JSON."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from monitoring.placement_service import Agent, RequestError, shown

log = logging.getLogger("monitoring.placement_agent")  # one logger for the whole daemon

MAX_BODY = 64 * 1024


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: Agent) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.agent = agent
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "pipetune-placement-agent/1"
    timeout = 30  # a client that stops sending mid-request does not hold a thread for ever

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        agent = self.server.agent
        endpoints: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
            "/health": ("GET", agent.health),
            "/place": ("POST", lambda: agent.place(self._body())),
            "/release": ("POST", lambda: agent.release(self._body())),
        }
        path = urlsplit(self.path).path
        try:
            if path not in endpoints:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"no endpoint {method} {path}; there are GET /health, POST /place, "
                    "POST /release",
                )
            allowed, action = endpoints[path]
            if method != allowed:
                raise RequestError(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {allowed}, not {method}"
                )
            self._answer(HTTPStatus.OK, action())
        except RequestError as exc:
            log.warning("%s %s from %s: %s", method, path, self.client_address[0], exc.message)
            self._answer(exc.status, {"error": exc.message})
        except Exception as exc:  # the agent must outlive a bug; the client gets the message
            log.exception("%s %s failed", method, path)
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {exc}"})

    def _body(self) -> dict[str, Any]:
        """The request's JSON object."""
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text or "")
        except ValueError:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                "request body: expected a JSON object with a Content-Length header, found "
                f"Content-Length {length_text!r}",
            ) from None
        if not 0 <= length <= MAX_BODY:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body: expected at most {MAX_BODY} bytes, found {length}",
            )
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"request body: expected a JSON object, found {exc}"
            ) from None
        if not isinstance(body, dict):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"request body: expected a JSON object, found {type(body).__name__} {shown(body)}",
            )
        return body

    def _answer(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError as exc:  # the client went away
            log.debug("answer to %s lost: %s", self.client_address[0], exc)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)

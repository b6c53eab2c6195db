"""The tuner's side of the placement agents (`monitoring/placement_agent.py`).

One agent runs on each worker of a standalone cluster and places the executors of an
application on that worker's CPUs; `AgentClient` asks one of them. Every failure (the agent
refused, is not running, did not answer in time, answered something that is not JSON) is a
`PlacementError` naming the agent's address and saying what went wrong, with the agent's
own message where it sent one.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from pipetune.placement import PlacementError

DEFAULT_PORT = 8789  # monitoring/placement_agent.py's default


class AgentClient:
    """The placement agent at `address` (`host:port`, or a URL `http://host:port`).

    Proxies from the environment (`http_proxy`) are ignored: agents are on the cluster network.
    """

    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        if not address.strip():
            raise ValueError("AgentClient: expected an address host:port, found nothing")
        if not timeout_s > 0:
            raise ValueError(f"AgentClient: expected a timeout > 0 s, found {timeout_s}")
        self.address = address.strip()
        base = self.address if "://" in self.address else f"http://{self.address}"
        self.url = base.rstrip("/")
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def place(self, job: str, app_id: str, cores_per_executor: int) -> dict[str, Any]:
        """Place the executors of `app_id` on the agent's host, `cores_per_executor` CPUs each:
        `{"placed": n, "cpus": [[...], ...], "placer": name}`."""
        body = {"job": job, "app_id": app_id, "cores_per_executor": cores_per_executor}
        return self._call("POST", "/place", body)

    def release(self, job: str) -> dict[str, Any]:
        """Undo what `place` made for `job` there: `{"released": n}`."""
        return self._call("POST", "/release", {"job": job})

    def health(self) -> dict[str, Any]:
        """`{"ok": true, "placer": name, "cpus": [...], ...}`."""
        return self._call("GET", "/health")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        where = f"placement agent at {self.address} ({method} {path})"
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise PlacementError(f"{where}: {_error_message(exc)} (HTTP {exc.code})") from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                reason = f"no answer within {self.timeout_s:g} s"
            raise PlacementError(f"{where}: cannot reach it: {reason}") from exc
        except TimeoutError as exc:
            raise PlacementError(f"{where}: no answer within {self.timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise PlacementError(f"{where}: {type(exc).__name__}: {exc}") from exc
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PlacementError(
                f"{where}: expected a JSON answer, found {_excerpt(raw)} ({exc})"
            ) from exc
        if not isinstance(payload, dict):
            raise PlacementError(f"{where}: expected a JSON object, found {_excerpt(raw)}")
        return payload


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The agent's `{"error": ...}`, else what the server sent, else the HTTP reason."""
    try:
        raw = exc.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return str(payload["error"])
    return _excerpt(raw) if raw.strip() else str(exc.reason)


def _excerpt(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return "an empty body"
    return repr(text if len(text) <= limit else text[:limit] + "…")

"""A real `influxd` (InfluxDB 1.x) on free loopback ports, every directory under a temp dir.

Usage in a test module::

    @pytest.fixture
    def server(tmp_path):
        require_influxd()
        with Influxd(tmp_path / "influxd") as srv:
            yield srv

`stop()` and `start()` keep the data directory and the ports, so a test can take the server
away in the middle of a run and bring it back. Teardown terminates the process by its PID.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import pytest

from tests.machine import in_ci

INSTALL_HINT = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
    "--no-install-recommends influxdb influxdb-client"
)


def require_influxd() -> str:
    """Path of `influxd`; without it, fail under CI=true and skip elsewhere."""
    path = shutil.which("influxd")
    if path is None:
        message = f"`influxd` is not on PATH; the InfluxDB store tests need it ({INSTALL_HINT})"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  max-row-limit = 0
  auth-enabled = {auth}

[continuous_queries]
  enabled = false
"""


class Influxd:
    """One `influxd run -config ...` process; `stop()`/`start()` keep data dir and ports."""

    def __init__(self, root: Path, binary: str | None = None, auth_enabled: bool = False) -> None:
        self.root = root
        self.binary = binary or require_influxd()
        self.port = free_port()
        self.rpc_port = free_port()
        self.config_path = root / "influxd.conf"
        self.log_path = root / "influxd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            _CONFIG.format(
                root=root,
                port=self.port,
                rpc_port=self.rpc_port,
                auth="true" if auth_enabled else "false",
            )
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 20.0) -> None:
        if self.running:
            return
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(
                [self.binary, "run", "-config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"influxd exited with {self._proc.returncode}: {self._log_tail()}"
                )
            if self.ping():
                return
            time.sleep(0.05)
        self.stop(kill=True)
        raise TimeoutError(f"influxd not ready after {timeout_s} s: {self._log_tail()}")

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r:
                return bool(r.status == 204)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, kill: bool = False, timeout_s: float = 15.0) -> None:
        """SIGTERM (or SIGKILL, a crash) by PID, then wait for the process to exit."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)

    def restart(self) -> None:
        self.stop()
        self.start()

    def influx_cli(self, database: str, statement: str) -> str:
        """Run the real `influx` CLI against this server; skip (or fail in CI) without it."""
        cli = shutil.which("influx")
        if cli is None:
            message = f"the `influx` CLI is not on PATH ({INSTALL_HINT})"
            if in_ci():
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        argv = [cli, "-host", "127.0.0.1", "-port", str(self.port), "-database", database]
        done = subprocess.run(
            [*argv, "-format", "csv", "-execute", statement],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"influx CLI failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> Influxd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(kill=True)

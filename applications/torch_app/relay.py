"""Rank 0's events to the launcher, the launcher's decisions to rank 0: one TCP connection,
for a job whose rank 0 runs inside an executor (TorchDistributor with local_mode=False).

There rank 0's stdout goes to the executor, not to the launcher that the tuner reads. Spark's
own log streaming (to the driver's stderr) drops lines once it fails and cuts lines over 4,000
characters, so the app's events take this relay instead: the launcher listens (`RelayServer`),
rank 0 connects (`RelayClient`) and writes its stdout into the connection, which the launcher
copies to its own stdout line by line. The other way, the launcher sends the text of its
decision file each time it changes, and rank 0 writes it into a local mirror file that it
polls as usual (contract.await_decision). Lines are UTF-8 text ending in a newline.

Anyone who can reach the port can write to the launcher's stdout, as with Spark's own log
server: use it on a trusted network, as Spark itself.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO

from pipetune import contract

POLL_S = 0.01


class RelayServer:
    """The launcher's end: listens on every interface, tells ranks to reach `advertised`."""

    def __init__(self, advertised: str, decision_file: Path | None, out: IO[str]) -> None:
        self._listener = socket.create_server(("", 0))
        self.address = f"{advertised}:{self._listener.getsockname()[1]}"
        self.decision_file = decision_file
        self.out = out
        self._lock = threading.Lock()
        self._conn: socket.socket | None = None
        self._sent: str | None = None  # the decision text the current connection has
        self._readers: list[threading.Thread] = []
        self._closing = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, name="relay-accept", daemon=True),
            threading.Thread(target=self._push_decisions, name="relay-decisions", daemon=True),
        ]

    def start(self) -> RelayServer:
        for thread in self._threads:
            thread.start()
        return self

    def close(self, drain_s: float = 10.0) -> None:
        """Stop listening, after the last connection's lines have been copied (its rank 0 has
        exited by now, so its end of the connection is closed)."""
        for reader in self._readers:
            reader.join(drain_s)
        self._closing.set()
        self._listener.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._conn, self._sent = conn, None  # a new rank 0: send it the decision
            reader = threading.Thread(target=self._copy_lines, args=(conn,), daemon=True)
            self._readers.append(reader)
            reader.start()

    def _copy_lines(self, conn: socket.socket) -> None:
        with conn.makefile("r", encoding="utf-8", errors="replace", newline="\n") as lines:
            for line in lines:
                self.out.write(line if line.endswith("\n") else line + "\n")
                self.out.flush()
        with self._lock:  # rank 0 is done: let it close its end too
            if self._conn is conn:
                self._conn = None
        conn.close()

    def _push_decisions(self) -> None:
        while not self._closing.wait(POLL_S):
            if self.decision_file is None:
                return
            try:
                text = self.decision_file.read_text()
            except OSError:
                continue  # not written yet
            with self._lock:
                if self._conn is None or text == self._sent:
                    continue
                try:
                    self._conn.sendall((" ".join(text.splitlines()) + "\n").encode())
                    self._sent = text
                except OSError:
                    self._conn = None  # that rank 0 is gone


class _SocketStream(io.TextIOBase):
    """A text stream whose writes go into the connection at once."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._sock.sendall(text.encode("utf-8"))
        return len(text)


class RelayClient:
    """Rank 0's end: `sys.stdout` goes to the launcher while connected, and each decision the
    launcher sends lands in `mirror`, written atomically as the contract says."""

    def __init__(
        self, address: str, mirror: Path, app: str = "app", connect_s: float = 30.0
    ) -> None:
        host, _, port = address.rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=connect_s)
        self._sock.settimeout(None)
        self.mirror = mirror
        self.app = app  # names it in messages
        self._stdout = sys.stdout
        sys.stdout = _SocketStream(self._sock)
        self._reader = threading.Thread(target=self._mirror, name="relay-mirror", daemon=True)
        self._reader.start()

    def _mirror(self) -> None:
        with self._sock.makefile("r", encoding="utf-8", newline="\n") as lines:
            for line in lines:
                try:
                    decision = contract.Decision.from_json(line)
                except ValueError:
                    print(f"{self.app}: relay: not a decision: {line[:120]!r}", file=sys.stderr)
                    continue
                contract.write_decision(self.mirror, decision)

    def close(self) -> None:
        """Everything written so far reaches the launcher; stdout is the process's again."""
        sys.stdout.flush()
        sys.stdout = self._stdout
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)  # the launcher sees the end of the lines
        deadline = time.monotonic() + 5
        while self._reader.is_alive() and time.monotonic() < deadline:
            self._reader.join(0.1)  # until the launcher closes its end
        self._sock.close()

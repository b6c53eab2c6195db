"""A real loopback Spark standalone master + worker, started from pyspark's bin/spark-class."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipetune.spark_env import discover
from tests.influxd import free_port


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def standalone_cluster(workdir: Path, cores: int = 2, memory: str = "4g") -> Iterator[str]:
    """Yield the master URL of a running master + one worker; stop both by PID afterwards."""
    env_info = discover()
    env = env_info.process_env(loopback=True)
    env["SPARK_WORKER_DIR"] = str(workdir / "worker")
    env["SPARK_LOG_DIR"] = str(workdir / "logs")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    master_log = open(workdir / "master.log", "w")  # noqa: SIM115
    worker_log_path = workdir / "worker.log"
    worker_log = open(worker_log_path, "w")  # noqa: SIM115
    spark_class = str(env_info.spark_class)
    master = subprocess.Popen(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(free_port()),
        ],
        env=env,
        stdout=master_log,
        stderr=subprocess.STDOUT,
    )
    worker = None
    try:
        _wait(lambda: _port_open(port), 60, "Spark master")
        worker = subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                str(cores),
                "--memory",
                memory,
                "--webui-port",
                str(free_port()),
            ],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        _wait(
            lambda: "Successfully registered with master" in worker_log_path.read_text(),
            60,
            "Spark worker",
        )
        yield url
    finally:
        for proc in (worker, master):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        master_log.close()
        worker_log.close()

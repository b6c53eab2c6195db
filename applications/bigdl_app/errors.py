"""How a BigDL app fails: a message for the user, where the launcher finds it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from pipetune import contract


class AppError(Exception):
    """A failure with a message meant for the user (bad flags, data or checkpoint)."""


def report_error(app: str, message: str) -> None:
    """Put the reason for a failure where the launcher can find it.

    spark-submit runs the app through Spark's PythonRunner, which merges the script's
    stderr into the driver JVM's stdout, so a plain print to stderr ends up on stdout.
    We print it there anyway (human logs), emit a tagged "error" event, and also write it
    to the driver JVM's own stderr (= spark-submit's stderr) when our parent is that JVM.
    """
    line = f"{app}: error: {message}"
    print(line, file=sys.stderr, flush=True)
    contract.emit(contract.error_event(message))
    try:
        ppid = os.getppid()
        with open(f"/proc/{ppid}/comm") as fh:
            parent_is_jvm = fh.read().strip() == "java"
        if parent_is_jvm:
            with open(f"/proc/{ppid}/fd/2", "w") as fh:
                fh.write(line + "\n")
    except OSError:
        pass  # not Linux, or no access: the stdout copies above remain


class AppArgumentParser(argparse.ArgumentParser):
    """An argument parser whose flag errors go through `report_error` (exit status 2)."""

    def __init__(self, app: str, **kwargs: Any) -> None:
        super().__init__(prog=f"{app}.py", **kwargs)
        self.app = app

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        report_error(self.app, message)
        sys.exit(2)

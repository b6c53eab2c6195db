"""Run a command for as long as the tuner that started it is alive.

    python -I path/to/pipetune/lifeline.py -- COMMAND [ARGS...]

(run by path, with -I: it needs only the standard library, whatever PYTHONHOME/PYTHONPATH the
job's environment sets)

The tuner starts each segment's spark-submit through this wrapper, in a process group of its
own, with a pipe on the wrapper's stdin that only the tuner writes to. When the tuner ends in
any way (SIGKILL and OOM kills included) the kernel closes that pipe; the wrapper reads EOF and
stops the whole group: SIGTERM, then SIGKILL after `GRACE_S`. Without it a crashed tuner leaves
the job training on, into the checkpoint that `--resume` then trains from at the same time.

The command's exit status is the wrapper's (128 + N when it died of signal N).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

GRACE_S = 10.0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: lifeline.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    # the group's SIGTERM (from us, or from the tuner's timeout) is for the command, not us:
    # we stay to wait for it and pass on its exit status. A handler, not SIG_IGN: an ignored
    # signal would stay ignored in the command too.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)  # a group of our own: the group we stop must never be our caller's
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    finished = threading.Event()
    watch = threading.Thread(target=_stop_group_at_eof, args=(child, finished), daemon=True)
    watch.start()
    code = child.wait()
    finished.set()
    return 128 - code if code < 0 else code


def _stop_group_at_eof(child: subprocess.Popen[bytes], finished: threading.Event) -> None:
    """Block on stdin; at EOF (the tuner is gone or done) stop the group if the job still runs.

    Raw reads of fd 0: a buffered reader's lock held by this daemon thread would abort the
    interpreter at exit. Only the main thread waits for the child (two waiters race).
    """
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    if finished.is_set() or child.poll() is not None:
        return
    os.killpg(os.getpgrp(), signal.SIGTERM)
    if not finished.wait(GRACE_S):
        os.killpg(os.getpgrp(), signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Hold a running job's processes to a set of CPUs, and move them to another set live.

Two ways, chosen once per run (`detect_placer`):

* `CpusetPlacer`: a cgroup v1 `cpuset` made for the job (root, a v1 cpuset hierarchy as on
  the development machines). One write moves every thread, and threads or processes the job
  creates later are born inside it. Widening it does not widen a thread whose own affinity
  mask is narrower (seen here on JVM threads): those get `sched_setaffinity` as below.
* `AffinityPlacer`: `sched_setaffinity` on every thread of every process of the job. A
  thread inherits the mask of the thread that creates it, so one created while the walk is
  under way by a thread not yet moved can escape: walk again until a pass finds every thread
  on the set.

Either way `stray_threads` then reads each thread's `Cpus_allowed_list` from /proc, so a
placement is checked, not assumed. A job must be launched on at least the widest set it will
be given: a cpuset cannot be widened past its parent, and JVM pools are sized at start.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from pipetune.errors import PipeTuneError

CPUSET_ROOT = Path("/sys/fs/cgroup/cpuset")
CGROUP_PREFIX = "pipetune-"


class PlacementError(PipeTuneError):
    """The job's threads could not be moved to the CPUs asked for."""


def first_cpus(cpus: tuple[int, ...], n: int) -> tuple[int, ...]:
    """The first n of the CPUs this process may use (all of them when n is more)."""
    return cpus[: max(1, n)]


def executor_cpus(cpus: tuple[int, ...], index: int, per: int) -> tuple[int, ...]:
    """The CPUs of executor `index` (0-based) when each of a host's executors gets `per` of
    `cpus`: the `per` CPUs from position index × per on, wrapping round `cpus` where the
    executors need more than there are (then executors share CPUs), sorted and without
    repeats (all of `cpus` when `per` ≥ their number). One rule for the tuner's host and the
    placement agents on the others.

    Raises:
        ValueError: no CPUs, a negative index, or `per` < 1.
    """
    if not cpus:
        raise ValueError("executor_cpus: no CPUs to lay executors out on")
    if index < 0:
        raise ValueError(f"executor_cpus: expected an executor index ≥ 0, found {index}")
    if per < 1:
        raise ValueError(f"executor_cpus: expected ≥ 1 CPU per executor, found {per}")
    n = len(cpus)
    # k ≥ n only repeats positions already taken: stopping at n keeps a huge `per` cheap
    return tuple(sorted({cpus[(index * per + k) % n] for k in range(min(per, n))}))


def thread_cpus(pid: int) -> dict[int, frozenset[int]]:
    """Each live thread of `pid` and the CPUs it may run on (empty when the process is gone;
    an exited thread or a zombie waiting to be reaped runs nowhere and is left out)."""
    out: dict[int, frozenset[int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue  # the thread ended
        if (
            fields.get("State", "").strip().startswith(("Z", "X"))
            or "Cpus_allowed_list" not in fields
        ):
            continue
        out[int(tid)] = parse_cpu_list(fields["Cpus_allowed_list"])
    return out


def parse_cpu_list(text: str) -> frozenset[int]:
    """'0-2,5' → {0, 1, 2, 5} (the kernel's list format)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)


def cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def stray_threads(
    pids: Iterable[int], cpus: Iterable[int]
) -> list[tuple[int, int, frozenset[int]]]:
    """(pid, tid, allowed) of every thread not held to exactly `cpus`."""
    want = frozenset(cpus)
    return [
        (pid, tid, allowed)
        for pid in pids
        for tid, allowed in thread_cpus(pid).items()
        if allowed != want
    ]


class Placer(ABC):
    """Moves a job's processes to a CPU set; `place` returns once every thread is there."""

    name: str = ""

    @abstractmethod
    def place(self, job: str, pids: list[int], cpus: tuple[int, ...]) -> None:
        """Hold every thread of `pids` (the job's processes, all of them) to `cpus`."""

    def release(self, job: str) -> None:  # noqa: B027 - nothing to undo by default
        """The job has ended: undo what `place` made (a cgroup)."""

    def check(self, pids: list[int], cpus: tuple[int, ...]) -> None:
        stray = stray_threads(pids, cpus)
        if stray:
            pid, tid, allowed = stray[0]
            raise PlacementError(
                f"{len(stray)} thread(s) not on CPUs {cpu_list(cpus)} after {self.name} "
                f"placement (e.g. pid {pid} thread {tid} on {cpu_list(allowed)})"
            )


class AffinityPlacer(Placer):
    name = "affinity"

    def place(self, job: str, pids: list[int], cpus: tuple[int, ...]) -> None:
        set_affinity(pids, cpus)
        self.check(pids, cpus)


def set_affinity(pids: list[int], cpus: tuple[int, ...], passes: int = 5) -> None:
    """`sched_setaffinity` on every thread not yet on `cpus`, until a pass finds none."""
    want = set(cpus)
    for _ in range(passes):
        stray = stray_threads(pids, cpus)
        if not stray:
            return
        for _pid, tid, _allowed in stray:
            try:
                os.sched_setaffinity(tid, want)
            except (ProcessLookupError, PermissionError, OSError):
                continue  # ended meanwhile, or not ours: the caller's check decides


class CpusetPlacer(Placer):
    """A cgroup v1 cpuset per job under `root` (one `pipetune-<job>` directory)."""

    name = "cgroup-v1-cpuset"

    def __init__(self, root: Path = CPUSET_ROOT) -> None:
        self.root = root
        self._mems = (root / "cpuset.mems").read_text().strip()

    def _group(self, job: str) -> Path:
        return self.root / f"{CGROUP_PREFIX}{job}"

    def place(self, job: str, pids: list[int], cpus: tuple[int, ...]) -> None:
        group = self._group(job)
        try:
            if not group.is_dir():
                group.mkdir()
                (group / "cpuset.mems").write_text(self._mems)
            (group / "cpuset.cpus").write_text(cpu_list(cpus))
            for pid in pids:
                try:
                    (group / "cgroup.procs").write_text(str(pid))
                except ProcessLookupError:
                    continue  # ended meanwhile
        except OSError as exc:
            raise PlacementError(f"cpuset {group}: {exc}") from exc
        # Widening a cpuset leaves threads whose own affinity was set narrower (by the
        # runtime, or inherited from one that was) where they were: widen those too.
        set_affinity(pids, cpus)
        self.check(pids, cpus)

    def release(self, job: str) -> None:
        remove_group(self._group(job), self.root)


def remove_group(group: Path, root: Path) -> None:
    """Move what is left in `group` back to `root`, then remove it (never fails a run)."""
    if not group.is_dir():
        return
    for _ in range(20):
        try:
            pids = (group / "cgroup.procs").read_text().split()
        except OSError:
            return
        for pid in pids:
            try:
                (root / "cgroup.procs").write_text(pid)
            except OSError:
                continue
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.05)  # a task still leaving


def remove_stale_groups(root: Path = CPUSET_ROOT) -> None:
    """Remove the empty cpusets a killed tuner left (its jobs died with it). A cpuset with
    tasks belongs to a job still running, maybe another tuner's: it is left alone."""
    if not root.is_dir():
        return
    for group in root.glob(f"{CGROUP_PREFIX}*"):
        try:
            if not (group / "cgroup.procs").read_text().split():
                group.rmdir()
        except OSError:
            continue


def cpuset_unavailable(root: Path = CPUSET_ROOT) -> str | None:
    """Why a cgroup v1 cpuset cannot be used here, or None when it can."""
    if not (root / "cpuset.cpus").is_file():
        return f"no cgroup v1 cpuset hierarchy at {root}"
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (cpusets need root)"
    probe = root / f"{CGROUP_PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return f"cannot make a cpuset under {root}: {exc.strerror}"
    return None


def detect_placer(prefer: str = "auto") -> tuple[Placer, str]:
    """The placer to use and a sentence saying which and why (for doctor and the run header)."""
    if prefer != "affinity":
        reason = cpuset_unavailable()
        if reason is None:
            return CpusetPlacer(), f"cgroup v1 cpuset under {CPUSET_ROOT}"
        if prefer == "cgroup":
            raise PlacementError(f"a cpuset was asked for, but {reason}")
        return AffinityPlacer(), f"thread affinity (sched_setaffinity); no cpuset: {reason}"
    return AffinityPlacer(), "thread affinity (sched_setaffinity), as configured"

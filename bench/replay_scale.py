"""Online replay at scale: 10,000 tuning jobs, every strategy, wall time and memory peak.

    python bench/replay_scale.py [JOBS] [TRACE]

Runs `pipetune replay online` in a child process (so its peak RSS is its own, read from
getrusage) on a synthetic trace of 20 workloads × 8 configurations over the shipped config's
settings (or on TRACE), several times; reports the median wall time and the largest peak.
Results go to bench/results/replay-scale.md.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
REPEATS = 3


def pipetune(*args: str, cwd: Path) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pipetune", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL
    )
    return time.monotonic() - t0


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if len(sys.argv) > 2:
            trace = Path(sys.argv[2]).resolve()
            label = str(trace.relative_to(ROOT)) if trace.is_relative_to(ROOT) else str(trace)
        else:
            trace = work / "synthetic.parquet"
            pipetune("trace", "synthetic", "--out", str(trace), "--workloads", "20", cwd=ROOT)
            label = "synthetic, 20 workloads × 8 configurations × 4 settings × 4 epochs"
        walls, peaks = [], []
        for _ in range(REPEATS):
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            walls.append(
                pipetune(
                    "replay",
                    "online",
                    str(trace),
                    "--jobs",
                    str(jobs),
                    "--out",
                    str(work / "online"),
                    cwd=ROOT,
                )
            )
            # ru_maxrss of children is the largest of any child so far (KiB on Linux)
            peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
        table = (work / "online" / "online.md").read_text()
    lines = [
        "# Online replay at scale (bench/replay_scale.py)",
        "",
        f"`pipetune replay online` with {jobs:,} jobs and all four strategies, on a trace "
        f"({label}); {REPEATS} runs in a fresh process each.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| wall time, whole command (median of {REPEATS}) | {statistics.median(walls):.1f} s "
        f"(runs: {', '.join(f'{w:.1f}' for w in walls)}) |",
        f"| peak resident memory | {max(peaks) / 1024:.0f} MiB |",
        "",
        "The last run's table:",
        "",
        table,
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "replay-scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

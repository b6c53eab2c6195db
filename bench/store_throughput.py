"""Write throughput of the metrics stores, side by side in one run (not a test).

    .venv/bin/python bench/store_throughput.py [--points 5000] [--repeat 3] [--port PORT]

SQLite writes to a temp file. InfluxDB writes to `--port` on 127.0.0.1 (database
`bench_<pid>`, dropped afterwards) or, without it, to a throwaway `influxd` started from
tests/influxd.py; a last line spools to disk with nothing listening. Each figure is the best
of `--repeat` runs of `write(points)` + `flush()` + `close()`, i.e. until the points are
durable on the other side (or in the spool).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipetune.store.base import Point, Store  # noqa: E402
from pipetune.store.credentials import ANONYMOUS  # noqa: E402
from pipetune.store.influx import InfluxStore  # noqa: E402
from pipetune.store.sqlite import SqliteStore  # noqa: E402

T0 = 1_700_000_000_000_000_000


def make_points(n: int, run: int) -> list[Point]:
    return [
        Point(
            "power",
            {"node": f"n{i % 4}", "run": f"bench{run}"},
            {"watts": 40.0 + (i % 17) / 3, "seq": i, "source": "pdu"},
            T0 + i * 1_000_000,
        )
        for i in range(n)
    ]


def best_rate(open_store: Callable[[int], Store], n: int, repeat: int) -> float:
    best = float("inf")
    for run in range(repeat):
        store = open_store(run)
        points = make_points(n, run)
        started = time.perf_counter()
        store.write(points)
        store.flush()
        store.close()
        best = min(best, time.perf_counter() - started)
    return n / best


@contextlib.contextmanager
def influx_port(given: int | None, tmp: Path) -> Iterator[int]:
    if given is not None:
        yield given
        return
    from tests.influxd import Influxd

    with Influxd(tmp / "influxd") as server:
        yield server.port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=None, help="an influxd already running")
    args = parser.parse_args()
    n, repeat = args.points, args.repeat

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sqlite = best_rate(lambda run: SqliteStore(tmp / f"m{run}.sqlite"), n, repeat)
        print(f"sqlite                       {sqlite:>10,.0f} points/s  ({n} points, 1 write)")
        with influx_port(args.port, tmp) as port:
            database = f"bench_{os.getpid()}"
            rates = {}
            for batch in (500, 5000):

                def open_influx(run: int, batch: int = batch) -> Store:
                    spool = tmp / f"spool-{batch}-{run}.sqlite"
                    return InfluxStore(
                        "127.0.0.1", port, database, ANONYMOUS, spool, batch_size=batch
                    )

                rates[batch] = best_rate(open_influx, n, repeat)
                print(
                    f"influxdb (batch_size={batch:<5})   {rates[batch]:>10,.0f} points/s  "
                    f"({n} points, {max(1, n // batch)} request(s))"
                )
            with contextlib.suppress(Exception):
                from influxdb import InfluxDBClient

                InfluxDBClient("127.0.0.1", port).drop_database(database)
        from tests.influxd import free_port

        down = free_port()  # nothing listens: every batch goes to the local spool
        spooled = best_rate(
            lambda run: InfluxStore(
                "127.0.0.1", down, "bench", ANONYMOUS, tmp / f"down-{run}.sqlite"
            ),
            n,
            repeat,
        )
        print(f"influxdb down → local spool  {spooled:>10,.0f} points/s")
        print(f"sqlite / influxdb(batch 500) = {sqlite / rates[500]:.1f}x")


if __name__ == "__main__":
    main()

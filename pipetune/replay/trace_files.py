"""Reading and writing trace files: Parquet (version in the schema metadata) and gzipped CSV
(version on the first line)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd

from pipetune.replay.trace_format import (
    CSV_LINES,
    CSV_VERSION_LINE,
    PARQUET_VERSION_KEY,
    READABLE,
    VERSION,
    TraceError,
    TraceProblem,
)


def file_kind(path: Path) -> str:
    """'parquet' or 'csv', from the file name; a `TraceError` for any other name."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv"
    raise TraceError(f"{path}: expected a .parquet or .csv.gz trace file")


def read_trace_file(path: Path, kind: str) -> tuple[pd.DataFrame, str]:
    """The table of a file of `kind` (see `file_kind`) and its version (an older one is
    upgraded by `trace_validate.upgraded`)."""
    return _read_parquet(path) if kind == "parquet" else _read_csv(path)


def write_trace_file(frame: pd.DataFrame, path: Path, kind: str) -> None:
    """Write a validated frame as a file of `kind`, of the current version."""
    if kind == "parquet":
        _write_parquet(frame, path)
    else:
        _write_csv(frame, path)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, str]:
    """The table and its version (one of `READABLE`)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    found = (table.schema.metadata or {}).get(PARQUET_VERSION_KEY)
    if found not in {v.encode() for v in READABLE}:
        shown = "no version" if found is None else repr(found.decode(errors="replace"))
        older = ", ".join(repr(v) for v in READABLE[1:])
        expected = f"schema metadata {PARQUET_VERSION_KEY.decode()} = {VERSION!r} (or {older})"
        raise TraceError("unsupported trace", [TraceProblem(None, None, expected, shown)])
    return table.to_pandas(), found.decode()


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    """The table (an empty cell is null) and its version (one of `READABLE`)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        first = fh.readline().rstrip("\r\n").strip()
        if first not in CSV_LINES:
            older = ", ".join(repr(line) for line in CSV_LINES if line != CSV_VERSION_LINE)
            expected = f"a first line {CSV_VERSION_LINE!r} (or {older})"
            raise TraceError("unsupported trace", [TraceProblem(None, None, expected, repr(first))])
        # Only the first line is a comment: JSON cells may contain '#', so no `comment=`.
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False, na_filter=False)
    return frame.replace("", None), CSV_LINES[first]


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            *(pa.field(n, pa.string(), nullable=False) for n in ("workload", "config", "setting")),
            pa.field("epoch", pa.int64(), nullable=False),
            *(pa.field(n, pa.float64(), nullable=False) for n in ("duration_s", "eval_s")),
            pa.field("energy_j", pa.float64(), nullable=False),
            pa.field("energy_source", pa.string(), nullable=False),
            pa.field("accuracy", pa.float64(), nullable=False),
            pa.field("loss", pa.float64()),
            pa.field("steady_s", pa.float64()),
            pa.field("samples", pa.int64(), nullable=False),
            pa.field("startup_s", pa.float64(), nullable=False),
            pa.field("switch_s", pa.float64(), nullable=False),
            *(pa.field(n, pa.float64()) for n in ("reuse_startup_s", "reuse_epoch1_ratio")),
            pa.field("live", pa.string(), nullable=False),
            pa.field("profile", pa.string()),
            pa.field("synthetic", pa.bool_(), nullable=False),
        ],
        metadata={PARQUET_VERSION_KEY: VERSION.encode()},
    )
    arrays = []
    for field in schema:
        values = frame[field.name]
        if pa.types.is_string(field.type):
            arrays.append(pa.array(values.to_numpy(dtype=object), field.type, from_pandas=True))
        else:
            arrays.append(pa.array(values.to_numpy(), type=field.type, from_pandas=True))
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with (
        gzip.GzipFile(path, "wb", mtime=0) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh,
    ):
        fh.write(CSV_VERSION_LINE + "\n")
        frame.to_csv(fh, index=False, lineterminator="\n")

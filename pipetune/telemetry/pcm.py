"""Processor energy from Intel PCM's CSV output (`pcm.x <delay> -csv=<file>`), followed live.

Format (pcm.cpp `print_csv_header` / `print_csv`):

- two header rows: a group row ("System", "System Pack C-States", "Socket 0", ...,
  "Proc Energy (Joules)") and a column row starting `Date,Time`. Older versions separate with
  ';' and write each group name once, followed by empty cells for the rest of its span; newer
  ones use ',' and repeat the name in every cell. Every row ends with the separator.
- the package energy is the column named "Proc Energy (Joules)" (group "System Pack C-States",
  the system total), and again per socket under the group "Proc Energy (Joules)" (columns
  "SKT0", "SKT1", ...). We take the system column, or the sum of the socket columns when pcm
  ran without system output (`-nsys`); never both. "DRAM Energy (Joules)" likewise.
- `Date` is YYYY-MM-DD and `Time` HH:MM:SS.mmm in the local time of the machine running pcm
  (no milliseconds on Windows). A row's joules are those of the interval that ended when it was
  printed, so interval i is (timestamp of row i-1, timestamp of row i]; the first row only
  opens the series. pcm prints numbers with 3 significant digits (about ±0.3 % per row).
- pcm writes the newline *before* each row, so the newest row normally has none yet. A last
  line counts once it holds as many separators as the column row (rows end with one); anything
  shorter is a partial write, left for the next poll.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipetune.telemetry.integrate import WindowNotCovered, prorate_interval_energy
from pipetune.telemetry.meter import Availability, MeterUnavailable, SampledMeter

PROC_ENERGY = "Proc Energy (Joules)"
DRAM_ENERGY = "DRAM Energy (Joules)"
HEADER_SEARCH_LINES = 20


@dataclass(frozen=True)
class PcmLayout:
    """Where the fields we need are in a PCM CSV, found by name from its two header rows."""

    separator: str
    separators: int  # in the column row; a complete data row has as many
    terminated: bool  # the column row ends with the separator (pcm's rows all do)
    date: int
    time: int
    energy: tuple[int, ...]  # columns summed into a row's joules
    description: str


def split_row(line: str, separator: str) -> list[str]:
    return [cell.strip() for cell in line.split(separator)]


def _energy_columns(groups: list[str], columns: list[str], name: str) -> tuple[list[int], str]:
    system = [i for i, column in enumerate(columns) if column == name]
    if system:
        return system[:1], f"{name} [{groups[system[0]] or 'System'}]"
    sockets = [  # a named column under the group (not the empty cell after a trailing separator)
        i for i, group in enumerate(groups) if group == name and i < len(columns) and columns[i]
    ]
    if sockets:
        return sockets, f"{name} [{' + '.join(columns[i] for i in sockets)}]"
    raise ValueError(
        f"no {name!r} column: pcm could not read that energy counter on this CPU (or was run "
        "without system and socket output)"
    )


def parse_header(group_row: str, column_row: str, include_dram: bool = False) -> PcmLayout:
    """The layout of a PCM CSV from its group row and column row; the separator is sniffed.

    Raises:
        ValueError: not PCM CSV output, or no energy column; the message says which.
    """
    separator = ";" if column_row.count(";") > column_row.count(",") else ","
    columns = split_row(column_row, separator)
    if "Date" not in columns or "Time" not in columns:
        raise ValueError("not pcm CSV output: the second header row has no Date and Time columns")
    groups: list[str] = []
    for cell in split_row(group_row, separator):
        groups.append(cell or (groups[-1] if groups else ""))  # spans: name once, then empties
    groups += [groups[-1] if groups else ""] * max(0, len(columns) - len(groups))
    energy, description = _energy_columns(groups, columns, PROC_ENERGY)
    if include_dram:
        dram, dram_description = _energy_columns(groups, columns, DRAM_ENERGY)
        energy, description = energy + dram, f"{description} + {dram_description}"
    return PcmLayout(
        separator=separator,
        separators=column_row.count(separator),
        terminated=column_row.rstrip().endswith(separator),
        date=columns.index("Date"),
        time=columns.index("Time"),
        energy=tuple(energy),
        description=description,
    )


def local_timestamp(date: str, clock: str, zone: ZoneInfo, fold: int = 0) -> float:
    """Unix seconds of a PCM `Date`, `Time` pair read as local time in `zone`."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in clock else "%Y-%m-%d %H:%M:%S"
    naive = datetime.strptime(f"{date} {clock}", fmt)
    return naive.replace(tzinfo=zone, fold=fold).timestamp()


def _is_column_row(line: str) -> bool:
    return any(split_row(line, sep)[:2] == ["Date", "Time"] for sep in (",", ";"))


class PcmMeter(SampledMeter):
    """Package (optionally + DRAM) energy of this node from a growing PCM CSV file."""

    source = "pcm"

    def __init__(
        self,
        csv_path: Path,
        timezone: str,
        interval_s: float = 0.5,
        *,
        include_dram: bool = False,
        settle_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s, clock)
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"timezone: expected an IANA name such as 'Europe/Zurich', found {timezone!r}"
            ) from exc
        self.csv_path = Path(csv_path)
        self.timezone = timezone
        self.include_dram = include_dram
        self.settle_s = settle_s
        self._reset()

    def _reset(self) -> None:
        self._inode: int | None = None
        self._offset = 0
        self._pending = b""
        self._previous_line = ""
        self._lines_before_header = 0
        self._layout: PcmLayout | None = None
        self._layout_error = ""
        self._times: list[float] = []
        self._row_joules: list[float] = []

    def availability(self) -> Availability:
        try:
            self.poll()
        except MeterUnavailable as exc:
            return Availability(False, str(exc))
        return Availability(True)

    def describe(self) -> str:
        what = self._layout.description if self._layout else f"{PROC_ENERGY} (header not read yet)"
        return (
            f"pcm: {what} from {self.csv_path} (local time {self.timezone}), "
            f"followed every {self.interval_s:g} s"
        )

    def _poll(self) -> None:
        try:
            with open(self.csv_path, "rb") as f:
                stat = os.fstat(f.fileno())
                if stat.st_ino != self._inode or stat.st_size < self._offset:
                    self._reset()  # a new pcm run replaced or truncated the file
                    self._inode = stat.st_ino
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError as exc:
            raise MeterUnavailable(
                f"no pcm output at {self.csv_path}: start `pcm.x 0.5 -csv={self.csv_path}` "
                "(as root) on this node first"
            ) from exc
        except OSError as exc:
            raise MeterUnavailable(f"cannot read pcm output {self.csv_path}: {exc}") from exc
        self._offset += len(data)
        *lines, tail = (self._pending + data).split(b"\n")
        for line in lines:
            self._take(line.decode("utf-8", "replace").strip())
        text = tail.decode("utf-8", "replace").strip()
        layout = self._layout
        if (
            layout is not None
            and layout.terminated
            and text.endswith(layout.separator)
            and text.count(layout.separator) >= layout.separators
        ):
            self._take(text)  # complete: pcm writes the newline before the next row
            tail = b""
        self._pending = tail
        if self._layout_error:
            raise MeterUnavailable(f"pcm output {self.csv_path}: {self._layout_error}")

    def _take(self, line: str) -> None:
        if not line:
            return
        if self._layout is None:
            if self._previous_line and _is_column_row(line) and not self._layout_error:
                try:
                    self._layout = parse_header(self._previous_line, line, self.include_dram)
                except ValueError as exc:
                    self._layout_error = str(exc)
            self._previous_line = line
            self._lines_before_header += 1
            if self._layout is None and self._lines_before_header >= HEADER_SEARCH_LINES:
                self._layout_error = (
                    f"not pcm CSV output: no `Date,Time,...` header row in the first "
                    f"{HEADER_SEARCH_LINES} lines"
                )
            return
        self._take_row(self._layout, split_row(line, self._layout.separator))

    def _take_row(self, layout: PcmLayout, cells: list[str]) -> None:
        try:
            at = local_timestamp(cells[layout.date], cells[layout.time], self.zone)
            if self._times and at < self._times[-1]:  # the repeated hour when DST ends
                at = local_timestamp(cells[layout.date], cells[layout.time], self.zone, fold=1)
        except (IndexError, ValueError):
            return  # not a data row (a repeated header, a truncated line)
        try:
            joules = sum(float(cells[i]) for i in layout.energy)
        except (IndexError, ValueError):
            joules = math.nan  # a window over this row will say so
        if self._times and at <= self._times[-1]:
            if at == self._times[-1] and self._row_joules:
                self._row_joules[-1] += joules  # same printed time (no milliseconds): merge
            return  # the clock went backwards: drop the row
        self._times.append(at)
        if len(self._times) > 1:
            self._row_joules.append(joules)

    def _covers(self, end: float) -> bool:
        return bool(self._times) and self._times[-1] >= end

    def _joules(self, start: float, end: float) -> float:
        where = f"pcm {self.csv_path} (rows read as local time in {self.timezone})"
        if self._layout_error:
            raise MeterUnavailable(f"{where}: {self._layout_error}")
        try:
            joules = prorate_interval_energy(self._times, self._row_joules, start, end)
        except WindowNotCovered as exc:
            raise MeterUnavailable(f"{where}: {exc}") from exc
        if math.isnan(joules):
            raise MeterUnavailable(f"{where}: a row inside the window has no energy value")
        return joules

"""RAPL energy counters through the Linux powercap sysfs tree (`/sys/class/powercap`).

Counted: every package zone `intel-rapl:N` (name `package-N`) plus its sub-zone named `dram`.
Not counted: the `core` and `uncore` sub-zones (already inside the package figure) and a
`psys` zone (the whole platform, which contains the packages). Counters are sampled in the
background so windows longer than one wrap period (minutes at full load) stay right.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipetune.telemetry.meter import (
    Availability,
    CounterTrack,
    MeterUnavailable,
    SampledMeter,
)

SYSFS = Path("/sys/class/powercap")
_PACKAGE = re.compile(r"^intel-rapl:(\d+)$")
_SUBZONE = re.compile(r"^intel-rapl:(\d+):(\d+)$")
MICROJOULE = 1e-6


@dataclass(frozen=True)
class RaplDomain:
    """One counted zone: `package-0`, or `package-0/dram` for a package's DRAM sub-zone."""

    path: Path
    label: str
    max_range_uj: int


def _read_text(path: Path) -> str:
    """The one place files are read (tests replace it: as root, file modes do not block reads)."""
    with open(path) as f:
        return f.read().strip()


def _permission_reason(path: Path, root: Path) -> str:
    return (
        f"permission denied on {path}: since Linux 5.10 RAPL counters are readable by root only; "
        f"run as root, or `sudo chmod a+r {root}/intel-rapl:*/energy_uj` (lasts until reboot; "
        "a udev rule or systemd-tmpfiles entry makes it permanent)"
    )


def _read_text_or_raise(path: Path, root: Path) -> str:
    try:
        return _read_text(path)
    except PermissionError as exc:
        raise MeterUnavailable(_permission_reason(path, root)) from exc
    except OSError as exc:
        raise MeterUnavailable(f"cannot read {path}: {exc}") from exc


def _read_int(path: Path, root: Path) -> int:
    text = _read_text_or_raise(path, root)
    try:
        return int(text)
    except ValueError as exc:
        raise MeterUnavailable(f"{path} holds {text!r}, not a counter value") from exc


def _zone_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in path.name.split(":")[1:])


def discover(root: Path) -> list[RaplDomain]:
    """The zones to count under `root`, packages in order, each followed by its DRAM zone.

    Raises:
        MeterUnavailable: no tree, no package zone, or a file that cannot be read.
    """
    if not root.is_dir():
        raise MeterUnavailable(
            f"no RAPL powercap tree at {root}: this machine (or VM) does not expose RAPL"
        )
    top = list(root.iterdir())
    domains: list[RaplDomain] = []
    for pkg in sorted((p for p in top if _PACKAGE.match(p.name)), key=_zone_key):
        name = _read_text_or_raise(pkg / "name", root)
        if not name.startswith("package"):
            continue  # psys: the platform total would double-count the packages
        domains.append(RaplDomain(pkg, name, _read_int(pkg / "max_energy_range_uj", root)))
        # Sub-zones sit inside the package directory and, on real sysfs, also at the top level.
        subzones: dict[str, Path] = {}
        for p in [*top, *(pkg.iterdir())]:
            m = _SUBZONE.match(p.name)
            if m and f"intel-rapl:{m.group(1)}" == pkg.name:
                subzones.setdefault(p.name, p)
        for sub in sorted(subzones.values(), key=_zone_key):
            if _read_text_or_raise(sub / "name", root) == "dram":
                domains.append(
                    RaplDomain(sub, f"{name}/dram", _read_int(sub / "max_energy_range_uj", root))
                )
    if not domains:
        found = ", ".join(sorted(p.name for p in top)) or "nothing"
        raise MeterUnavailable(f"no RAPL package zone under {root} (found: {found})")
    return domains


class RaplMeter(SampledMeter):
    """CPU package + DRAM energy of this node from RAPL counters (µJ, wrapping)."""

    source = "rapl"

    def __init__(
        self,
        root: Path = SYSFS,
        interval_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s, clock)
        self.root = Path(root)
        self._domains: list[RaplDomain] | None = None
        self._tracks: dict[str, CounterTrack] = {}

    def availability(self) -> Availability:
        try:
            for domain in self._discover():
                _read_int(domain.path / "energy_uj", self.root)
        except MeterUnavailable as exc:
            return Availability(False, str(exc))
        return Availability(True)

    def describe(self) -> str:
        try:
            domains = self._discover()
        except MeterUnavailable as exc:
            return f"rapl: unavailable ({exc})"
        groups: dict[str, list[str]] = {}
        for d in domains:
            package, _, sub = d.label.partition("/")
            groups.setdefault(package, [package])
            if sub:
                groups[package].append(sub)
        zones = ", ".join(" + ".join(g) for g in groups.values())
        return (
            f"rapl: {zones} ({len(domains)} domains) from {self.root}, "
            f"sampled every {self.interval_s:g} s"
        )

    def _discover(self) -> list[RaplDomain]:
        if self._domains is None:
            self._domains = discover(self.root)
        return self._domains

    def _poll(self) -> None:
        domains = self._discover()
        before = self._clock()
        raws = [_read_int(d.path / "energy_uj", self.root) for d in domains]
        at = (before + self._clock()) / 2
        for domain, raw in zip(domains, raws, strict=True):
            track = self._tracks.get(domain.label)
            if track is None:
                track = CounterTrack(f"rapl {domain.label}", domain.max_range_uj, MICROJOULE)
                self._tracks[domain.label] = track
            track.add(at, raw)

    def _covers(self, end: float) -> bool:
        return bool(self._tracks) and all(t.covers(end) for t in self._tracks.values())

    def _joules(self, start: float, end: float) -> float:
        if not self._tracks:
            raise MeterUnavailable("rapl: no readings yet (start() the meter before the window)")
        return sum(track.joules(start, end) for track in self._tracks.values())

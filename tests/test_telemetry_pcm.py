"""PCM meter on recorded `pcm.x -csv` output: layout by name, time zones, following a file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipetune.telemetry.meter import MeterUnavailable
from pipetune.telemetry.pcm import PcmMeter, parse_header

DATA = Path(__file__).parent / "data" / "telemetry"
LINES = (DATA / "pcm.csv").read_text().split("\n")  # 2 header rows + 8 rows, no final newline
# System "Proc Energy (Joules)" per row as recorded; row 0 only opens the series.
PROC = [70.4, 70.4, 71.0, 150.0, 191.0, 191.0, 190.0, 190.0]
DRAM = [9.51, 9.49, 9.62, 14.2, 16.8, 16.9, 16.7, 16.8]
CLOCKS = ["02.118", "03.119", "04.121", "05.120", "06.122", "07.123", "08.123", "09.125"]


def at(row: int, zone: str = "Europe/Zurich") -> float:
    """Unix time of a row of pcm.csv read as local time in `zone` (2024-03-14 10:15:ss)."""
    seconds = float(CLOCKS[row])
    local = datetime(2024, 3, 14, 10, 15, tzinfo=ZoneInfo(zone)) + timedelta(seconds=seconds)
    return local.timestamp()


def meter_for(path: Path, zone: str = "Europe/Zurich", **options: object) -> PcmMeter:
    return PcmMeter(path, zone, settle_s=0.0, **options)  # type: ignore[arg-type]


def test_recorded_file_whole_rows() -> None:
    meter = meter_for(DATA / "pcm.csv")
    assert meter.availability().ok
    energy = meter.energy(at(1), at(4))
    assert (energy.source, energy.joules) == ("pcm", pytest.approx(71.0 + 150.0 + 191.0))
    assert meter.energy(at(0), at(7)).joules == pytest.approx(sum(PROC[1:]))


def test_rows_straddling_the_window_are_prorated_by_time() -> None:
    meter = meter_for(DATA / "pcm.csv")
    start, end = (at(0) + at(1)) / 2, (at(4) + at(5)) / 2
    assert meter.energy(start, end).joules == pytest.approx(70.4 / 2 + 71 + 150 + 191 + 191 / 2)
    # a window inside one row: its share of that row's energy
    quarter = at(3) + (at(4) - at(3)) / 4
    assert meter.energy(at(3), quarter).joules == pytest.approx(191.0 / 4)


def test_columns_are_found_by_name_and_dram_is_optional() -> None:
    meter = meter_for(DATA / "pcm.csv", include_dram=True)
    assert meter.energy(at(1), at(4)).joules == pytest.approx(412.0 + 9.62 + 14.2 + 16.8)
    assert "Proc Energy (Joules) [System Pack C-States] + DRAM Energy (Joules)" in (
        meter.describe()
    )


def test_the_same_rows_in_two_time_zones_shift_windows_by_the_offset() -> None:
    zurich = meter_for(DATA / "pcm.csv", "Europe/Zurich")
    new_york = meter_for(DATA / "pcm.csv", "America/New_York")
    # 2024-03-14: Zurich is still on CET (+1), New York already on EDT (-4): 5 h, not 6.
    assert at(1, "America/New_York") - at(1, "Europe/Zurich") == 5 * 3600
    shift = 5 * 3600
    assert new_york.energy(at(1) + shift, at(4) + shift).joules == pytest.approx(
        zurich.energy(at(1), at(4)).joules
    )
    with pytest.raises(MeterUnavailable, match="local time in America/New_York"):
        new_york.energy(at(1), at(4))


def test_older_semicolon_format_with_spanning_group_names() -> None:
    meter = meter_for(DATA / "pcm_semicolon.csv", "Europe/Berlin")
    assert meter.availability().ok
    start = datetime(2019, 10, 27, 14, 2, 11, 505000, tzinfo=ZoneInfo("Europe/Berlin"))
    end = datetime(2019, 10, 27, 14, 2, 15, 512000, tzinfo=ZoneInfo("Europe/Berlin"))
    energy = meter.energy(start.timestamp(), end.timestamp()).joules
    assert energy == pytest.approx(48.9 + 61.2 + 61.5 + 23.0)
    assert "[System Pack C-States]" in meter.describe()


def test_without_system_columns_the_sockets_are_summed() -> None:
    layout = parse_header(
        "System;System;Socket 0;Socket 1;Proc Energy (Joules);;",
        "Date;Time;EXEC;EXEC;SKT0;SKT1;",
    )
    assert layout.separator == ";" and layout.energy == (4, 5)
    assert layout.description == "Proc Energy (Joules) [SKT0 + SKT1]"
    with pytest.raises(ValueError, match="no 'Proc Energy \\(Joules\\)' column"):
        parse_header("System,System,Socket 0,", "Date,Time,EXEC,")


def test_following_a_growing_file(tmp_path: Path) -> None:
    path = tmp_path / "pcm.csv"
    path.write_text("\n".join(LINES[:5]) + "\n")  # headers + rows 0..2
    meter = meter_for(path)
    meter.poll()
    assert meter.energy(at(1), at(2)).joules == pytest.approx(71.0)
    with pytest.raises(MeterUnavailable, match="samples end at"):
        meter.energy(at(1), at(3))
    with path.open("a") as f:
        f.write("\n".join(LINES[5:7]))  # rows 3..4, the last without a newline (as pcm does)
    meter.poll()
    assert meter.energy(at(1), at(4)).joules == pytest.approx(71.0 + 150.0 + 191.0)


def test_a_partial_last_line_waits_until_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "pcm.csv"
    row3 = LINES[5]
    path.write_text("\n".join(LINES[:5]) + "\n" + row3[:40])
    meter = meter_for(path)
    meter.poll()
    with pytest.raises(MeterUnavailable):
        meter.energy(at(2), at(3))
    with path.open("a") as f:
        f.write(row3[40:-1])  # everything but the trailing separator: still partial
    meter.poll()
    with pytest.raises(MeterUnavailable):
        meter.energy(at(2), at(3))
    with path.open("a") as f:
        f.write(",")  # complete, though pcm writes its newline only before the next row
    meter.poll()
    assert meter.energy(at(2), at(3)).joules == pytest.approx(150.0)
    with path.open("a") as f:
        f.write("\n" + LINES[6])
    meter.poll()
    assert meter.energy(at(2), at(4)).joules == pytest.approx(150.0 + 191.0)  # row 3 once


def test_energy_waits_for_pcm_to_write_the_window_end(tmp_path: Path) -> None:
    path = tmp_path / "pcm.csv"
    path.write_text("\n".join(LINES[:6]))
    meter = PcmMeter(path, "Europe/Zurich", interval_s=0.02, settle_s=2.0)
    meter.start()
    with path.open("a") as f:
        f.write("\n" + LINES[6])
    assert meter.energy(at(2), at(4)).joules == pytest.approx(150.0 + 191.0)
    meter.stop()


def test_a_new_pcm_run_replacing_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "pcm.csv"
    path.write_text("\n".join(LINES))
    meter = meter_for(path)
    meter.poll()
    path.write_text("\n".join(LINES[:4]))  # truncated and rewritten: rows 0..1 only
    meter.poll()
    assert meter.energy(at(0), at(1)).joules == pytest.approx(70.4)
    with pytest.raises(MeterUnavailable):
        meter.energy(at(0), at(2))


def test_the_repeated_hour_when_daylight_saving_ends(tmp_path: Path) -> None:
    header = "System,System,System Pack C-States,\nDate,Time,Proc Energy (Joules),\n"
    rows = ["02:59:58.500", "02:59:59.500", "02:00:00.500", "02:00:01.500"]  # CEST, then CET
    path = tmp_path / "pcm.csv"
    path.write_text(header + "\n".join(f"2023-10-29,{t},10," for t in rows))
    meter = meter_for(path)
    first = datetime(2023, 10, 29, 2, 59, 58, 500000, tzinfo=ZoneInfo("Europe/Zurich"))
    start = first.timestamp()
    assert meter.energy(start, start + 3.0).joules == pytest.approx(30.0)


def test_a_row_without_energy_inside_the_window_is_reported(tmp_path: Path) -> None:
    header = "System,System,System Pack C-States,\nDate,Time,Proc Energy (Joules),\n"
    body = "2024-03-14,10:00:00.000,5,\n2024-03-14,10:00:01.000,N/A,\n2024-03-14,10:00:02.000,7,"
    path = tmp_path / "pcm.csv"
    path.write_text(header + body)
    meter = meter_for(path, "UTC")
    t0 = datetime(2024, 3, 14, 10, tzinfo=ZoneInfo("UTC")).timestamp()
    assert meter.energy(t0 + 1.5, t0 + 2.0).joules == pytest.approx(3.5)
    with pytest.raises(MeterUnavailable, match="has no energy value"):
        meter.energy(t0 + 0.5, t0 + 2.0)


def test_missing_file_and_other_csv_are_unavailable(tmp_path: Path) -> None:
    reason = meter_for(tmp_path / "absent.csv").availability().reason
    assert reason.startswith(f"no pcm output at {tmp_path / 'absent.csv'}: start `pcm.x")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n" + "1,2\n" * 30)
    reason = meter_for(other).availability().reason
    assert "not pcm CSV output: no `Date,Time,...` header row" in reason


def test_bad_time_zone_is_rejected() -> None:
    with pytest.raises(ValueError, match="IANA name"):
        PcmMeter(DATA / "pcm.csv", "CET+1")

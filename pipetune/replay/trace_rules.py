"""The rules of a trace that span rows, checked once every cell is valid (trace_validate.py):
unique keys, epochs 1..n per group, one value of each per-group column (start-up, live switch,
reuse figures) per group, both reuse figures or neither, profiles on epoch-1 rows only, and one
profile and one `live` per workload."""

from __future__ import annotations

import pandas as pd

from pipetune.replay.trace_format import KEY, MAX_PROBLEMS, PER_GROUP, REUSE, TraceProblem
from pipetune.replay.trace_problems import Problems


def check_rules(frame: pd.DataFrame, problems: Problems) -> None:
    """Every rule of the module doc; problems go to `problems` (raised by the caller)."""
    _check_unique_keys(frame, problems)
    _check_reuse_pairs(frame, problems)
    _check_each_group(frame, problems)
    _check_each_workload(frame, problems)


def _check_unique_keys(frame: pd.DataFrame, problems: Problems) -> None:
    first_at = frame.reset_index().groupby(list(KEY), sort=False)["index"].transform("first")
    dup = frame.duplicated(list(KEY), keep="first")
    problems.where(
        dup,
        "epoch",
        "a unique (workload, config, setting, epoch)",
        lambda i: f"a duplicate of row {int(first_at.iloc[i]) + 1}",
    )


def _check_reuse_pairs(frame: pd.DataFrame, problems: Problems) -> None:
    """A reused process is described by both of its figures, or not at all."""
    startup, ratio = (frame[name].isna() for name in REUSE)
    problems.where(
        startup != ratio,
        "reuse_epoch1_ratio",
        "reuse_startup_s and reuse_epoch1_ratio both present or both null",
        lambda i: "only reuse_startup_s" if ratio.iloc[i] else "only reuse_epoch1_ratio",
    )


def _check_each_group(frame: pd.DataFrame, problems: Problems) -> None:
    """Epochs 1..n without gaps, and one value of each `PER_GROUP` column, per group; one
    problem per rule broken, at the group's first row."""
    # a reuse figure present on some rows of a group and null on others differs too: null is
    # counted as a value (the figures are >= 0)
    filled = frame.assign(**{name: frame[name].fillna(-1.0) for name in REUSE})
    groups = filled.reset_index().groupby(["workload", "config", "setting"], sort=False)
    stats = groups.agg(
        first=("index", "min"),
        n=("epoch", "nunique"),
        top=("epoch", "max"),
        **{name: (name, "nunique") for name in PER_GROUP},
    )
    gaps = stats["top"] != stats["n"]
    differ = {name: stats[name] > 1 for name in PER_GROUP}
    flagged = gaps.copy()
    for mask in differ.values():
        flagged |= mask
    stats = stats[flagged]
    for mask in (gaps, *differ.values()):
        problems.total += int(mask[flagged].iloc[MAX_PROBLEMS:].sum())
    for (w, c, s), row in stats.head(MAX_PROBLEMS).iterrows():
        where = int(row["first"]) + 1
        if row["top"] != row["n"]:
            epochs = sorted(set(groups.get_group((w, c, s))["epoch"]))
            shown = ", ".join(map(str, epochs[:12])) + (", ..." if len(epochs) > 12 else "")
            problems.add(
                TraceProblem(
                    where,
                    "epoch",
                    f"epochs 1..{int(row['top'])} without gaps for ({w}, {c}, {s})",
                    f"epochs [{shown}]",
                )
            )
        for name, what in PER_GROUP.items():
            if row[name] > 1:
                problems.add(
                    TraceProblem(
                        where,
                        name,
                        f"{what} on every row of ({w}, {c}, {s})",
                        f"{int(row[name])} different values",
                    )
                )


def _check_each_workload(frame: pd.DataFrame, problems: Problems) -> None:
    """Profiles on epoch-1 rows only, and one profile and one `live` per workload."""
    profiled = frame["profile"].notna()
    problems.where(
        profiled & (frame["epoch"] != 1),
        "profile",
        "null (profiles go on epoch-1 rows only)",
        lambda i: "a profile",
    )
    first_profile = frame["profile"].where(profiled).groupby(frame["workload"]).transform("first")
    problems.where(
        profiled & (frame["profile"] != first_profile),
        "profile",
        "the same profile on every row of the workload",
        lambda i: "a different profile",
    )
    by_workload = frame.reset_index().groupby("workload", sort=False)
    first_row = by_workload["index"].transform("first")
    first_live = by_workload["live"].transform("first")
    problems.where(
        frame["live"] != first_live,
        "live",
        "the same live parameters on every row of the workload",
        lambda i: (
            f"{frame['live'].iloc[i]!r} (row {int(first_row.iloc[i]) + 1} has "
            f"{first_live.iloc[i]!r})"
        ),
    )

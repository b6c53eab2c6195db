"""Resume forensics: what a trial left behind when its run was stopped, made consistent with
the journal before the trial goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipetune.contract import checkpoint_epochs
from pipetune.probing.history import epochs_done
from pipetune.run_state import TrialState


def stop_orphans(checkpoint: str) -> None:
    """A crashed tuner can leave its spark-submit running; stop any still using this checkpoint."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "--checkpoint" in cmdline and checkpoint in cmdline:
            try:
                for child in proc.children(recursive=True):
                    child.kill()
                proc.kill()
            except psutil.NoSuchProcess:
                continue


def checkpoint_mismatch(trial: TrialState) -> str | None:
    """Why the trial's checkpoint cannot be continued from, or None when it holds exactly the
    epochs the journal says were completed.

    A crash between the app saving and the journal recording leaves weights whose epochs are
    not accounted for: the checkpoint is removed and the trial starts afresh."""
    saved = checkpoint_epochs(Path(trial.checkpoint))
    journaled = epochs_done(trial.segments)
    if saved == journaled:
        return None
    shutil.rmtree(trial.checkpoint, ignore_errors=True)
    return f"checkpoint holds {saved} epoch(s), journal {journaled}"

"""System-parameter probing inside a trial: candidate settings, selection, and the trial plan."""

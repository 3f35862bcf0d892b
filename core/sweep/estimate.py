"""How long a sweep will take, said before it starts: from the history's earlier runs of the same
technique on the same dataset and model (their median), else unknown until the first trial ends."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from core.foundation import history
from core.foundation.workspace import Workspace

RAY_STARTUP_SECONDS_ESTIMATE = 8.0  # a local cluster and its first workers importing torch (measured: bench/bench_sweep.py)


@dataclass(frozen=True)
class SweepEstimate:
    trials: int
    slots: int
    trial_seconds: float | None  # median of `based_on` earlier runs; None: no earlier run to go by
    based_on: int

    @property
    def total_seconds(self) -> float | None:
        if self.trial_seconds is None:
            return None
        waves = -(-self.trials // max(1, self.slots))  # ceil
        return RAY_STARTUP_SECONDS_ESTIMATE + waves * self.trial_seconds

    def sentence(self) -> str:
        if self.trials == 0:
            return "Nothing to run: every trial of this sweep is already in the history."
        if self.trial_seconds is None:
            return f"{self.trials} trial(s), {self.slots} at a time; no earlier run of this kind to estimate from, so the estimate comes after the first trial."
        return (
            f"{self.trials} trial(s), {self.slots} at a time: about {_duration(self.total_seconds)} "
            f"(a trial took {self.trial_seconds:.0f} s in the median of {self.based_on} earlier run(s), plus Ray's start-up)."
        )


def estimate_sweep(workspace: Workspace, technique: str, dataset: str, model: str, trials: int, slots: int) -> SweepEstimate:
    runs = history.list_runs(workspace.history_db, dataset=dataset, technique=technique, limit=200, newest_first=True)
    seconds = [
        float(run.metrics["seconds"]) for run in runs if isinstance(run.metrics.get("seconds"), (int, float)) and run.metrics.get("seconds") > 0 and (run.model == model or technique == "distill")
    ]
    return SweepEstimate(trials, slots, statistics.median(seconds) if seconds else None, len(seconds))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"

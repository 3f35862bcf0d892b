"""What the Pruning page shows of a saved pruning run, from the run it just made or read back from
the history. A classroom server fine-tunes in its job queue (core.jobs.kinds), in another process:
the page that asked gets back only the run's id, and shows the run from here.

    figures = run_figures(result)                      # a run made (and recorded) in this process
    figures = recorded_figures(workspace, run_id)      # the same figures, from the history row

Every figure comes from the history row (the headline and PruneReport.as_details()), so nothing
is loaded from the run's file and no torch model is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from core.contract.result import Headline, TechniqueResult
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.training.records import EpochRecord
from core.foundation.workspace import Workspace


@dataclass(frozen=True)
class PruneRunFigures:
    """A saved pruning run as the page shows it: its headline and the few report figures beside it."""

    run_id: int
    artifact_path: Path | None
    source_run_id: int | None  # the run it started from
    headline: Headline
    accuracy_oneshot: float  # pruned to the target at once, before fine-tuning
    sparsity: float
    latency_ms_masked: float
    finetune_history: list[EpochRecord] = field(default_factory=list)


def run_figures(result: TechniqueResult) -> PruneRunFigures:
    """A recorded prune() result's figures (run id and path set by core.contract.record)."""
    report = result.report
    return PruneRunFigures(
        run_id=result.run_id,
        artifact_path=result.artifact.path,
        source_run_id=result.source.run_id,
        headline=result.headline,
        accuracy_oneshot=report.accuracy_oneshot,
        sparsity=report.sparsity,
        latency_ms_masked=report.latency_ms_masked,
        finetune_history=[EpochRecord(**epoch) for epoch in report.finetune_history],
    )


def recorded_figures(workspace: Workspace, run_id: int) -> PruneRunFigures:
    """The prune run `run_id` as recorded: its history row's headline and details."""
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        raise UserError(f"run #{run_id}, which the queued job recorded, is no longer in the history; press the run button to run it again")
    if run.technique != "prune":
        raise UserError(f"run #{run_id} is a {run.technique} run, not a pruning run")
    details = run.metrics.get("details", {})
    return PruneRunFigures(
        run_id=run.id,
        artifact_path=workspace.resolve_artifact(run.artifact_path),
        source_run_id=run.parent_id,
        headline=headline_from_metrics(run.metrics),
        accuracy_oneshot=float(details["accuracy_oneshot"]),
        sparsity=float(details["sparsity"]),
        latency_ms_masked=float(details["latency_ms_masked"]),
        finetune_history=[EpochRecord(**epoch) for epoch in details.get("finetune_history", [])],
    )


def headline_from_metrics(metrics: dict) -> Headline:
    """A run's headline back from its history metrics (core.contract.record stores Headline.as_dict() among them)."""
    return Headline(**{name.name: metrics[name.name] for name in dataclasses.fields(Headline) if name.name in metrics})

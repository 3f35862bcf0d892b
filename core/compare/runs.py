"""The side-by-side table of chosen runs against a reference (the baseline, or a pinned run), and a
pipeline's waterfall; each run read through core.contract.run_summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.contract.run_summary import RunSummary, sweep_id_of


@dataclass
class WaterfallStep:
    """One point of a pipeline: the model after a step."""

    name: str  # "baseline", "distill", "prune", "quantize", "encode"
    size_bytes: int
    accuracy: float | None  # 0..1; None where the step leaves the computation unchanged (an encoding)
    size_measure: str = ""


def waterfall_steps(run: RunSummary) -> list[WaterfallStep]:
    """A pipeline run's recorded steps as waterfall points (empty for any other run)."""
    points = []
    for step in run.pipeline_steps:
        if _number(step.get("size_bytes")) and isinstance(step.get("step"), str):
            accuracy = step.get("accuracy")
            points.append(WaterfallStep(step["step"], int(step["size_bytes"]), float(accuracy) if _number(accuracy) else None, str(step.get("size_measure", ""))))
    return points


@dataclass
class ComparisonRow:
    """One run beside the reference: how much smaller, how much faster, how much accuracy it cost."""

    run: RunSummary
    compression_ratio: float | None  # reference fp32 dense bytes / this run's honest artifact bytes
    speedup: float | None  # reference latency / this run's latency, like for like
    speedup_basis: str  # how the speedup was measured, in words ("" when it could not be)
    accuracy_change_points: float | None  # percentage points, negative = worse

    def as_dict(self) -> dict:
        values = self.run.as_dict()
        values.pop("run_params")
        values.pop("pipeline_steps")
        return {**values, "compression_ratio": self.compression_ratio, "speedup": self.speedup, "speedup_basis": self.speedup_basis, "accuracy_change_points": self.accuracy_change_points}


def compare_to_reference(run: RunSummary, reference: RunSummary) -> ComparisonRow:
    reference_bytes = reference.dense_size_bytes or reference.size_bytes
    ratio = reference_bytes / run.size_bytes if reference_bytes and run.size_bytes else None
    speedup, basis = _speedup(run, reference)
    if run.accuracy is None or reference.accuracy is None:
        change = None
    elif run.before_run_id == reference.run_id and run.accuracy_before is not None:
        change = 100.0 * (run.accuracy - run.accuracy_before)  # both measured on the run's evaluation images
    else:
        change = 100.0 * (run.accuracy - reference.accuracy)
    return ComparisonRow(run, ratio, speedup, basis, change)


def comparison_table(runs: list[RunSummary], reference: RunSummary) -> list[ComparisonRow]:
    return [compare_to_reference(run, reference) for run in runs]


def _speedup(run: RunSummary, reference: RunSummary) -> tuple[float | None, str]:
    """Only like-for-like timings: the run's own interleaved before/after pair when its "before"
    model is the reference, else both recorded latencies when batch, device and threads agree."""
    if run.run_id == reference.run_id:
        return 1.0, "the reference itself"
    if run.before_run_id == reference.run_id and run.latency_ms_before and run.latency_ms:
        return run.latency_ms_before / run.latency_ms, f"measured together, batch {run.latency_batch_size}, {run.latency_runtime or 'torch eager'}"
    same_setup = (run.latency_batch_size, run.latency_device, run.latency_threads, run.latency_runtime) == (
        reference.latency_batch_size,
        reference.latency_device,
        reference.latency_threads,
        reference.latency_runtime,
    )
    if same_setup and run.latency_ms and reference.latency_ms:
        return reference.latency_ms / run.latency_ms, f"recorded separately, batch {run.latency_batch_size}, {run.latency_runtime or 'torch eager'}"
    return None, ""


def pick_reference(runs: list[RunSummary], preferred_id: int | None = None) -> RunSummary | None:
    """The run to compare against: `preferred_id` when present, else the newest baseline (train run)
    among `runs`, else the oldest run."""
    by_id = {run.run_id: run for run in runs}
    if preferred_id is not None and preferred_id in by_id:
        return by_id[preferred_id]
    trained = [run for run in runs if run.technique == "train"]
    if trained:
        return max(trained, key=lambda run: run.run_id)
    return min(runs, key=lambda run: run.run_id) if runs else None


TABLE_COLUMNS = (
    "run_id",
    "created",
    "technique",
    "dataset",
    "model",
    "architecture",
    "architecture_group",
    "parent_id",
    "pinned",
    "accuracy_percent",
    "size_bytes",
    "size_measure",
    "dense_size_bytes",
    "compression_ratio",
    "params",
    "nonzero_params",
    "macs",
    "latency_ms",
    "latency_batch_size",
    "latency_device",
    "latency_threads",
    "speedup",
    "speedup_basis",
    "accuracy_change_points",
    "sweep_id",
    "params_json",
)


def table_records(rows: list[ComparisonRow]) -> list[dict]:
    """Flat records in TABLE_COLUMNS order: the page's table, the CSV and the report share them."""
    records = []
    for row in rows:
        run = row.run
        records.append(
            {
                "run_id": run.run_id,
                "created": run.created,
                "technique": run.technique,
                "dataset": run.dataset,
                "model": run.model,
                "architecture": run.architecture_label,  # "resnet18 · torchvision"
                "architecture_group": run.architecture_group,
                "parent_id": run.parent_id,
                "pinned": run.pinned,
                "accuracy_percent": None if run.accuracy is None else round(100.0 * run.accuracy, 2),
                "size_bytes": run.size_bytes,
                "size_measure": run.size_measure,
                "dense_size_bytes": run.dense_size_bytes,
                "compression_ratio": None if row.compression_ratio is None else round(row.compression_ratio, 2),
                "params": run.params,
                "nonzero_params": run.nonzero_params,
                "macs": run.macs,
                "latency_ms": None if run.latency_ms is None else round(run.latency_ms, 3),
                "latency_batch_size": run.latency_batch_size,
                "latency_device": run.latency_device,
                "latency_threads": run.latency_threads,
                "speedup": None if row.speedup is None else round(row.speedup, 2),
                "speedup_basis": row.speedup_basis,
                "accuracy_change_points": None if row.accuracy_change_points is None else round(row.accuracy_change_points, 2),
                "sweep_id": sweep_id_of(run.run_params),
                "params_json": json.dumps(run.run_params, sort_keys=True, default=str),
            }
        )
    return records


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value

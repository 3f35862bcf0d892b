"""One comparable summary per recorded run, whatever technique recorded it, and the side-by-side
table of chosen runs against a reference (the baseline, or a pinned run).

Every run recorded through core.record carries the same headline (core.result), so its summary is
read straight from those keys; runs from before the technique contract are read by
core.compare.legacy. The same run shows the same numbers on the page, in the CSV and in the report.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

from core.compare.legacy import summarize_legacy
from core.history import RunRecord

@dataclass
class RunSummary:
    run_id: int
    technique: str
    dataset: str
    model: str
    parent_id: int | None
    pinned: bool
    created_at: float
    accuracy: float | None
    size_bytes: int | None  # the smallest honest artifact size recorded
    size_measure: str  # which recorded measure gave size_bytes
    dense_size_bytes: int | None
    params: int | None
    nonzero_params: int | None
    macs: int | None
    latency_ms: float | None
    latency_batch_size: int | None
    latency_device: str | None
    latency_threads: int | None
    latency_runtime: str  # the runtime the latency was measured in ("torch eager", "torch.compile (inductor)")
    latency_ms_single: float | None  # one image; None for runs recorded before the one latency protocol
    latency_ms_before: float | None  # the input model's latency, measured alongside
    accuracy_before: float | None  # the input model's accuracy on the same evaluation images
    before_run_id: int | None  # the run those "before" figures were measured on
    eval_images: int | None
    run_params: dict = field(default_factory=dict)
    artifact_path: str | None = None
    pipeline_steps: list[dict] = field(default_factory=list)  # a pipeline run's model after each step

    @property
    def label(self) -> str:
        return f"#{self.run_id} {self.technique}"

    @property
    def latency_ms_per_image(self) -> float | None:
        if self.latency_ms is None or not self.latency_batch_size:
            return None
        return self.latency_ms / self.latency_batch_size

    @property
    def created(self) -> str:
        return dt.datetime.fromtimestamp(self.created_at).strftime("%Y-%m-%d %H:%M:%S")

    def as_dict(self) -> dict:
        return asdict(self)


def run_identity(run: RunRecord) -> dict:
    """The fields of a summary that come from the history row itself, not from its metrics."""
    return {"run_id": run.id, "technique": run.technique, "dataset": run.dataset, "model": run.model, "parent_id": run.parent_id, "pinned": run.pinned, "created_at": run.created_at}


def summarize(run: RunRecord) -> RunSummary:
    """The run's figures: its headline (core.result), or, for a run recorded before the technique
    contract, what core.compare.legacy reads from its old metric names."""
    metrics = run.metrics
    if metrics.get("headline_version") is None:
        return summarize_legacy(run)
    after = "" if run.technique == "train" else "_after"  # a training run has no "before"
    before = "" if run.technique == "train" else "_before"
    return RunSummary(
        **run_identity(run),
        accuracy=_float(metrics.get("accuracy" + after)),
        size_bytes=_int(metrics.get("size_bytes" + after)),
        size_measure=str(metrics.get("size_measure", "")),
        dense_size_bytes=_int(metrics.get("size_bytes")) if run.technique == "train" else None,
        params=_int(metrics.get("params" + after)),
        nonzero_params=_int(metrics.get("nonzero_params" + after)),
        macs=_int(metrics.get("macs" + after)),
        latency_ms=_float(metrics.get("latency_ms" + after)),
        latency_batch_size=_int(metrics.get("latency_batch_size")),
        latency_device=metrics.get("latency_device"),
        latency_threads=_int(metrics.get("latency_threads")),
        latency_runtime=str(metrics.get("latency_runtime", "")),
        latency_ms_single=_float(metrics.get("latency_ms_single" + after)),
        latency_ms_before=None if run.technique == "train" else _float(metrics.get("latency_ms" + before)),
        accuracy_before=None if run.technique == "train" else _float(metrics.get("accuracy" + before)),
        before_run_id=_int(metrics.get("before_run_id", run.parent_id)),
        eval_images=_int(metrics.get("eval_images")),
        run_params=run.params,
        artifact_path=run.artifact_path,
        pipeline_steps=_steps(metrics),
    )


def _steps(metrics: dict) -> list[dict]:
    steps = (metrics.get("details") or {}).get("steps") if isinstance(metrics.get("details"), dict) else None
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


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
    same_setup = (run.latency_batch_size, run.latency_device, run.latency_threads, run.latency_runtime) == (reference.latency_batch_size, reference.latency_device, reference.latency_threads, reference.latency_runtime)
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
    "run_id", "created", "technique", "dataset", "model", "parent_id", "pinned", "accuracy_percent", "size_bytes", "size_measure",
    "dense_size_bytes", "compression_ratio", "params", "nonzero_params", "macs", "latency_ms", "latency_batch_size",
    "latency_device", "latency_threads", "speedup", "speedup_basis", "accuracy_change_points", "sweep_id", "params_json",
)


def table_records(rows: list[ComparisonRow]) -> list[dict]:
    """Flat records in TABLE_COLUMNS order: the page's table, the CSV and the report share them."""
    records = []
    for row in rows:
        run = row.run
        records.append({
            "run_id": run.run_id,
            "created": run.created,
            "technique": run.technique,
            "dataset": run.dataset,
            "model": run.model,
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
        })
    return records


def sweep_id_of(params: dict) -> str | None:
    """The sweep a run was a trial of (core.sweep records params["sweep"]["id"]), else None."""
    sweep = params.get("sweep") if isinstance(params, dict) else None
    return sweep.get("id") if isinstance(sweep, dict) and isinstance(sweep.get("id"), str) else None


def _float(value) -> float | None:
    return float(value) if _number(value) else None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _int(value) -> int | None:
    return int(value) if _number(value) else None

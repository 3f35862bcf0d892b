"""How a recorded run reads: one comparable summary per history row, whatever technique recorded it.

Every run recorded through core.contract.record carries the same headline (core.contract.result),
so its summary is read straight from those keys; runs from before the technique contract are read
by core.contract.legacy_runs. The same run shows the same numbers on the page, in the CSV and in
the report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from core.contract.legacy_runs import legacy_figures
from core.foundation.history import RunRecord
from core.foundation.models.names import ARCHITECTURE_BY_NAME

NOT_IN_REGISTRY = "not in this version's registry"  # the group shown for a recorded name the registry no longer has


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
    architecture: str = ""  # the registry name of the run's final model, as recorded (architecture_of)
    architecture_group: str = ""  # its group in core.foundation.models.names ("the lab's own", "torchvision"), or NOT_IN_REGISTRY

    @property
    def architecture_label(self) -> str:
        """ "mobilenet_v2_x0_5 · torchvision": the name and its group, as the table and the report show it."""
        if not self.architecture:  # a summary made without one (tests, old callers): its model names it
            return architecture_label(self.model)
        return architecture_label(self.architecture, self.architecture_group)

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
    architecture = architecture_of(run)
    return {
        "run_id": run.id,
        "technique": run.technique,
        "dataset": run.dataset,
        "model": run.model,
        "parent_id": run.parent_id,
        "pinned": run.pinned,
        "created_at": run.created_at,
        "architecture": architecture,
        "architecture_group": architecture_group(architecture),
    }


def architecture_of(run: RunRecord) -> str:
    """The architecture of the run's final model, from what the run recorded: the history row's
    model (every writer, old and new, records the model it produced there: a distillation's
    student, a pipeline's model after its last step), else the recorded configuration's name of it
    (a baseline's "model", a distillation's "student", a pipeline's distill step's "student")."""
    if isinstance(run.model, str) and run.model.strip():
        return run.model.strip()
    params = run.params if isinstance(run.params, dict) else {}
    distill = params.get("distill") if isinstance(params.get("distill"), dict) else {}
    for value in (params.get("student"), distill.get("student"), params.get("model")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def architecture_group(name: str) -> str:
    """The registry's group of `name`, or NOT_IN_REGISTRY for a name it does not have (a run recorded by another version)."""
    architecture = ARCHITECTURE_BY_NAME.get(name)
    return architecture.group if architecture is not None else NOT_IN_REGISTRY


def architecture_label(name: str, group: str | None = None) -> str:
    """ "resnet18 · torchvision"; "—" when nothing was recorded."""
    if not name:
        return "—"
    return f"{name} · {group or architecture_group(name)}"


def summarize(run: RunRecord) -> RunSummary:
    """The run's figures: its headline (core.contract.result), or, for a run recorded before the technique
    contract, what core.contract.legacy_runs reads from its old metric names."""
    metrics = run.metrics
    if metrics.get("headline_version") is None:
        return RunSummary(**run_identity(run), **legacy_figures(run))
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

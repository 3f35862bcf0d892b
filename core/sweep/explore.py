"""What the Explore page shows around a sweep, computed here so the page stays layout only:
the `--grid` texts a form makes, the equivalent CLI command, the trial counts before a start,
the recorded trials of a sweep (found by its id in the history), the trial table's rows, the
source's point on the frontier chart and a run's artifact as a download.

    texts = [range_axis("prune.amount", 0.3, 0.9, 0.3), list_axis("prune.granularity", ["unstructured"])]
    preview = preview_sweep(source, spec, workspace.history_db)   # planned, done, refused, to_run
    outcomes = recorded_outcomes(source, spec, workspace.history_db)
"""

from __future__ import annotations

import io
import shlex
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.workspace import Workspace
from core.sweep import store
from core.sweep.frontier import TrialOutcome
from core.sweep.grid import GridAxis, format_value, parse_grid
from core.sweep.run import SweepSpec, earlier_outcomes, plan_sweep, sweep_id_for
from core.sweep.search import candidates

# The history's "before" figure of each objective (every trial of a sweep shares its source).
SOURCE_METRICS = {"size": "size_bytes_before", "macs": "macs_before"}  # latency: relative to the source, so the source is at 1


# The Explore form's starting values and bounds: pages/explore.py's widgets start from them, and a
# share link's grid (ui/share/explore.py) falls back to them. The prune lists start at each option's default.
FORM_VARY = {"prune": True, "quantize": False, "distill": False}  # the "Vary ..." checkboxes
FORM_AMOUNT_RANGE = (0.3, 0.9, 0.3)  # amount from, to (inclusive), step
AMOUNT_STEP_MIN = 0.01  # the form's finest amount step (its amounts show two decimals)
AMOUNT_MAX_MARGIN = 0.01  # PruneConfig.amount is below its `below` bound (1.0: everything pruned)
FORM_QUANTIZE_MODE = "auto"  # no quantize.mode axis: 8 bits static, fewer simulated
FORM_QUANTIZE_BITS = (8, 4)
FORM_TEMPERATURES = "2, 4"
FORM_ALPHAS = "0.5"
FORM_RANDOM_COUNT = 4
MAX_RANDOM_COUNT = 10_000
MAX_CPUS_PER_TRIAL = 256


def amount_bounds() -> tuple[float, float]:
    """The form's amount bounds: the option's minimum, and its maximum or the last step below its exclusive bound."""
    from core.contract.options import spec
    from core.pruning.config import PruneConfig

    amount = spec(PruneConfig, "amount")
    top = amount.maximum if amount.below is None else amount.below - AMOUNT_MAX_MARGIN
    return float(amount.minimum), round(float(top), 4)


def axis_as_range(axis: GridAxis) -> tuple[float, float, float | None] | None:
    """A numeric axis as the form's from, to and step (step None for one value), or None when its
    values are not evenly spaced upwards: checked by parsing range_axis's text back to the same values."""
    values = axis.values
    if len(values) == 1:
        return values[0], values[0], None
    step = round(values[1] - values[0], 10)
    if step <= 0 or parse_grid([range_axis(axis.name, values[0], values[-1], step)]).axes[0].values != values:
        return None
    return values[0], values[-1], step


def range_axis(name: str, start: float, stop: float, step: float) -> str:
    """`name=start:stop:step` (one value when start equals stop)."""
    if start == stop:
        return f"{name}={format_value(start)}"
    return f"{name}={format_value(start)}:{format_value(stop)}:{format_value(step)}"


def list_axis(name: str, values) -> str | None:
    """`name=a,b,c`, or None when nothing is chosen (the parameter keeps its default)."""
    values = list(values)
    if not values:
        return None
    return f"{name}={','.join(format_value(value) for value in values)}"


def parse_number_list(text: str, kind: type = float) -> list:
    """ "2, 4, 8" -> [2.0, 4.0, 8.0]; a UserError naming the bad entry."""
    values = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            number = float(part)
        except ValueError:
            raise UserError(f"'{part}' in '{text}' is not a number") from None
        if kind is int:
            if number != int(number):
                raise UserError(f"'{part}' in '{text}' is not a whole number")
            number = int(number)
        if number not in values:
            values.append(number)
    return values


def cli_command(spec: SweepSpec, dataset: str, model: str, from_run: int | None = None, address: str | None = None, cpus_per_trial: int = 1, grid_texts: list[str] | None = None) -> str:
    """The `python -m core sweep ...` command that runs the same sweep (`grid_texts` as typed,
    ranges kept; they parse to spec.grid)."""
    parts = ["python", "-m", "core", "sweep", "--dataset", dataset, "--model", model]
    if from_run is not None:
        parts += ["--from-run", str(from_run)]
    for text in grid_texts or spec.grid.as_texts():
        parts += ["--grid", text]
    parts += ["--search", spec.search.as_text(), "--objective", spec.objective, "--budget-points", format_value(float(spec.budget_points)), "--seed", str(spec.seed)]
    if address:
        parts += ["--address", address]
    if cpus_per_trial != 1:
        parts += ["--cpus-per-trial", str(cpus_per_trial)]
    return " ".join(shlex.quote(part) for part in parts)


@dataclass(frozen=True)
class SweepPreview:
    sweep_id: str
    technique: str  # the plan's: prune, quantize, distill, or pipeline when the grid names several
    grid_size: int
    planned: int  # the points this search may run
    done: int  # of those, already in the history (finished or failed)
    refused: int  # combinations the configs refuse (failed without a worker)
    to_run: int  # what a start would send to Ray at most

    def sentence(self) -> str:
        sampled = f" (of the grid's {self.grid_size})" if self.planned != self.grid_size else ""
        return f"{self.planned} trial(s) planned{sampled}: {self.done} already in the history, {self.refused} refused by the configs, {self.to_run} to run."


def preview_sweep(source: ModelSource, spec: SweepSpec, db_path: Path) -> SweepPreview:
    """The trial counts a start would see, before anything starts (no Ray, no model work)."""
    plans = plan_sweep(source, spec)
    chosen = candidates(plans, spec.search, spec.seed)
    sweep_id = sweep_id_for(source, spec.grid, spec.seed)
    recorded = set(store.finished_trials(db_path, sweep_id)) | set(store.failed_trials(db_path, sweep_id))
    done = sum(1 for plan in chosen if plan.key in recorded)
    refused = sum(1 for plan in chosen if plan.error is not None)
    to_run = sum(1 for plan in chosen if plan.key not in recorded and plan.error is None)
    technique = chosen[0].technique if chosen else (plans[0].technique if plans else "prune")
    return SweepPreview(sweep_id, technique, spec.grid.size, len(chosen), done, refused, to_run)


def recorded_outcomes(source: ModelSource, spec: SweepSpec, db_path: Path) -> list[TrialOutcome]:
    """The sweep's finished and failed trials from the history, in grid order (what a fresh visit shows)."""
    plans = candidates(plan_sweep(source, spec), spec.search, spec.seed)
    found = earlier_outcomes(db_path, sweep_id_for(source, spec.grid, spec.seed), plans)
    return [found[plan.key] for plan in plans if plan.key in found]


def source_point(db_path: Path, outcomes: list[TrialOutcome], objective: str) -> tuple[float | None, float | None]:
    """The source's (cost, accuracy) as its trials measured it (their "before" figures)."""
    for outcome in outcomes:
        if outcome.status != "ok" or outcome.run_id is None:
            continue
        run = history.get_run(db_path, outcome.run_id)
        if run is None:
            continue
        cost = 1.0 if objective == "latency" else run.metrics.get(SOURCE_METRICS[objective])
        return cost, run.metrics.get("accuracy_before")
    return None, None


def trial_rows(outcomes: list[TrialOutcome]) -> list[dict]:
    """One row per trial for a sortable table: numbers stay numbers (percent and points)."""
    rows = []
    for outcome in outcomes:
        rows.append(
            {
                "run": outcome.run_id,
                "status": outcome.status,
                "params": ", ".join(f"{name}={format_value(value)}" for name, value in outcome.point.items()),
                "accuracy %": None if outcome.accuracy is None else round(100 * outcome.accuracy, 2),
                "change (points)": None if outcome.accuracy_change_points is None else round(outcome.accuracy_change_points, 2),
                "size (bytes)": outcome.size_bytes,
                "× smaller": None if outcome.compression_ratio is None else round(outcome.compression_ratio, 2),
                "latency (ms)": None if outcome.latency_ms is None else round(outcome.latency_ms, 3),
                "MACs": outcome.macs,
                "error": outcome.error or "",
            }
        )
    return rows


def run_download_name(run: RunRecord, workspace: Workspace) -> str:
    """The file name run_download's bytes go by."""
    path = workspace.resolve_artifact(run.artifact_path)
    if path is not None and path.is_file():
        return f"model-run-{run.id}{path.suffix}"
    return f"checkpoint-run-{run.id}.zip" if run.technique == "quantize" else f"model-run-{run.id}.zip"


def run_download(run: RunRecord, workspace: Workspace, dataset: Dataset | None = None) -> bytes:
    """A run's artifact to download: the model zip where the compare page makes one
    (core.contract.artifact); a quantize run's checkpoint folder zipped as it is."""
    from core.contract.artifact import write_model_zip
    from core.contract.run_models import package_for_run

    path = workspace.resolve_artifact(run.artifact_path)
    if path is None or not path.exists():
        raise UserError(f"run #{run.id} has no saved model at {path or 'any path'}; it may have been deleted")
    if path.is_file():
        return path.read_bytes()
    if run.technique != "quantize":
        return write_model_zip(package_for_run(run, workspace, dataset))[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


def expected_slots(address: str | None, cpus_per_trial: int, local_cpus: int | None = None) -> int | None:
    """Trials at a time on a local cluster (`local_cpus`, default this machine's CPUs); None for a
    remote cluster (known once connected)."""
    import os

    from core.sweep.engine import resolve_address

    if resolve_address(address) is not None:
        return None
    return max(1, (local_cpus or os.cpu_count() or 1) // max(1, cpus_per_trial))

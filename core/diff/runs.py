"""Two recorded runs (or a live preview and its source), compared example by example and
layer by layer: the one function the pages, `python -m core diff` and the report call.

    comparison = diff_runs(workspace, run_a=7)           # against its parent
    comparison = diff_runs(workspace, run_a=7, run_b=3)
    report = layer_errors_against_source(source, pruned_preview_package(source, pruned))   # a live preview
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.contract.artifact import package_from_model
from core.contract.predictions import package_for_any_run, run_predictions
from core.contract.source import recorded_dataset
from core.diff.layers import LayerErrorReport, compare_packages
from core.diff.pairs import PredictionDiff, diff_predictions
from core.foundation import history
from core.foundation.data.datasets import Dataset, DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.workspace import Workspace


@dataclass
class RunDiff:
    predictions: PredictionDiff
    layers: LayerErrorReport | None
    layers_reason: str  # why there are no layer errors ("" when there are)
    dataset: Dataset  # the test images the galleries show
    from_cache: dict[str, bool]  # {"a": ..., "b": ...}: whether each side's predictions were cached
    seconds: float

    def as_dict(self) -> dict:
        return {
            **self.predictions.as_dict(),
            "layers": self.layers.as_dict()["layers"] if self.layers else None,
            "layers_note": self.layers.note if self.layers else self.layers_reason,
            "from_cache": self.from_cache,
            "seconds": self.seconds,
            "class_names": self.predictions.class_names,
        }


def run_label(run: RunRecord) -> str:
    return f"run #{run.id} ({run.technique})"


def diff_runs(workspace: Workspace, run_a: int, run_b: int | None = None, with_layers: bool = True) -> RunDiff:
    """Run A against run B (default: A's parent), on their common test set."""
    started = time.perf_counter()
    record_a = _run(workspace, run_a)
    if run_b is None:
        if record_a.parent_id is None:
            raise UserError(f"run #{run_a} has no parent to compare with; name the other run with --run")
        run_b = record_a.parent_id
    record_b = _run(workspace, run_b)
    datasets = _datasets(workspace, record_a, record_b)
    predictions_a = run_predictions(workspace, record_a.id, datasets[0])
    predictions_b = run_predictions(workspace, record_b.id, datasets[1])
    if predictions_a.test_set_id != predictions_b.test_set_id:
        raise UserError(f"runs #{record_a.id} ({record_a.dataset}) and #{record_b.id} ({record_b.dataset}) were evaluated on different test sets; compare runs made on the same test set")
    diff = diff_predictions(predictions_a.logits, predictions_b.logits, predictions_a.labels, predictions_a.class_names, run_label(record_a), run_label(record_b), record_a.id, record_b.id)
    layers, reason = None, "not asked for"
    if with_layers:
        try:
            layers = compare_packages(
                package_for_any_run(workspace, record_b, datasets[1]), package_for_any_run(workspace, record_a, datasets[0]), datasets[0], run_label(record_b), run_label(record_a)
            )
            reason = ""
        except UserError as error:
            reason = str(error)
    return RunDiff(diff, layers, reason, datasets[0], {"a": predictions_a.from_cache, "b": predictions_b.from_cache}, time.perf_counter() - started)


def layer_errors_against_source(source, package, label: str = "the result") -> LayerErrorReport:
    """Layer errors of a model made from `source` (as a package: core.contract.artifact.package_from_model
    for a pruned model with its lineage's removed channels, core.contract.run_models.package_from_quantized
    for a quantization) against the source: what the pages draw for a live preview."""
    reference = package_from_model(source.model, source.architecture, source.dataset, {}, source.pruned_channels)
    source_label = f"run #{source.run_id} ({source.technique})" if source.run_id is not None else "the source"
    return compare_packages(reference, package, source.dataset, source_label, label)


def pruned_preview_package(source, pruned):
    """A pruning preview (core.pruning.masks.PrunedModels) as a package: the channel-removed copy
    with every channel its lineage removed, else the masked copy, which keeps the source's shapes."""
    from core.pruning.run import lineage_removed_channels

    model = pruned.removed if pruned.removed is not None else pruned.masked
    return package_from_model(model, source.architecture, source.dataset, {}, lineage_removed_channels(source, pruned))


def _run(workspace: Workspace, run_id: int) -> RunRecord:
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        raise UserError(f"no run #{run_id} in {workspace.history_db}; `python -m core runs` lists them")
    return run


def _datasets(workspace: Workspace, *runs: RunRecord) -> list[Dataset]:
    load = dataset_loader(workspace)
    return [load(run) for run in runs]


def dataset_loader(workspace: Workspace):
    """A function from a run to its dataset as its lineage recorded it, loading each distinct spec
    once (never downloading): comparing many runs of one baseline reads the data once."""
    by_id = {run.id: run for run in history.list_runs(workspace.history_db)}
    loaded: dict[str, Dataset] = {}

    def load(run: RunRecord) -> Dataset:
        spec = recorded_dataset(by_id.get(run.id, run), by_id)
        key = repr(sorted(spec.items()))
        if key not in loaded:
            loaded[key] = load_dataset(DatasetSpec(**spec), workspace, allow_download=False)
        return loaded[key]

    return load

"""Pruning you can move a slider over: prune a copy of the source and measure it on the quick
evaluator's subset, without training or saving. Also the per-layer sensitivity scan and the
one-shot accuracy sweep. Each function takes a model source (core.contract.source.ModelSource, or
anything with its model / fresh_copy() / example_input())."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from torch import nn

from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_macs, count_nonzero_parameters, count_parameters
from core.foundation.progress import Progress, ProgressCallback, StopFlag, no_progress
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.pruning.config import PruneConfig
from core.pruning.encoding import measure_sizes
from core.pruning.masks import PrunedModels, apply_pruning, prunable_layers
from core.pruning.stats import global_sparsity, output_channels, sparsity_per_layer

SCAN_AMOUNTS = tuple(round(0.1 * step, 1) for step in range(10))  # 0 to 90%


class PruningStopped(UserError):
    """Pruning work was stopped by the user; nothing was saved."""


@dataclass
class PruneSnapshot:
    """One pruned model, measured (everything but latency): what the page redraws on a slider move."""

    accuracy: float
    eval_images: int
    sparsity: float  # zero weights over every Conv2d/Linear layer of the source's architecture
    sparsity_per_layer: dict[str, float]
    params: int  # of the final model: physically smaller after removal, else the dense count
    nonzero_params: int
    macs: int
    size_bytes_dense: int
    size_bytes_bitmask: int
    size_bytes_csr: int
    size_bytes_sparse: int
    size_bytes_gzip: int
    channels_before: dict[str, int]
    channels_after: dict[str, int]  # output channels each layer still computes (after removal)

    def as_dict(self) -> dict:
        return asdict(self)


def source_layers(source, granularity: str) -> list[str]:
    return prunable_layers(source.model, granularity, source.example_input())


def prune_copy(source, config: PruneConfig) -> PrunedModels:
    """Prune a fresh copy of the source (the source itself is never changed)."""
    return apply_pruning(source.fresh_copy(), config.pruning_only(), source.example_input())


def final_model(pruned: PrunedModels) -> nn.Module:
    return pruned.removed if pruned.removed is not None else pruned.masked


def measure_snapshot(pruned: PrunedModels, source, accuracy: float, eval_images: int, model: nn.Module | None = None, saved_file_bytes: bytes | None = None) -> PruneSnapshot:
    """Measure `model` (default: the smaller model after removal, else the masked one), whose accuracy the caller measured."""
    final = model if model is not None else final_model(pruned)
    sizes = measure_sizes(final, saved_file_bytes)
    return PruneSnapshot(
        accuracy=accuracy,
        eval_images=eval_images,
        sparsity=global_sparsity(pruned.masked),
        sparsity_per_layer=sparsity_per_layer(pruned.masked),
        params=count_parameters(final),
        nonzero_params=count_nonzero_parameters(final),
        macs=count_macs(final, source.example_input()),
        channels_before=output_channels(source.model),
        channels_after=output_channels(final),
        **sizes.as_dict(),
    )


def preview_pruning(source, config: PruneConfig, evaluator: QuickEvaluator) -> tuple[PrunedModels, PruneSnapshot]:
    """Prune and measure without training: fast enough to redraw on every slider move."""
    pruned = prune_copy(source, config)
    return pruned, measure_snapshot(pruned, source, evaluator.accuracy(pruned.fastest_equivalent), evaluator.images)


@dataclass
class SensitivityScan:
    granularity: str
    method: str
    amounts: list[float]
    accuracy_by_layer: dict[str, list[float | None]]  # None where that amount is impossible for the layer
    baseline_accuracy: float
    eval_images: int

    def amounts_within(self, max_drop: float) -> dict[str, float]:
        """Per layer, the largest scanned amount up to which accuracy stays within `max_drop`
        (a fraction, 0.01 = 1 point) of the source: per-layer amounts for an informed prune."""
        chosen = {}
        for layer, accuracies in self.accuracy_by_layer.items():
            best = 0.0
            for amount, accuracy in zip(self.amounts, accuracies):
                if accuracy is None or accuracy < self.baseline_accuracy - max_drop:
                    break
                best = amount
            chosen[layer] = best
        return chosen


def sensitivity_scan(
    source,
    evaluator: QuickEvaluator,
    granularity: str = "unstructured",
    method: str = "l1",
    amounts: tuple[float, ...] = SCAN_AMOUNTS,
    layers: list[str] | None = None,
    progress: ProgressCallback = no_progress,
    stop: StopFlag | None = None,
) -> SensitivityScan:
    """Prune one layer at a time at each amount (the rest untouched) and measure accuracy."""
    PruneConfig(method=method, granularity=granularity).validate()
    layers = layers or source_layers(source, granularity)
    baseline_accuracy = evaluator.accuracy(source.model)
    accuracy_by_layer: dict[str, list[float | None]] = {}
    total, done = len(layers) * len(amounts), 0
    for layer in layers:
        accuracy_by_layer[layer] = []
        for amount in amounts:
            if stop is not None and stop.is_set():
                raise PruningStopped("the sensitivity scan was stopped")
            try:
                pruned = prune_copy(source, PruneConfig(method=method, granularity=granularity, amount=amount, scope="layer", layers=(layer,)))
                accuracy_by_layer[layer].append(evaluator.accuracy(pruned.fastest_equivalent))
            except UserError:
                accuracy_by_layer[layer].append(None)  # e.g. a layer too narrow to lose that many channels
            done += 1
            progress(Progress("scan", done, total, f"{layer} at {amount:.0%}"))
    return SensitivityScan(granularity, method, list(amounts), accuracy_by_layer, baseline_accuracy, evaluator.images)


def accuracy_sweep(source, config: PruneConfig, evaluator: QuickEvaluator, amounts: tuple[float, ...] = SCAN_AMOUNTS, progress: ProgressCallback = no_progress) -> list[tuple[float, float]]:
    """(global sparsity, accuracy) of one-shot pruning at each amount, no fine-tuning."""
    points = []
    for index, amount in enumerate(amounts):
        try:
            pruned = prune_copy(source, replace(config, amount=amount, layer_amounts=(), remove=False))
        except UserError:
            continue  # an amount this model cannot take (a layer would lose every channel)
        points.append((global_sparsity(pruned.masked), evaluator.accuracy(pruned.fastest_equivalent)))
        progress(Progress("sweep", index + 1, len(amounts), f"amount {amount:.0%}"))
    return points

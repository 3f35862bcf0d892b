"""The pruning experiment: prune a copy of the baseline, optionally fine-tune (one-shot or an
iterative schedule), measure what it buys, save it, and record the run. Also the quick preview
the page redraws on every slider move, the sensitivity scan and the accuracy sweep."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from core import history
from core.baseline import Baseline
from core.datasets import Dataset, class_balanced_subset
from core.errors import UserError
from core.metrics import Latency, count_macs, count_nonzero_parameters, count_parameters, effective_tensors, measure_latency
from core.models import build_model
from core.progress import Progress, ProgressCallback, StopFlag, no_progress
from core.pruning.config import PruneConfig, ScheduleConfig
from core.pruning.encoding import SizeReport, measure_sizes
from core.pruning.masks import PrunedModels, apply_pruning, prunable_layers, remove_channels
from core.pruning.stats import global_sparsity, layer_shapes, output_channels, sparsity_per_layer
from core.training import EpochRecord, TrainRecipe, evaluate, evaluation_from_logits, train_model
from core.workspace import Workspace, config_key, load_checkpoint, save_checkpoint

EVAL_SUBSET_SIZE = 2000  # class-balanced test images for interactive evaluation
QUICK_EVAL_BATCH_SIZE = 250
LATENCY_BATCH_SIZE = 256
SCAN_AMOUNTS = tuple(round(0.1 * step, 1) for step in range(10))  # 0 to 90%
FINETUNE_LR_FACTOR = 0.3  # fine-tuning starts from trained weights: a gentler peak than training from scratch


class PruningStopped(UserError):
    """Fine-tuning was stopped by the user; nothing was saved."""


@dataclass
class PruneSnapshot:
    """One pruned model, measured (everything but latency): what the page redraws on a slider move."""

    accuracy: float
    eval_images: int
    sparsity: float  # zero weights over every Conv2d/Linear layer of the original architecture
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


@dataclass
class SchedulePoint:
    step: int
    amount: float
    sparsity: float
    accuracy_pruned: float  # right after pruning this step
    accuracy_finetuned: float | None  # after this step's fine-tuning


@dataclass
class PruneReport(PruneSnapshot):
    config: dict = field(default_factory=dict)
    schedule: dict = field(default_factory=dict)
    accuracy_before: float = 0.0
    accuracy_oneshot: float = 0.0  # pruned to the target at once, before any fine-tuning
    accuracy_after: float = 0.0  # the final model (after fine-tuning when asked)
    params_before: int = 0
    macs_before: int = 0
    size_bytes_dense_before: int = 0
    latency_ms_before: float = 0.0
    latency_ms_masked: float = 0.0
    latency_ms_after: float = 0.0  # the final model: the physically smaller one after removal
    latency_batch_size: int = 0
    latency_device: str = ""
    latency_threads: int = 0
    layer_shapes_before: list[dict] = field(default_factory=list)
    layer_shapes_after: list[dict] = field(default_factory=list)
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)
    finetune_history: list[dict] = field(default_factory=list)
    schedule_points: list[dict] = field(default_factory=list)
    finetune_seconds: float = 0.0
    artifact_path: str = ""
    run_id: int | None = None

    def as_json(self) -> dict:
        """The CLI's JSON and the run history's metrics (everything but the per-channel index lists)."""
        values = asdict(self)
        values["pruned_channel_counts"] = {name: len(indices) for name, indices in values.pop("pruned_channels").items()}
        return values


def evaluation_subset(dataset: Dataset, size: int = EVAL_SUBSET_SIZE, seed: int = 0) -> Dataset:
    """The dataset with its test split cut to `size` class-balanced images: quick, repeatable evaluation."""
    return replace(dataset, test=class_balanced_subset(dataset.test, size, dataset.num_classes, seed, "test"))


class QuickEvaluator:
    """Accuracy on a class-balanced test subset, with the images standardised once and kept on the
    device: what the page pays per slider move is the forward passes alone."""

    def __init__(self, dataset: Dataset, device: torch.device, size: int = EVAL_SUBSET_SIZE, seed: int = 0):
        self.dataset = evaluation_subset(dataset, size, seed)
        # Channels-last input lets oneDNN skip a layout reorder per conv: measured 2x faster on CPU, same outputs.
        self.inputs = self.dataset.normalize(self.dataset.test.images.to(device)).contiguous(memory_format=torch.channels_last)
        self.labels = self.dataset.test.labels

    @property
    def images(self) -> int:
        return len(self.labels)

    @torch.no_grad()
    def accuracy(self, model: nn.Module) -> float:
        model.eval()
        # Batches of 250 stay in the CPU cache; 1,000-image batches measured ~1.5x slower on 2 cores.
        logits = torch.cat([model(chunk).float().cpu() for chunk in self.inputs.split(QUICK_EVAL_BATCH_SIZE)])
        return evaluation_from_logits(logits, self.labels, self.dataset.num_classes).accuracy


def finetune_recipe(recipe: TrainRecipe, epochs: int) -> TrainRecipe:
    return replace(recipe, epochs=epochs, learning_rate=recipe.learning_rate * FINETUNE_LR_FACTOR)


def baseline_layers(baseline: Baseline, granularity: str) -> list[str]:
    return prunable_layers(baseline.model, granularity, baseline.example_input())


def prune_baseline(baseline: Baseline, config: PruneConfig) -> PrunedModels:
    """Prune a fresh copy of the baseline (the cached baseline itself is never changed)."""
    return apply_pruning(baseline.fresh_copy(), config, baseline.example_input())


def measure_snapshot(pruned: PrunedModels, baseline: Baseline, accuracy: float, eval_images: int, model: nn.Module | None = None, saved_file_bytes: bytes | None = None) -> PruneSnapshot:
    """Measure `model` (default: the smaller model after removal, else the masked one), whose accuracy the caller measured."""
    final = model if model is not None else (pruned.removed if pruned.removed is not None else pruned.masked)
    sizes = measure_sizes(final, saved_file_bytes)
    return PruneSnapshot(
        accuracy=accuracy,
        eval_images=eval_images,
        sparsity=global_sparsity(pruned.masked),
        sparsity_per_layer=sparsity_per_layer(pruned.masked),
        params=count_parameters(final),
        nonzero_params=count_nonzero_parameters(final),
        macs=count_macs(final, baseline.example_input()),
        channels_before=output_channels(baseline.model),
        channels_after=output_channels(final),
        **sizes.as_dict(),
    )


def preview_pruning(baseline: Baseline, config: PruneConfig, evaluator: QuickEvaluator) -> tuple[PrunedModels, PruneSnapshot]:
    """Prune and measure without training: fast enough to redraw on every slider move."""
    pruned = prune_baseline(baseline, config)
    return pruned, measure_snapshot(pruned, baseline, evaluator.accuracy(pruned.fastest_equivalent), evaluator.images)


def compare_latency(models: dict[str, nn.Module], example_input: torch.Tensor, batch_size: int = LATENCY_BATCH_SIZE, rounds: int = 3) -> dict[str, Latency]:
    """Latency of each model, measured in interleaved rounds (the fastest round's median wins), so
    a burst of load from other processes cannot favour whichever model happened to run last."""
    best: dict[str, Latency] = {}
    for _ in range(rounds):
        for name, model in models.items():
            latency = measure_latency(model, example_input, batch_size=batch_size)
            if name not in best or latency.latency_ms < best[name].latency_ms:
                best[name] = latency
    return best


def run_pruning(
    baseline: Baseline,
    config: PruneConfig,
    schedule: ScheduleConfig,
    workspace: Workspace,
    eval_dataset: Dataset | None = None,
    progress: ProgressCallback = no_progress,
    stop: StopFlag | None = None,
    latency_batch_size: int = LATENCY_BATCH_SIZE,
    latency_rounds: int = 3,
) -> tuple[nn.Module, PruneReport]:
    """The whole experiment, recorded in the run history; returns the final model and its report.
    `eval_dataset` (default: the baseline's full test split) measures every accuracy."""
    started_at = time.time()
    config.validate()
    schedule.validate()
    eval_dataset = eval_dataset or baseline.dataset
    example = baseline.example_input()
    oneshot = prune_baseline(baseline, config)  # first: a setting this model cannot take fails before any work
    progress(Progress("prune", 1, 1, "pruned a copy of the baseline"))
    accuracy_before = evaluate(baseline.model, eval_dataset, eval_dataset.test, baseline.device).accuracy
    accuracy_oneshot = evaluate(oneshot.masked, eval_dataset, eval_dataset.test, baseline.device).accuracy
    recipe = finetune_recipe(baseline.recipe, schedule.finetune_epochs)
    finetune_history: list[EpochRecord] = []
    finetune_seconds = 0.0
    points: list[SchedulePoint] = []

    # Training data is the baseline's; each epoch's test accuracy is measured on the evaluation split.
    train_dataset = replace(baseline.dataset, test=eval_dataset.test)

    def finetune(model: nn.Module, stage: str) -> float:
        nonlocal finetune_seconds
        result = train_model(model, train_dataset, recipe, baseline.device, baseline.config.seed, progress, stop, stage=stage)
        if result.stopped:
            raise PruningStopped("fine-tuning was stopped; nothing was saved")
        finetune_history.extend(result.history)
        finetune_seconds += result.train_seconds
        return result.history[-1].test_accuracy

    if schedule.iterative_steps == 1:
        pruned = oneshot
        final = pruned.removed if pruned.removed is not None else pruned.masked
        tuned = finetune(final, "finetune") if schedule.finetune_epochs else None
        points.append(SchedulePoint(1, config.amount, global_sparsity(pruned.masked), accuracy_oneshot, tuned))
    else:
        masked = baseline.fresh_copy()
        step_config = replace(config, remove=False)
        for step in range(1, schedule.iterative_steps + 1):
            fraction = schedule.fraction_at(step)
            pruned = apply_pruning(masked, step_config.scaled(fraction), example)
            accuracy_pruned = evaluate(masked, eval_dataset, eval_dataset.test, baseline.device).accuracy
            tuned = finetune(masked, f"finetune step {step}/{schedule.iterative_steps}")
            points.append(SchedulePoint(step, config.amount * fraction, global_sparsity(masked), accuracy_pruned, tuned))
        removed = remove_channels(masked, pruned.pruned_channels, example) if config.remove else None
        pruned = PrunedModels(masked, removed, pruned.pruned_channels, pruned.channels)
        final = removed if removed is not None else masked
    progress(Progress("measure", 0, 1, "measuring size and latency"))
    folder = _artifact_folder(baseline, config, schedule, workspace)
    weights_path = save_pruned(folder, final, baseline, config, schedule, pruned)
    accuracy_after = evaluate(final, eval_dataset, eval_dataset.test, baseline.device).accuracy
    snapshot = measure_snapshot(pruned, baseline, accuracy_after, len(eval_dataset.test), final, weights_path.read_bytes())
    latency_models = {"before": baseline.model, "masked": pruned.masked}
    if pruned.removed is not None:
        latency_models["removed"] = pruned.removed
    latencies = compare_latency(latency_models, example, latency_batch_size, latency_rounds)
    after = latencies.get("removed", latencies["masked"])
    report = PruneReport(
        **snapshot.as_dict(),
        config=config.as_dict(),
        schedule=schedule.as_dict(),
        accuracy_before=accuracy_before,
        accuracy_oneshot=accuracy_oneshot,
        accuracy_after=snapshot.accuracy,
        params_before=baseline.metrics.params,
        macs_before=baseline.metrics.macs,
        size_bytes_dense_before=baseline.metrics.size_bytes,
        latency_ms_before=latencies["before"].latency_ms,
        latency_ms_masked=latencies["masked"].latency_ms,
        latency_ms_after=after.latency_ms,
        latency_batch_size=latency_batch_size,
        latency_device=after.device,
        latency_threads=after.threads,
        layer_shapes_before=[shape.as_dict() for shape in layer_shapes(baseline.model)],
        layer_shapes_after=[shape.as_dict() for shape in layer_shapes(final)],
        pruned_channels=pruned.pruned_channels,
        finetune_history=[asdict(record) for record in finetune_history],
        schedule_points=[asdict(point) for point in points],
        finetune_seconds=finetune_seconds,
        artifact_path=str(folder),
    )
    report.run_id = history.record_run(
        workspace.history_db,
        technique="prune",
        dataset=baseline.config.dataset.name,
        model=baseline.config.model,
        params={**config.as_dict(), **schedule.as_dict(), "eval_images": snapshot.eval_images},
        metrics={key: value for key, value in report.as_json().items() if key not in ("config", "schedule", "artifact_path", "run_id")},
        parent_id=baseline.run_id,
        artifact_path=folder,
        started_at=started_at,
    )
    progress(Progress("measure", 1, 1, "done"))
    return final, report


def _artifact_folder(baseline: Baseline, config: PruneConfig, schedule: ScheduleConfig, workspace: Workspace) -> Path:
    key = config_key({"baseline": baseline.checkpoint.name, "config": config.as_dict(), "schedule": schedule.as_dict()})
    return workspace.checkpoint_dir / f"prune-{baseline.config.model}-{key}"


def save_pruned(folder: Path, model: nn.Module, baseline: Baseline, config: PruneConfig, schedule: ScheduleConfig, pruned: PrunedModels) -> Path:
    """Save the effective weights as safetensors; a physically smaller model also records which
    channels were cut and its layer shapes, so `load_pruned_model` can rebuild it."""
    dataset = baseline.dataset
    meta = {
        "technique": "prune",
        "architecture": baseline.config.model,
        "input_shape": [dataset.channels, dataset.image_size, dataset.image_size],
        "num_classes": dataset.num_classes,
        "baseline_checkpoint": str(baseline.checkpoint),
        "config": config.as_dict(),
        "schedule": schedule.as_dict(),
        "channels_removed": pruned.removed is not None,
        "pruned_channels": pruned.pruned_channels if pruned.removed is not None else {},
        "layer_shapes": [shape.as_dict() for shape in layer_shapes(model)],
    }
    return save_checkpoint(folder, {name: t.contiguous() for name, t in effective_tensors(model).items()}, meta)


def load_pruned_model(folder: Path) -> nn.Module:
    """Rebuild a saved pruned model: the architecture, cut down as recorded, then its weights."""
    loaded = load_checkpoint(Path(folder))
    if loaded is None:
        raise UserError(f"{folder} holds no complete pruned checkpoint")
    state_dict, meta = loaded
    channels, side, _ = meta["input_shape"]
    model = build_model(meta["architecture"], channels, side, meta["num_classes"]).eval()
    if meta["channels_removed"]:
        model = remove_channels(model, meta["pruned_channels"], torch.zeros(1, channels, side, side))
    expected = {shape["name"]: shape["weight_shape"] for shape in meta["layer_shapes"]}
    rebuilt = {shape.name: shape.weight_shape for shape in layer_shapes(model)}
    if expected != rebuilt:
        raise UserError(f"{folder}: rebuilt layer shapes do not match the saved ones")
    model.load_state_dict(state_dict)
    return model.eval()


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
        (a fraction, 0.01 = 1 point) of the baseline: per-layer amounts for an informed prune."""
        chosen = {}
        for layer, accuracies in self.accuracy_by_layer.items():
            best = 0.0
            for amount, accuracy in zip(self.amounts, accuracies):
                if accuracy is None or accuracy < self.baseline_accuracy - max_drop:
                    break
                best = amount
            chosen[layer] = best
        return chosen


def sensitivity_scan(baseline: Baseline, evaluator: QuickEvaluator, granularity: str = "unstructured", method: str = "l1", amounts: tuple[float, ...] = SCAN_AMOUNTS, layers: list[str] | None = None, progress: ProgressCallback = no_progress, stop: StopFlag | None = None) -> SensitivityScan:
    """Prune one layer at a time at each amount (the rest untouched) and measure accuracy."""
    PruneConfig(method, granularity).validate()
    layers = layers or baseline_layers(baseline, granularity)
    baseline_accuracy = evaluator.accuracy(baseline.model)
    accuracy_by_layer: dict[str, list[float | None]] = {}
    total, done = len(layers) * len(amounts), 0
    for layer in layers:
        accuracy_by_layer[layer] = []
        for amount in amounts:
            if stop is not None and stop.is_set():
                raise PruningStopped("the sensitivity scan was stopped")
            try:
                pruned = prune_baseline(baseline, PruneConfig(method, granularity, amount, "layer", (layer,)))
                accuracy_by_layer[layer].append(evaluator.accuracy(pruned.fastest_equivalent))
            except UserError:
                accuracy_by_layer[layer].append(None)  # e.g. a layer too narrow to lose that many channels
            done += 1
            progress(Progress("scan", done, total, f"{layer} at {amount:.0%}"))
    return SensitivityScan(granularity, method, list(amounts), accuracy_by_layer, baseline_accuracy, evaluator.images)


def accuracy_sweep(baseline: Baseline, config: PruneConfig, evaluator: QuickEvaluator, amounts: tuple[float, ...] = SCAN_AMOUNTS, progress: ProgressCallback = no_progress) -> list[tuple[float, float]]:
    """(global sparsity, accuracy) of one-shot pruning at each amount, no fine-tuning."""
    points = []
    for index, amount in enumerate(amounts):
        try:
            pruned = prune_baseline(baseline, replace(config, amount=amount, layer_amounts=(), remove=False))
        except UserError:
            continue  # an amount this model cannot take (a layer would lose every channel)
        points.append((global_sparsity(pruned.masked), evaluator.accuracy(pruned.fastest_equivalent)))
        progress(Progress("sweep", index + 1, len(amounts), f"amount {amount:.0%}"))
    return points

"""The pruning technique: prune a copy of the source, fine-tune if asked (one-shot or an iterative
schedule), and measure what it bought. Returns the one result shape (core.contract.result); core.contract.record
saves it.

    result = prune(source, PruneConfig(granularity="channel", amount=0.5, remove=True, finetune_epochs=2), context)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

from safetensors.torch import save as safetensors_bytes
from torch import nn

from core.contract.context import RunContext
from core.contract.pruned_artifact import pruned_artifact_meta, pruned_tensors
from core.contract.result import Artifact, TechniqueResult, build_headline
from core.contract.source import ModelSource, compose_removed_channels
from core.foundation.measures.latency import measure_latencies
from core.foundation.models.registry import build_model
from core.foundation.progress import Progress
from core.foundation.training.loop import EpochRecord, evaluate, train_model
from core.foundation.training.records import finetune_recipe
from core.pruning.config import PruneConfig
from core.pruning.encoding import measure_sizes
from core.pruning.explore import PruneSnapshot, PruningStopped, final_model, measure_snapshot, prune_copy
from core.pruning.masks import PrunedModels, apply_pruning, plain_copy, remove_channels
from core.pruning.stats import global_sparsity, layer_shapes, output_channels

SIZE_MEASURE = "sparse encoding (each tensor dense, bitmask or CSR, whichever is smallest)"


@dataclass
class SchedulePoint:
    step: int
    amount: float
    sparsity: float
    accuracy_pruned: float  # right after pruning this step
    accuracy_finetuned: float | None  # after this step's fine-tuning


@dataclass
class PruneReport(PruneSnapshot):
    """What only pruning has: the snapshot of the final model and how it got there."""

    accuracy_oneshot: float = 0.0  # pruned to the target at once, before any fine-tuning
    latency_ms_masked: float = 0.0  # the masked model (same shape as the source) at the throughput batch
    layer_shapes_before: list[dict] = field(default_factory=list)
    layer_shapes_after: list[dict] = field(default_factory=list)
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)  # removed in this step, indices of the source
    finetune_history: list[dict] = field(default_factory=list)
    schedule_points: list[dict] = field(default_factory=list)
    finetune_seconds: float = 0.0
    channels_left_whole: dict[str, str] = field(default_factory=dict)  # channel pruning: root layer -> the layer that keeps its channels from being removed exactly

    def as_details(self) -> dict:
        """JSON details for the history (the per-channel index lists become counts)."""
        values = asdict(self)
        values["pruned_channel_counts"] = {name: len(indices) for name, indices in values.pop("pruned_channels").items()}
        return values


def lineage_removed_channels(source: ModelSource, pruned: PrunedModels) -> dict[str, list[int]]:
    """Every channel removed along the lineage, this pruning's included, as indices of the full
    architecture (what a package rebuilds the smaller model from)."""
    removed_now = pruned.pruned_channels if pruned.removed is not None else {}
    if not removed_now:
        return dict(source.pruned_channels)
    dataset = source.dataset
    full_counts = output_channels(build_model(source.architecture, dataset.channels, dataset.image_size, dataset.num_classes))
    return compose_removed_channels(source.pruned_channels, removed_now, full_counts)


def prune(source: ModelSource, config: PruneConfig, context: RunContext) -> TechniqueResult:
    """Prune, fine-tune, measure. Accuracies are on the source's full test split."""
    started = time.perf_counter()
    config.validate()
    source.check_compressible("pruning")
    progress, stop = context.progress, context.stop
    dataset, device = source.dataset, source.torch_device
    example = source.example_input()
    oneshot = prune_copy(source, config)  # first: a setting this model cannot take fails before any work
    progress(Progress("prune", 1, 1, "pruned a copy of the source"))
    accuracy_before = source.accuracy
    accuracy_oneshot = evaluate(oneshot.masked, dataset, dataset.test, device).accuracy
    recipe = finetune_recipe(source.recipe, config.finetune_epochs)
    history: list[EpochRecord] = []
    finetune_seconds = 0.0
    points: list[SchedulePoint] = []

    def finetune(model: nn.Module, stage: str) -> float:
        nonlocal finetune_seconds
        result = train_model(model, dataset, recipe, device, source.seed, progress, stop, stage=stage)
        if result.stopped:
            raise PruningStopped("fine-tuning was stopped; nothing was saved")
        history.extend(result.history)
        finetune_seconds += result.train_seconds
        return result.history[-1].test_accuracy

    if config.iterative_steps == 1:
        pruned = oneshot
        tuned = finetune(final_model(pruned), "finetune") if config.finetune_epochs else None
        points.append(SchedulePoint(1, config.amount, global_sparsity(pruned.masked), accuracy_oneshot, tuned))
    else:
        masked = source.fresh_copy()
        step_config = replace(config.pruning_only(), remove=False)
        for step in range(1, config.iterative_steps + 1):
            fraction = config.fraction_at(step)
            pruned = apply_pruning(masked, step_config.scaled(fraction), example)
            accuracy_pruned = evaluate(masked, dataset, dataset.test, device).accuracy
            tuned = finetune(masked, f"finetune step {step}/{config.iterative_steps}")
            points.append(SchedulePoint(step, config.amount * fraction, global_sparsity(masked), accuracy_pruned, tuned))
        removed = remove_channels(masked, pruned.pruned_channels, example) if config.remove else None
        pruned = PrunedModels(masked, removed, pruned.pruned_channels, pruned.channels, left_whole=pruned.left_whole)
    final = final_model(pruned)

    progress(Progress("measure", 0, 1, "measuring size and latency"))
    tensors = pruned_tensors(final)
    accuracy_after = evaluate(final, dataset, dataset.test, device).accuracy
    snapshot = measure_snapshot(pruned, source, accuracy_after, len(dataset.test), final, safetensors_bytes({k: v.cpu() for k, v in tensors.items()}))
    timed = {"before": source.model, "after": final, "masked": pruned.masked} if pruned.removed is not None else {"before": source.model, "after": final}
    latencies, _ = measure_latencies(timed, example)
    lineage_removed = lineage_removed_channels(source, pruned)
    report = PruneReport(
        **snapshot.as_dict(),
        accuracy_oneshot=accuracy_oneshot,
        latency_ms_masked=latencies.get("masked", latencies["after"]).throughput_ms,
        layer_shapes_before=[shape.as_dict() for shape in layer_shapes(source.model)],
        layer_shapes_after=[shape.as_dict() for shape in layer_shapes(final)],
        pruned_channels=pruned.pruned_channels if pruned.removed is not None else {},
        finetune_history=[asdict(record) for record in history],
        schedule_points=[asdict(point) for point in points],
        finetune_seconds=finetune_seconds,
        channels_left_whole=dict(pruned.left_whole),
    )
    headline = build_headline(
        source,
        final,
        accuracy_before,
        accuracy_after,
        len(dataset.test),
        size_bytes_before=measure_sizes(source.model).size_bytes_sparse,
        size_bytes_after=snapshot.size_bytes_sparse,
        size_measure_before=SIZE_MEASURE,
        size_measure=SIZE_MEASURE,
        latency=(latencies["before"], latencies["after"]),
        params_after=snapshot.params,
        nonzero_params_after=snapshot.nonzero_params,
        macs_after=snapshot.macs,
    )
    meta = pruned_artifact_meta(final, source.architecture, (dataset.channels, dataset.image_size, dataset.image_size), dataset.num_classes, lineage_removed)
    progress(Progress("measure", 1, 1, "done"))
    return TechniqueResult(
        technique="prune",
        config=config.as_dict(),
        headline=headline,
        details=report.as_details(),
        artifact=Artifact(tensors=tensors, meta=meta),
        model=plain_copy(final).eval(),
        architecture=source.architecture,
        source=source,
        pruned_channels=lineage_removed,
        report=report,
        seconds=time.perf_counter() - started,
    )

"""Pruning: masks you can see (torch.nn.utils.prune), channels really removed (Torch-Pruning's
dependency graph), and sizes that tell the truth (sparse encodings measured from the tensors).

    pruned = apply_pruning(model, PruneConfig(method="ln", granularity="channel", amount=0.5, remove=True), example_input)
    final_model, report = run_pruning(baseline, config, ScheduleConfig(finetune_epochs=2), workspace)
"""

from core.pruning.config import GRANULARITIES, METHODS, SCOPES, PruneConfig, ScheduleConfig
from core.pruning.encoding import SizeReport, decode_sparse, encode_sparse, measure_sizes
from core.pruning.lab import (
    EVAL_SUBSET_SIZE,
    LATENCY_BATCH_SIZE,
    PruneReport,
    PruneSnapshot,
    PruningStopped,
    QuickEvaluator,
    SensitivityScan,
    accuracy_sweep,
    baseline_layers,
    compare_latency,
    evaluation_subset,
    load_pruned_model,
    preview_pruning,
    run_pruning,
    sensitivity_scan,
)
from core.pruning.masks import PrunedModels, apply_pruning, classifier_name, prunable_layers, remove_channels
from core.pruning.stats import LayerShape, WeightView, all_weights, global_sparsity, layer_shapes, sparsity_per_layer, weight_view

__all__ = [
    "EVAL_SUBSET_SIZE", "GRANULARITIES", "LATENCY_BATCH_SIZE", "METHODS", "SCOPES",
    "LayerShape", "PruneConfig", "PruneReport", "PruneSnapshot", "PrunedModels", "PruningStopped", "QuickEvaluator", "ScheduleConfig",
    "SensitivityScan", "SizeReport", "WeightView",
    "accuracy_sweep", "all_weights", "apply_pruning", "baseline_layers", "classifier_name", "compare_latency",
    "decode_sparse", "encode_sparse", "evaluation_subset", "global_sparsity", "layer_shapes", "load_pruned_model",
    "measure_sizes", "preview_pruning", "prunable_layers", "remove_channels", "run_pruning", "sensitivity_scan",
    "sparsity_per_layer", "weight_view",
]

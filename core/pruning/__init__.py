"""Pruning: masks you can see (torch.nn.utils.prune), channels really removed (Torch-Pruning's
dependency graph), and sizes that tell the truth (sparse encodings measured from the tensors).

    pruned, snapshot = preview_pruning(source, PruneConfig(granularity="channel", amount=0.5, remove=True), evaluator)
    result = prune(source, PruneConfig(amount=0.8, scope="global", finetune_epochs=2), context)   # core.result.TechniqueResult
"""

from core.pruning.artifact import load_pruned_model
from core.pruning.config import GRANULARITIES, METHODS, SCOPES, PruneConfig, parse_layers
from core.pruning.encoding import SizeReport, decode_sparse, encode_sparse, measure_sizes
from core.pruning.explore import PruneSnapshot, PruningStopped, SensitivityScan, accuracy_sweep, preview_pruning, sensitivity_scan, source_layers
from core.pruning.masks import PrunedModels, apply_pruning, classifier_name, prunable_layers, remove_channels
from core.pruning.run import PruneReport, prune
from core.pruning.stats import LayerShape, WeightView, all_weights, global_sparsity, layer_shapes, sparsity_per_layer, weight_view

__all__ = [
    "GRANULARITIES", "METHODS", "SCOPES",
    "LayerShape", "PruneConfig", "PruneReport", "PruneSnapshot", "PrunedModels", "PruningStopped",
    "SensitivityScan", "SizeReport", "WeightView",
    "accuracy_sweep", "all_weights", "apply_pruning", "classifier_name",
    "decode_sparse", "encode_sparse", "global_sparsity", "layer_shapes", "load_pruned_model",
    "measure_sizes", "parse_layers", "preview_pruning", "prunable_layers", "prune", "remove_channels", "sensitivity_scan",
    "source_layers", "sparsity_per_layer", "weight_view",
]

"""Pruning: masks you can see (torch.nn.utils.prune), channels really removed (Torch-Pruning's
dependency graph), and sizes that tell the truth (sparse encodings measured from the tensors).

    pruned, snapshot = preview_pruning(source, PruneConfig(granularity="channel", amount=0.5, remove=True), evaluator)
    result = prune(source, PruneConfig(amount=0.8, scope="global", finetune_epochs=2), context)   # core.contract.result.TechniqueResult

Names are imported from their submodules on first use, so the torch-free ones (the configs) can
be read, e.g. by the share link, before torch is imported.
"""

from __future__ import annotations

from core.foundation.lazy_exports import lazy_exports

# Each public name, and the submodule that defines it.
_EXPORTS = {
    "load_pruned_model": "core.contract.pruned_artifact",
    "GRANULARITIES": "core.pruning.config",
    "METHODS": "core.pruning.config",
    "PruneConfig": "core.pruning.config",
    "SCOPES": "core.pruning.config",
    "parse_layers": "core.pruning.config",
    "SizeReport": "core.pruning.encoding",
    "decode_sparse": "core.pruning.encoding",
    "encode_sparse": "core.pruning.encoding",
    "measure_sizes": "core.pruning.encoding",
    "PruneSnapshot": "core.pruning.explore",
    "PruningStopped": "core.pruning.explore",
    "SensitivityScan": "core.pruning.explore",
    "accuracy_sweep": "core.pruning.explore",
    "preview_pruning": "core.pruning.explore",
    "sensitivity_scan": "core.pruning.explore",
    "source_layers": "core.pruning.explore",
    "PrunedModels": "core.pruning.masks",
    "apply_pruning": "core.pruning.masks",
    "classifier_name": "core.pruning.masks",
    "prunable_layers": "core.pruning.masks",
    "remove_channels": "core.pruning.masks",
    "PruneReport": "core.pruning.run",
    "prune": "core.pruning.run",
    "LayerShape": "core.pruning.stats",
    "WeightView": "core.pruning.stats",
    "all_weights": "core.pruning.stats",
    "global_sparsity": "core.pruning.stats",
    "layer_shapes": "core.pruning.stats",
    "sparsity_per_layer": "core.pruning.stats",
    "weight_view": "core.pruning.stats",
}

__all__ = [
    "GRANULARITIES",
    "METHODS",
    "SCOPES",
    "LayerShape",
    "PruneConfig",
    "PruneReport",
    "PruneSnapshot",
    "PrunedModels",
    "PruningStopped",
    "SensitivityScan",
    "SizeReport",
    "WeightView",
    "accuracy_sweep",
    "all_weights",
    "apply_pruning",
    "classifier_name",
    "decode_sparse",
    "encode_sparse",
    "global_sparsity",
    "layer_shapes",
    "load_pruned_model",
    "measure_sizes",
    "parse_layers",
    "preview_pruning",
    "prunable_layers",
    "prune",
    "remove_channels",
    "sensitivity_scan",
    "source_layers",
    "sparsity_per_layer",
    "weight_view",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

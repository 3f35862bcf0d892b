"""What a pruned model looks like inside: sparsity per layer, layer shapes, weight matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.foundation.models.channels import PRUNABLE_TYPES, LayerShape, layer_shapes  # noqa: F401 (re-exported)


@dataclass
class WeightView:
    """One layer's weight as a 2-D matrix: rows are output channels, columns input channel x kernel position."""

    layer: str
    values: np.ndarray  # float32 [out, in*kh*kw]
    pruned: np.ndarray  # bool, True where a mask removed the weight
    kernel_positions: int  # kh*kw (1 for Linear): columns per input channel


def effective_weight(module: nn.Module) -> torch.Tensor:
    return module.weight.detach().cpu()


def weight_mask(module: nn.Module) -> torch.Tensor | None:
    mask = getattr(module, "weight_mask", None)
    return mask.detach().cpu() if isinstance(mask, torch.Tensor) else None


def sparsity_per_layer(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights in each Conv2d/Linear layer."""
    return {name: float((effective_weight(m) == 0).float().mean()) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def global_sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over every Conv2d/Linear layer together (biases and norms not counted)."""
    zeros = total = 0
    for module in model.modules():
        if isinstance(module, PRUNABLE_TYPES):
            weight = effective_weight(module)
            zeros += int((weight == 0).sum())
            total += weight.numel()
    return zeros / total if total else 0.0


def output_channels(model: nn.Module) -> dict[str, int]:
    return {name: int(m.weight.shape[0]) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def weight_view(model: nn.Module, layer: str) -> WeightView:
    module = dict(model.named_modules())[layer]
    weight = effective_weight(module)
    mask = weight_mask(module)
    pruned = (mask == 0) if mask is not None else torch.zeros_like(weight, dtype=torch.bool)
    kernel_positions = int(np.prod(weight.shape[2:])) if weight.dim() > 2 else 1
    return WeightView(layer, weight.flatten(1).numpy().astype(np.float32), pruned.flatten(1).numpy(), kernel_positions)


def all_weights(model: nn.Module) -> np.ndarray:
    """Every Conv2d/Linear weight value, flattened (for histograms)."""
    return np.concatenate([effective_weight(m).flatten().numpy() for m in model.modules() if isinstance(m, PRUNABLE_TYPES)])


def architecture_rows(before: list[LayerShape], after: list[LayerShape]) -> list[dict]:
    """Layer by layer, the weight shape and parameters before and after pruning (for a table)."""
    after_by_name = {shape.name: shape for shape in after}
    rows = []
    for shape in before:
        new = after_by_name.get(shape.name, shape)
        rows.append(
            {
                "layer": shape.name,
                "type": shape.kind,
                "shape before": " × ".join(map(str, shape.weight_shape)),
                "shape after": " × ".join(map(str, new.weight_shape)),
                "params before": shape.params,
                "params after": new.params,
            }
        )
    return rows

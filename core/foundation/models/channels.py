"""A network with some output channels physically removed: Torch-Pruning's dependency graph cuts
each chosen layer and every layer that reads its channels. The pruning technique chooses the
channels; this is also how a saved pruned model is rebuilt before its weights are loaded, so it
sits below both."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune

from core.foundation.errors import UserError

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass
class LayerShape:
    name: str
    kind: str  # Conv2d, Linear, BatchNorm2d
    weight_shape: list[int]  # Conv2d: [out, in, kh, kw]; Linear: [out, in]
    params: int  # weights and biases

    def as_dict(self) -> dict:
        return asdict(self)


def layer_shapes(model: nn.Module) -> list[LayerShape]:
    shapes = []
    for name, module in model.named_modules():
        if isinstance(module, (*PRUNABLE_TYPES, nn.modules.batchnorm._BatchNorm)):
            params = sum(t.numel() for t in (getattr(module, "weight", None), getattr(module, "bias", None)) if isinstance(t, torch.Tensor))
            shapes.append(LayerShape(name, type(module).__name__, list(module.weight.shape), params))
    return shapes


def plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy with every mask folded into its tensor (no pruning hooks left)."""
    for module in model.modules():
        for name in _masked_tensor_names(module):
            # The hook's last product is a non-leaf tensor, which deepcopy refuses; the next forward recomputes it.
            setattr(module, name, getattr(module, name).detach())
    twin = copy.deepcopy(model)
    for module in twin.modules():
        for name in _masked_tensor_names(module):
            prune.remove(module, name)
    return twin


def _masked_tensor_names(module: nn.Module) -> list[str]:
    return [name[: -len("_orig")] for name, _ in module.named_parameters(recurse=False) if name.endswith("_orig")]


def dependency_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    was_training = model.training
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input[:1])
    model.train(was_training)
    return graph


def remove_channels(model: nn.Module, pruned_channels: dict[str, list[int]], example_input: torch.Tensor) -> nn.Module:
    """A smaller dense copy of `model` without the given output channels of each root layer
    (also how a saved pruned model is rebuilt before its weights are loaded)."""
    smaller = plain_copy(model)
    return cut_channels(smaller, dependency_graph(smaller, example_input), pruned_channels)


def cut_channels(model: nn.Module, graph: tp.DependencyGraph, pruned_channels: dict[str, list[int]]) -> nn.Module:
    """Cut channels out of `model` in place; Torch-Pruning's dependency graph shrinks every layer that reads them."""
    modules = dict(model.named_modules())
    # Groups touch disjoint channel dimensions, so each keeps its original indices as others shrink.
    for root, indices in pruned_channels.items():
        if not indices:
            continue
        module = modules[root]
        group = graph.get_pruning_group(module, graph.get_pruner_of_module(module).prune_out_channels, sorted(indices))
        if not graph.check_pruning_group(group):
            raise UserError(f"removing {len(indices)} channels from {root} would leave a layer with no channels; lower the amount")
        group.prune()
    return model

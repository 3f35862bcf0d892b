"""A network with some output channels physically removed: Torch-Pruning's dependency graph cuts
each chosen layer and every layer that reads its channels. The pruning technique chooses the
channels; this is also how a saved pruned model is rebuilt before its weights are loaded, so it
sits below both.

The graph couples channels into groups, each named by its root layer (the key of a
`pruned_channels` dict): channels joined by an add (a residual) or a multiply (squeeze-excitation)
go together; a depthwise convolution loses the same channels in and out (groups == channels
stays true); a grouped convolution loses the same positions in every group (the groups stay
equal). A vision transformer's attention (core.foundation.models.vit.HeadAttention) is one node
to the graph; its heads are a group of their own, rooted at its `qkv` layer, removed whole.
`channel_groups` says what each group couples and, where removing its channels would change the
remaining outputs (a LayerNorm normalises across them, an attention mixes them), which layer
stands in the way.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune

from core.foundation.errors import UserError
from core.foundation.models.vit import HeadAttention, remove_heads

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)
NORM_TYPES = (nn.modules.batchnorm._BatchNorm,)  # per-channel: a removed channel never touches another
CROSS_CHANNEL_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


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


class _WholeAttention(tp.pruner.function.BasePruningFunc):
    """HeadAttention to Torch-Pruning: one node whose input and output are the model width (the
    residual stream, which a LayerNorm blocks anyway); its heads are cut by remove_heads."""

    TARGET_MODULES = (HeadAttention,)

    def prune_out_channels(self, layer: nn.Module, idxs: list[int]) -> nn.Module:
        raise UserError(f"the width of an attention layer ({layer.qkv.in_features} channels) cannot be cut; its heads can")

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.qkv.in_features

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.qkv.in_features


def dependency_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    was_training = model.training
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input[:1], customized_pruners={HeadAttention: _WholeAttention()}, verbose=False)
    model.train(was_training)
    return graph


def classifier_name(model: nn.Module) -> str:
    """The final classifier: the last Linear layer. Its outputs are the classes, never pruned."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise UserError(f"{type(model).__name__} has no Linear classifier layer to keep")
    return names[-1]


@dataclass
class ChannelGroup:
    """Channels that go together: what removing one of the root's output channels removes everywhere."""

    root: str  # the root layer: the key of a pruned_channels dict
    channels: int  # the root's output channels
    units: list[list[int]]  # what is removed together: one channel, one position of every conv group, or one head's q, k, v rows
    kind: str  # "channels", "positions in 6 convolution groups", "attention heads"
    members: list[str]  # every layer the channels touch, "name (out)" or "name (in)"
    blocked_by: str | None = None  # why the smaller model would compute something else (a layer named), or None
    graph_group: object = field(default=None, repr=False)  # Torch-Pruning's group (None for heads)

    def as_dict(self) -> dict:
        return {"root": self.root, "channels": self.channels, "units": len(self.units), "kind": self.kind, "members": self.members, "blocked_by": self.blocked_by}


def channel_groups(model: nn.Module, graph: tp.DependencyGraph) -> dict[str, ChannelGroup]:
    """Every group of output channels `model` could lose, by root layer, in the model's own layer
    order; the classifier's outputs (the classes) are never among them."""
    names = {module: name for name, module in model.named_modules()}
    classifier = model.get_submodule(classifier_name(model))
    found: dict[str, ChannelGroup] = {}
    for group in graph.get_all_groups(ignored_layers=[classifier], root_module_types=PRUNABLE_TYPES):
        root = names[group[0].dep.target.module]
        found[root] = _describe_group(root, group, graph, names)
    for name, module in model.named_modules():
        if isinstance(module, HeadAttention):
            root = f"{name}.qkv"
            units = [module.head_channels(head) for head in range(module.num_heads)]
            found[root] = ChannelGroup(root, 3 * module.inner_dim, units, "attention heads", [f"{root} (out)", f"{name}.out_proj (in)"])
    return {name: found[name] for name in names.values() if name in found}


def _describe_group(root: str, group: tp.dependency.Group, graph: tp.DependencyGraph, names: dict) -> ChannelGroup:
    channels = len(group[0].idxs)
    members, blocks, conv_groups = [], [], set()
    for dependency, _ in group:
        target = dependency.target.module
        out = graph.is_out_channel_pruning_fn(dependency.handler)
        if isinstance(target, nn.Parameter):
            name = graph._param_to_name.get(target, "a parameter")
            blocks.append((2, f"{name} is a free parameter along these channels, which masks cannot zero"))
            members.append(f"{name} ({'out' if out else 'in'})")
            continue
        name = names.get(target)
        if name is None or (not any(True for _ in target.parameters(recurse=False)) and not isinstance(target, HeadAttention)):
            continue  # activations, pooling, adds, reshapes: nothing to cut
        members.append(f"{name} ({'out' if out else 'in'})")
        if isinstance(target, CROSS_CHANNEL_NORMS):
            blocks.append((0, f"{name} ({type(target).__name__}) normalises across these channels, so removing some would change the rest"))
        elif isinstance(target, HeadAttention):
            blocks.append((1, f"{name} (attention) mixes these channels in every head; its heads can be removed instead ({name}.qkv)"))
        elif isinstance(target, nn.Conv2d):
            if 1 < target.groups and not (target.groups == target.out_channels == target.in_channels):
                conv_groups.add(target.groups)
        elif not isinstance(target, (nn.Linear, *NORM_TYPES)):
            blocks.append((3, f"channel pruning cannot mask layer {name} ({type(target).__name__}); only Conv2d, Linear and BatchNorm layers are supported"))
    size = max(conv_groups, default=1)
    if any(size % count for count in conv_groups):
        blocks.append((4, f"grouped convolutions with {' and '.join(map(str, sorted(conv_groups)))} groups share these channels"))
    if size > 1:
        per_group = channels // size
        units = [[g * per_group + position for g in range(size)] for position in range(per_group)]
        kind = f"positions in {size} convolution groups"
    else:
        units, kind = [[index] for index in range(channels)], "channels"
    blocked_by = min(blocks)[1] if blocks else None
    return ChannelGroup(root, channels, units, kind, members, blocked_by, group)


def attention_of(model: nn.Module, root: str) -> HeadAttention | None:
    """The HeadAttention whose heads `root` (its qkv layer) names, or None for an ordinary root."""
    parent, _, leaf = root.rpartition(".")
    module = model.get_submodule(parent) if parent else model
    return module if leaf == "qkv" and isinstance(module, HeadAttention) else None


def heads_of(attention: HeadAttention, indices: list[int], root: str) -> list[int]:
    """Which heads the qkv channels `indices` are; they must be whole heads."""
    heads = sorted({(index % attention.inner_dim) // attention.head_dim for index in indices})
    if sorted(indices) != sorted(c for head in heads for c in attention.head_channels(head)):
        raise UserError(f"removed channels of {root} must be whole attention heads ({3 * attention.head_dim} channels each: its q, k and v rows)")
    if len(heads) >= attention.num_heads:
        raise UserError(f"removing {len(heads)} of the {attention.num_heads} heads of {root} would leave none; lower the amount")
    return heads


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
        attention = attention_of(model, root)
        if attention is not None:
            remove_heads(attention, heads_of(attention, indices, root))
            block = model.get_submodule(root.rpartition(".")[0].rpartition(".")[0])
            if hasattr(block, "num_heads"):  # torchvision's EncoderBlock keeps a copy
                block.num_heads = attention.num_heads
            continue
        module = modules[root]
        group = graph.get_pruning_group(module, graph.get_pruner_of_module(module).prune_out_channels, sorted(indices))
        if not graph.check_pruning_group(group):
            raise UserError(f"removing {len(indices)} channels from {root} would leave a layer with no channels; lower the amount")
        group.prune()
    return model

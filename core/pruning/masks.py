"""Pruning masks (torch.nn.utils.prune) and physical channel removal (Torch-Pruning).

Masks are torch.nn.utils.prune re-parametrisations: each pruned tensor keeps `weight_orig` and
`weight_mask`, and a forward pre-hook multiplies them, so fine-tuning never revives a pruned
weight. Channel pruning asks Torch-Pruning's dependency graph which tensors a channel touches
(the filter, its bias and batch norm, and the next layers' inputs), masks all of them, and can
then cut exactly those channels out, giving a smaller dense model with the same output.

Channels are chosen per coupled group (core.foundation.models.channels.channel_groups), in units
removed together: a channel (shared by every layer an add or a multiply joins: a ResNet's
residual convs lose the same channels), one position in every group of a grouped convolution, or
a whole attention head. A group whose removal would change the other outputs (a LayerNorm across
its channels: ConvNeXt's and a ViT's residual stream) is left whole, and refused when named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune

from core.foundation.errors import UserError
from core.foundation.models.channels import (  # noqa: F401 (remove_channels, classifier_name re-exported)
    NORM_TYPES,
    PRUNABLE_TYPES,
    ChannelGroup,
    attention_of,
    channel_groups,
    classifier_name,
    cut_channels,
    dependency_graph,
    plain_copy,
    remove_channels,
)
from core.pruning.config import LN_NORM, PruneConfig


@dataclass
class PrunedModels:
    masked: nn.Module  # the input model, now carrying masks
    removed: nn.Module | None  # a smaller dense copy with the pruned channels cut out (config.remove)
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)  # root layer -> removed channel indices
    channels: dict[str, int] = field(default_factory=dict)  # root layer -> channels before pruning
    compact: nn.Module | None = None  # channel pruning: the cut-down copy even when not asked for (same outputs)
    left_whole: dict[str, str] = field(default_factory=dict)  # channel pruning: root layer -> why its group cannot lose channels exactly

    @property
    def fastest_equivalent(self) -> nn.Module:
        """The model to evaluate: the cut-down copy computes the masked model's outputs with a fraction of the arithmetic."""
        return self.compact if self.compact is not None else self.masked


def unstructured_layers(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, PRUNABLE_TYPES)]


def model_channel_groups(model: nn.Module, example_input: torch.Tensor) -> dict[str, ChannelGroup]:
    """Every coupled group of output channels, by root layer (blocked ones included, with the reason)."""
    twin = plain_copy(model)
    return channel_groups(twin, dependency_graph(twin, example_input))


def channel_layers(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Layers whose output channels can be pruned: the roots of Torch-Pruning's groups (and of the
    attention heads), minus the classifier and the groups that cannot lose channels exactly."""
    return [name for name, group in model_channel_groups(model, example_input).items() if group.blocked_by is None]


def blocked_channel_layers(model: nn.Module, example_input: torch.Tensor) -> dict[str, str]:
    """Roots whose channels cannot be removed exactly, each with the layer that stands in the way."""
    return {name: group.blocked_by for name, group in model_channel_groups(model, example_input).items() if group.blocked_by is not None}


def prunable_layers(model: nn.Module, granularity: str, example_input: torch.Tensor) -> list[str]:
    return channel_layers(model, example_input) if granularity == "channel" else unstructured_layers(model)


def chosen_layers(model: nn.Module, config: PruneConfig, available: list[str], blocked: dict[str, str] | None = None) -> list[str]:
    """The layers `config` names, checked against the `available` ones this model can prune
    (`blocked`: roots whose channels cannot be removed exactly, and why)."""
    if config.layers is None:
        return available
    classifier = classifier_name(model)
    for name in [*config.layers, *(layer for layer, _ in config.layer_amounts)]:
        if name in available:
            continue
        if config.granularity == "channel" and name in (blocked or {}):
            raise UserError(f"{name}'s channels cannot be removed exactly: {blocked[name]}")
        if config.granularity == "channel" and name == classifier:
            raise UserError(f"{name} is the final classifier: its outputs are the classes, so its channels cannot be pruned; choose from {', '.join(available)}")
        raise UserError(f"unknown layer '{name}' for {config.granularity} pruning; choose from {', '.join(available)}")
    return [name for name in available if name in config.layers]


def apply_pruning(model: nn.Module, config: PruneConfig, example_input: torch.Tensor) -> PrunedModels:
    """Mask `model` in place as `config` says, and for `config.remove` also build the smaller model.

    Amounts count from the original tensor: on a model that is already masked (an iterative
    schedule), what was pruned stays pruned and counts toward the new amount."""
    config.validate()
    if config.granularity == "unstructured":
        _mask_unstructured(model, chosen_layers(model, config, unstructured_layers(model)), config)
        return PrunedModels(model, None)
    twin = plain_copy(model)  # the graph is traced on a hook-free copy; masks go on `model` by name
    graph = dependency_graph(twin, example_input)
    groups = channel_groups(twin, graph)
    blocked = {name: group.blocked_by for name, group in groups.items() if group.blocked_by is not None}
    open_groups = {name: group for name, group in groups.items() if group.blocked_by is None}
    if not open_groups:
        first = next(iter(blocked), None)
        raise UserError(f"no channels of {type(model).__name__} can be removed exactly" + (f": {first}: {blocked[first]}" if first else ""))
    layers = chosen_layers(model, config, list(open_groups), blocked)
    pruned = _choose_channels(model, twin, {name: open_groups[name] for name in layers}, config)
    _mask_groups(model, twin, graph, open_groups, pruned)
    # The twin holds exactly the masked model's weights, so cutting its channels gives the smaller model.
    compact = cut_channels(twin, graph, pruned)
    return PrunedModels(model, compact if config.remove else None, pruned, {name: groups[name].channels for name in layers}, compact, blocked)


def _mask_unstructured(model: nn.Module, layers: list[str], config: PruneConfig) -> None:
    modules = dict(model.named_modules())
    generator = torch.Generator().manual_seed(config.seed)
    scores = {name: _weight_scores(modules[name], config.method, generator) for name in layers}
    if config.scope == "global":
        flat = torch.cat([score.flatten() for score in scores.values()])
        keep = _lowest_k_mask(flat, round(config.amount * flat.numel()))
        masks, offset = {}, 0
        for name, score in scores.items():
            masks[name] = keep[offset : offset + score.numel()].view_as(score)
            offset += score.numel()
    else:
        masks = {name: _lowest_k_mask(score, round(config.amount_for(name) * score.numel())) for name, score in scores.items()}
    for name, mask in masks.items():
        set_mask(modules[name], "weight", mask)


def _weight_scores(module: nn.Module, method: str, generator: torch.Generator) -> torch.Tensor:
    """Higher = keep. Already-pruned weights score 0, so they are always among those pruned again."""
    weight = module.weight.detach().cpu()
    alive = _current_mask(module, "weight").cpu()
    if method == "random":
        return (torch.rand(weight.shape, generator=generator) + 1e-3) * alive
    return weight.abs() * alive


def _lowest_k_mask(scores: torch.Tensor, count: int) -> torch.Tensor:
    """torch.nn.utils.prune's L1Unstructured rule on non-negative scores: zero the `count` smallest."""
    return prune.L1Unstructured(amount=int(count)).compute_mask(scores, default_mask=torch.ones_like(scores))


def _choose_channels(model: nn.Module, twin: nn.Module, groups: dict[str, ChannelGroup], config: PruneConfig) -> dict[str, list[int]]:
    """Which output channels of each root to remove: whole units of its group (module docstring),
    counted and ranked as units (a unit's score: the mean of its channels' scores)."""
    generator = torch.Generator().manual_seed(config.seed)
    modules, twin_modules = dict(model.named_modules()), dict(twin.named_modules())
    scores = {name: _unit_scores(group, twin_modules[name], config.method, generator) for name, group in groups.items()}
    dead = {name: _dead_units(modules[name], group) for name, group in groups.items()}
    units = {name: len(group.units) for name, group in groups.items()}
    if config.scope == "global":
        chosen = _global_channel_choice(scores, dead, config.amount)
        for name in groups:
            if len(chosen[name]) >= units[name]:
                raise UserError(f"global channel pruning at {config.amount:.0%} would remove every channel of {name}; lower the amount or use scope 'layer'")
    else:
        chosen = {}
        for name, group in groups.items():
            count = round(config.amount_for(name) * units[name])
            if count >= units[name]:
                what = "channels" if group.kind == "channels" else group.kind
                raise UserError(f"pruning {config.amount_for(name):.0%} of {name}'s {units[name]} {what} would leave none; lower the amount")
            chosen[name] = _extend_choice(scores[name], dead[name], count)
    return {name: sorted(channel for unit in chosen[name] for channel in groups[name].units[unit]) for name in groups}


def _unit_scores(group: ChannelGroup, root: nn.Module, method: str, generator: torch.Generator) -> torch.Tensor:
    """Per-unit importance (higher = keep): the mean over the unit's channels of the root's filter L1 or Ln norms."""
    if method == "random":
        return torch.rand(len(group.units), generator=generator)
    norm = 1 if method == "l1" else LN_NORM
    # The root filter's own norm (Torch-Pruning's MagnitudeImportance with group_reduction "first"),
    # as torch.nn.utils.prune.ln_structured ranks.
    channel_scores = root.weight.detach().cpu().flatten(1).abs().pow(norm).sum(1).pow(1.0 / norm)
    if all(len(unit) == 1 for unit in group.units):
        return channel_scores[[unit[0] for unit in group.units]]
    return torch.stack([channel_scores[unit].mean() for unit in group.units])


def _dead_units(module: nn.Module, group: ChannelGroup) -> list[int]:
    """Units whose channels are all masked to zero already (from an earlier step of an iterative schedule)."""
    dead = set(_dead_channels(module))
    return [index for index, unit in enumerate(group.units) if all(channel in dead for channel in unit)]


def _dead_channels(module: nn.Module) -> list[int]:
    """Output channels already masked to zero (from an earlier step of an iterative schedule)."""
    mask = _current_mask(module, "weight")
    return torch.nonzero(mask.flatten(1).sum(1) == 0).flatten().tolist()


def _extend_choice(scores: torch.Tensor, dead: list[int], count: int) -> list[int]:
    """`count` units to prune in all: the dead ones, then the lowest-scoring live ones."""
    alive = [i for i in range(len(scores)) if i not in set(dead)]
    extra = max(0, count - len(dead))
    ranked = sorted(alive, key=lambda i: float(scores[i]))
    return sorted([*dead, *ranked[:extra]])


def _global_channel_choice(scores: dict[str, torch.Tensor], dead: dict[str, list[int]], amount: float) -> dict[str, list[int]]:
    """One threshold across layers (over units: channels, grouped positions, heads). Each layer's
    scores are divided by their live mean first, so a layer with naturally larger filters is not
    spared just for its scale (Torch-Pruning's 'mean' normaliser)."""
    total = sum(len(score) for score in scores.values())
    extra = max(0, round(amount * total) - sum(len(d) for d in dead.values()))
    candidates = []
    for name, score in scores.items():
        alive = [i for i in range(len(score)) if i not in set(dead[name])]
        mean = float(score[alive].mean()) if alive else 1.0
        candidates += [(float(score[i]) / max(mean, 1e-12), name, i) for i in alive]
    chosen = sorted(candidates)[:extra]
    return {name: sorted([*dead[name], *(i for _, layer, i in chosen if layer == name)]) for name in scores}


def _mask_groups(model: nn.Module, twin: nn.Module, graph: tp.DependencyGraph, groups: dict[str, ChannelGroup], pruned: dict[str, list[int]]) -> None:
    """Zero, in `model`, every tensor entry that removing the channels would cut out."""
    twin_names = {m: n for n, m in twin.named_modules()}
    masks: dict[tuple[str, str], torch.Tensor] = {}

    def zero(name: str, tensor_name: str, shape: torch.Size, dim: int, indices: list[int]) -> None:
        mask = masks.setdefault((name, tensor_name), torch.ones(shape))
        mask.index_fill_(dim, torch.tensor(indices, dtype=torch.long), 0.0)

    def zero_rows(name: str, module: nn.Module, indices: list[int]) -> None:
        zero(name, "weight", module.weight.shape, 0, indices)
        if module.bias is not None:
            zero(name, "bias", module.bias.shape, 0, indices)

    for root, indices in pruned.items():
        if not indices:
            continue
        attention = attention_of(twin, root)
        if attention is not None:  # whole heads: their q, k, v rows and their output-projection columns
            zero_rows(root, attention.qkv, indices)
            columns = sorted({index % attention.inner_dim for index in indices})
            zero(f"{root[: -len('qkv')]}out_proj", "weight", attention.out_proj.weight.shape, 1, columns)
            continue
        chosen = set(indices)
        for item in groups[root].graph_group:  # the whole group: keep what the chosen root channels map to
            dependency = item.dep
            group_indices = [index for index, root_index in zip(item.idxs, item.root_idxs) if root_index in chosen]
            target = dependency.target.module
            if not group_indices:
                continue
            if not isinstance(target, nn.Module) or not any(True for _ in target.parameters(recurse=False)):
                continue  # activations, pooling, flatten: nothing to mask
            name = twin_names[target]
            out = graph.is_out_channel_pruning_fn(dependency.handler)
            if isinstance(target, NORM_TYPES):
                for tensor_name in ("weight", "bias"):
                    if getattr(target, tensor_name, None) is not None:
                        zero(name, tensor_name, getattr(target, tensor_name).shape, 0, group_indices)
            elif isinstance(target, nn.Conv2d) and target.groups > 1 and target.groups == target.in_channels == target.out_channels:
                zero_rows(name, target, group_indices)  # depthwise: a channel in is the same channel out
            elif isinstance(target, PRUNABLE_TYPES) and out:
                zero_rows(name, target, group_indices)
            elif isinstance(target, nn.Conv2d) and target.groups > 1:
                # A grouped convolution's input channel i is column i % (in/groups) of its own group's filters.
                mask = masks.setdefault((name, "weight"), torch.ones(target.weight.shape))
                per_in, per_out = target.in_channels // target.groups, target.out_channels // target.groups
                for index in group_indices:
                    group_index = index // per_in
                    mask[group_index * per_out : (group_index + 1) * per_out, index % per_in] = 0.0
            elif isinstance(target, PRUNABLE_TYPES):
                zero(name, "weight", target.weight.shape, 1, group_indices)
            else:
                raise UserError(f"channel pruning cannot mask layer {name} ({type(target).__name__}); only Conv2d, Linear and BatchNorm layers are supported")
    modules = dict(model.named_modules())
    for (name, tensor_name), mask in masks.items():
        set_mask(modules[name], tensor_name, mask)


def _current_mask(module: nn.Module, name: str) -> torch.Tensor:
    mask = getattr(module, f"{name}_mask", None)
    return mask.detach() if isinstance(mask, torch.Tensor) else torch.ones_like(getattr(module, name).detach())


def set_mask(module: nn.Module, name: str, mask: torch.Tensor) -> None:
    """Apply `mask` with torch.nn.utils.prune, combined with any mask already there: masks only grow."""
    tensor = getattr(module, name)
    mask = mask.to(device=tensor.device, dtype=tensor.dtype)
    if isinstance(getattr(module, f"{name}_mask", None), torch.Tensor):
        mask = mask * getattr(module, f"{name}_mask")
        prune.remove(module, name)
    prune.custom_from_mask(module, name, mask)
    # The hook's product is a non-leaf tensor, which deepcopy (e.g. the MAC counter's) refuses; each forward recomputes it.
    setattr(module, name, getattr(module, name).detach())

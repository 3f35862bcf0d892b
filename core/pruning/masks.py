"""Pruning masks (torch.nn.utils.prune) and physical channel removal (Torch-Pruning).

Masks are torch.nn.utils.prune re-parametrisations: each pruned tensor keeps `weight_orig` and
`weight_mask`, and a forward pre-hook multiplies them, so fine-tuning never revives a pruned
weight. Channel pruning asks Torch-Pruning's dependency graph which tensors a channel touches
(the filter, its bias and batch norm, and the next layers' inputs), masks all of them, and can
then cut exactly those channels out, giving a smaller dense model with the same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune

from core.foundation.errors import UserError
from core.foundation.models.channels import PRUNABLE_TYPES, cut_channels, dependency_graph, plain_copy, remove_channels  # noqa: F401 (remove_channels re-exported)
from core.pruning.config import LN_NORM, PruneConfig

NORM_TYPES = (nn.modules.batchnorm._BatchNorm,)


@dataclass
class PrunedModels:
    masked: nn.Module  # the input model, now carrying masks
    removed: nn.Module | None  # a smaller dense copy with the pruned channels cut out (config.remove)
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)  # root layer -> removed channel indices
    channels: dict[str, int] = field(default_factory=dict)  # root layer -> channels before pruning
    compact: nn.Module | None = None  # channel pruning: the cut-down copy even when not asked for (same outputs)

    @property
    def fastest_equivalent(self) -> nn.Module:
        """The model to evaluate: the cut-down copy computes the masked model's outputs with a fraction of the arithmetic."""
        return self.compact if self.compact is not None else self.masked


def classifier_name(model: nn.Module) -> str:
    """The final classifier: the last Linear layer. Its outputs are the classes, never pruned."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise UserError(f"{type(model).__name__} has no Linear classifier layer to keep")
    return names[-1]


def unstructured_layers(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, PRUNABLE_TYPES)]


def channel_layers(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Layers whose output channels can be pruned: the roots of Torch-Pruning's groups, minus the classifier."""
    twin = plain_copy(model)
    return list(_channel_groups(twin, dependency_graph(twin, example_input)))


def prunable_layers(model: nn.Module, granularity: str, example_input: torch.Tensor) -> list[str]:
    return channel_layers(model, example_input) if granularity == "channel" else unstructured_layers(model)


def chosen_layers(model: nn.Module, config: PruneConfig, available: list[str]) -> list[str]:
    """The layers `config` names, checked against the `available` ones this model can prune."""
    if config.layers is None:
        return available
    classifier = classifier_name(model)
    for name in [*config.layers, *(layer for layer, _ in config.layer_amounts)]:
        if name in available:
            continue
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
    groups = _channel_groups(twin, graph)
    layers = chosen_layers(model, config, list(groups))
    pruned = _choose_channels(model, {name: groups[name] for name in layers}, config)
    _mask_groups(model, twin, graph, pruned)
    # The twin holds exactly the masked model's weights, so cutting its channels gives the smaller model.
    compact = cut_channels(twin, graph, pruned)
    return PrunedModels(model, compact if config.remove else None, pruned, {name: len(groups[name][0].idxs) for name in layers}, compact)


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


def _choose_channels(model: nn.Module, groups: dict[str, tp.dependency.Group], config: PruneConfig) -> dict[str, list[int]]:
    generator = torch.Generator().manual_seed(config.seed)
    modules = dict(model.named_modules())
    scores = {name: _channel_scores(group, config.method, generator) for name, group in groups.items()}
    dead = {name: _dead_channels(modules[name]) for name in groups}
    channels = {name: len(score) for name, score in scores.items()}
    if config.scope == "global":
        pruned = _global_channel_choice(scores, dead, config.amount)
        for name in groups:
            if len(pruned[name]) >= channels[name]:
                raise UserError(f"global channel pruning at {config.amount:.0%} would remove every channel of {name}; lower the amount or use scope 'layer'")
        return pruned
    pruned = {}
    for name in groups:
        count = round(config.amount_for(name) * channels[name])
        if count >= channels[name]:
            raise UserError(f"pruning {config.amount_for(name):.0%} of {name}'s {channels[name]} channels would leave none; lower the amount")
        pruned[name] = _extend_choice(scores[name], dead[name], count)
    return pruned


def _channel_groups(twin: nn.Module, graph: tp.DependencyGraph) -> dict[str, tp.dependency.Group]:
    names = {module: name for name, module in twin.named_modules()}
    classifier = dict(twin.named_modules())[classifier_name(twin)]
    groups = {names[group[0].dep.target.module]: group for group in graph.get_all_groups(ignored_layers=[classifier], root_module_types=PRUNABLE_TYPES)}
    return {name: groups[name] for name in names.values() if name in groups}  # in the model's own layer order


def _channel_scores(group: tp.dependency.Group, method: str, generator: torch.Generator) -> torch.Tensor:
    """Per-channel importance of the group's root layer (higher = keep): its filters' L1 or Ln norm."""
    if method == "random":
        return torch.rand(len(group[0].idxs), generator=generator)
    norm = 1 if method == "l1" else LN_NORM
    # group_reduction "first": the root filter's own norm, as torch.nn.utils.prune.ln_structured ranks.
    importance = tp.importance.MagnitudeImportance(p=norm, group_reduction="first", normalizer=None)(group)
    return importance.detach().cpu().pow(1.0 / norm)


def _dead_channels(module: nn.Module) -> list[int]:
    """Output channels already masked to zero (from an earlier step of an iterative schedule)."""
    mask = _current_mask(module, "weight")
    return torch.nonzero(mask.flatten(1).sum(1) == 0).flatten().tolist()


def _extend_choice(scores: torch.Tensor, dead: list[int], count: int) -> list[int]:
    """`count` channels to prune in all: the dead ones, then the lowest-scoring live ones."""
    alive = [i for i in range(len(scores)) if i not in set(dead)]
    extra = max(0, count - len(dead))
    ranked = sorted(alive, key=lambda i: float(scores[i]))
    return sorted([*dead, *ranked[:extra]])


def _global_channel_choice(scores: dict[str, torch.Tensor], dead: dict[str, list[int]], amount: float) -> dict[str, list[int]]:
    """One threshold across layers. Each layer's scores are divided by their live mean first, so a
    layer with naturally larger filters is not spared just for its scale (Torch-Pruning's 'mean' normaliser)."""
    total = sum(len(score) for score in scores.values())
    extra = max(0, round(amount * total) - sum(len(d) for d in dead.values()))
    candidates = []
    for name, score in scores.items():
        alive = [i for i in range(len(score)) if i not in set(dead[name])]
        mean = float(score[alive].mean()) if alive else 1.0
        candidates += [(float(score[i]) / max(mean, 1e-12), name, i) for i in alive]
    chosen = sorted(candidates)[:extra]
    return {name: sorted([*dead[name], *(i for _, layer, i in chosen if layer == name)]) for name in scores}


def _mask_groups(model: nn.Module, twin: nn.Module, graph: tp.DependencyGraph, pruned: dict[str, list[int]]) -> None:
    """Zero, in `model`, every tensor entry that removing the channels would cut out."""
    twin_modules, twin_names = dict(twin.named_modules()), {m: n for n, m in twin.named_modules()}
    masks: dict[tuple[str, str], torch.Tensor] = {}

    def zero(name: str, tensor_name: str, shape: torch.Size, dim: int, indices: list[int]) -> None:
        mask = masks.setdefault((name, tensor_name), torch.ones(shape))
        mask.index_fill_(dim, torch.tensor(indices, dtype=torch.long), 0.0)

    for root, indices in pruned.items():
        if not indices:
            continue
        root_module = twin_modules[root]
        group = graph.get_pruning_group(root_module, graph.get_pruner_of_module(root_module).prune_out_channels, indices)
        for dependency, group_indices in group:
            target = dependency.target.module
            if not isinstance(target, nn.Module) or not any(True for _ in target.parameters(recurse=False)):
                continue  # activations, pooling, flatten: nothing to mask
            name = twin_names[target]
            if isinstance(target, NORM_TYPES):
                for tensor_name in ("weight", "bias"):
                    if getattr(target, tensor_name, None) is not None:
                        zero(name, tensor_name, getattr(target, tensor_name).shape, 0, group_indices)
            elif isinstance(target, PRUNABLE_TYPES) and getattr(target, "groups", 1) == 1:
                if graph.is_out_channel_pruning_fn(dependency.handler):
                    zero(name, "weight", target.weight.shape, 0, group_indices)
                    if target.bias is not None:
                        zero(name, "bias", target.bias.shape, 0, group_indices)
                else:
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

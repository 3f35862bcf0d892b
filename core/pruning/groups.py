"""Coupled channel groups, explained: which layers lose the same channels, and why.

Channel pruning removes channels per group of Torch-Pruning's dependency graph
(core.foundation.models.channels.channel_groups). This module says, for each group, what ties its
layers together, in words a class can read:

- a residual add (or a multiply, as in squeeze-excitation) joins several layers' outputs, so they
  lose the same channels ("tied by the add in layer1.0, layer1.1 (residual)");
- a depthwise convolution computes each output channel from its own input channel, so its input
  and output lose the same channels (and a grouped convolution the same positions in every group);
- an attention's heads are removed whole (their q, k and v rows and their output-projection columns);
- a LayerNorm that normalises across the channels leaves the group whole.

A group with none of these is one layer: its output channels, its batch norm and the inputs of the
layers that read them. Which add or multiply ties a group comes from one traced forward pass that
notes the module each elementwise operation runs in and the nearest layers whose outputs it joins.

    groups = coupled_groups(model, example_input)          # once per model: builds the graph
    groups.after(pruned.pruned_channels)                   # cheap: how many channels each group lost
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from core.foundation.models.channels import ChannelGroup, channel_groups, dependency_graph, plain_copy
from core.foundation.models.vit import HeadAttention

# The kinds of coupling, most telling first: a group shows the first that applies as its `coupling`.
LEFT_WHOLE = "left whole"
ATTENTION_HEADS = "attention heads"
RESIDUAL = "residual add"
MULTIPLY = "multiply"
GROUPED = "grouped conv"
DEPTHWISE = "depthwise conv"
TIED = "tied outputs"
ONE_LAYER = "one layer"
COUPLINGS = (LEFT_WHOLE, ATTENTION_HEADS, RESIDUAL, MULTIPLY, GROUPED, DEPTHWISE, TIED, ONE_LAYER)

OUT, IN = "out", "in"
_ADD_NAMES = frozenset({"add", "add_", "__add__", "__iadd__", "__radd__"})
_MUL_NAMES = frozenset({"mul", "mul_", "__mul__", "__imul__", "__rmul__"})


@dataclass(frozen=True)
class GroupMember:
    """One layer a group's channels touch."""

    layer: str  # the module's name, e.g. "layer1.0.conv2"
    kind: str  # its type: "Conv2d", "BatchNorm2d", "Linear", "attention", "LayerNorm", ...
    side: str  # OUT: it loses output channels (filters); IN: it loses the input channels it reads
    order: int  # its place in network order (first call in a forward pass)

    @property
    def is_norm(self) -> bool:
        return "Norm" in self.kind


@dataclass(frozen=True)
class CoupledGroup:
    """Channels removed together: what removing one of the root's output channels removes everywhere."""

    root: str  # the root layer: the key of PrunedModels.pruned_channels
    members: tuple[GroupMember, ...]  # in network order
    coupling: str  # the most telling of COUPLINGS that applies
    couplings: tuple[str, ...]  # every one that applies, in COUPLINGS' order
    why: str  # one line: "tied by the add in layer1.0, layer1.1 (residual)"
    ties: tuple[str, ...]  # where the tie is: the modules the adds/multiplies run in, the depthwise convs, the blocking norm
    channels: int  # the root's output channels before pruning
    units: int  # what is removed together: channels, positions of every conv group, or heads
    unit: str  # "channels", "positions in 6 convolution groups", "attention heads"
    blocked_by: str | None = None  # why the group cannot lose channels exactly, or None
    lost: int | None = None  # channels removed by a prune (after()), None when not pruned yet

    @property
    def output_layers(self) -> tuple[str, ...]:
        """The layers (norms left out) whose output channels are these channels."""
        return tuple(member.layer for member in self.members if member.side == OUT and not member.is_norm)

    @property
    def is_coupled(self) -> bool:
        """More than one layer's outputs, or a layer's inputs and outputs, or whole heads go together."""
        return self.coupling != ONE_LAYER

    @property
    def kept(self) -> int | None:
        return None if self.lost is None else self.channels - self.lost


@dataclass(frozen=True)
class ChannelGroups:
    """Every coupled channel group of a model, in network order."""

    model: str  # the model's registry name (or its class name)
    groups: tuple[CoupledGroup, ...]
    layers: tuple[str, ...]  # every member layer, in network order

    @property
    def coupled(self) -> tuple[CoupledGroup, ...]:
        return tuple(group for group in self.groups if group.is_coupled)

    @property
    def pruned(self) -> bool:
        return any(group.lost is not None for group in self.groups)

    def group(self, root: str) -> CoupledGroup:
        return next(group for group in self.groups if group.root == root)

    def groups_of(self, layer: str) -> tuple[CoupledGroup, ...]:
        return tuple(group for group in self.groups if any(member.layer == layer for member in group.members))

    def after(self, pruned_channels: dict[str, list[int]]) -> ChannelGroups:
        """The same groups with the channels a prune removed from each (PrunedModels.pruned_channels)."""
        return replace(self, groups=tuple(replace(group, lost=len(pruned_channels.get(group.root, ()))) for group in self.groups))


@dataclass(frozen=True)
class _Operation:
    """An add or multiply seen in the traced pass: the module it ran in and the layers whose outputs it joins."""

    kind: str  # "add" or "multiply"
    module: str  # the innermost module running when it was called ("" for the model itself)
    inputs: frozenset[str]


def coupled_groups(model: nn.Module, example_input: torch.Tensor, name: str | None = None) -> ChannelGroups:
    """Every channel group of `model` (the classifier's outputs are never one), with what couples it
    (`name`: the model's registry name, for titles; its class name by default)."""
    twin = plain_copy(model)
    groups = channel_groups(twin, dependency_graph(twin, example_input))
    modules = dict(twin.named_modules())
    order, operations = _trace(twin, example_input)
    ranked = {name: index for index, name in enumerate([*order, *(name for name in modules if name not in order)])}
    described = tuple(_describe(group, modules, ranked, operations) for group in groups.values())
    layers = sorted({member.layer for group in described for member in group.members}, key=lambda name: ranked.get(name, len(ranked)))
    return ChannelGroups(name or type(model).__name__, described, tuple(layers))


def _describe(group: ChannelGroup, modules: dict[str, nn.Module], ranked: dict[str, int], operations: list[_Operation]) -> CoupledGroup:
    members = _members(group, modules, ranked)
    outputs = {member.layer for member in members if member.side == OUT}
    found: dict[str, tuple[list[str], str]] = {}  # coupling -> (where, the line that says why)
    if group.blocked_by is not None:
        found[LEFT_WHOLE] = ([group.blocked_by.split(" ", 1)[0]], f"left whole: {group.blocked_by}")
    if group.kind == ATTENTION_HEADS:
        attention = group.root.rpartition(".")[0]
        found[ATTENTION_HEADS] = ([attention], f"{attention}'s heads are removed whole: {len(group.units)} heads of {len(group.units[0])} q, k and v rows")
    for kind, coupling in (("add", RESIDUAL), ("multiply", MULTIPLY)):
        places = _unique(operation.module or "the model" for operation in operations if operation.kind == kind and operation.inputs & outputs)
        if places:
            what = "residual" if kind == "add" else "their outputs multiplied, as in squeeze-excitation"
            found[coupling] = (places, f"tied by the {kind} in {', '.join(places)} ({what})")
    convs = [(member.layer, modules[member.layer]) for member in members if isinstance(modules.get(member.layer), nn.Conv2d) and modules[member.layer].groups > 1]
    depthwise = [name for name, conv in convs if conv.groups == conv.in_channels == conv.out_channels]
    grouped = [name for name, conv in convs if name not in depthwise]
    if grouped:
        found[GROUPED] = (grouped, f"{', '.join(grouped)} {'is a grouped conv' if len(grouped) == 1 else 'are grouped convs'}: the same positions go in every group ({group.kind})")
    if depthwise:
        verb = "is depthwise" if len(depthwise) == 1 else "are depthwise"
        found[DEPTHWISE] = (depthwise, f"{', '.join(depthwise)} {verb}: each output channel reads only its own input channel, so its input and output lose the same channels")
    layers_out = [member.layer for member in members if member.side == OUT and not member.is_norm]
    if len(layers_out) > 1 and not ({RESIDUAL, MULTIPLY, DEPTHWISE, GROUPED} & set(found)):
        found[TIED] = (layers_out, f"the dependency graph ties the outputs of {', '.join(layers_out)}")
    if not found:
        norm = " (with its batch norm)" if any(member.is_norm for member in members) else ""
        found[ONE_LAYER] = ([group.root], f"one layer: {group.root}'s outputs{norm} and the inputs of the layers that read them")
    couplings = tuple(coupling for coupling in COUPLINGS if coupling in found)
    ties = _unique(place for coupling in couplings for place in found[coupling][0])
    why = "; ".join(found[coupling][1] for coupling in couplings)
    return CoupledGroup(group.root, members, couplings[0], couplings, why, tuple(ties), group.channels, len(group.units), group.kind, group.blocked_by)


def _members(group: ChannelGroup, modules: dict[str, nn.Module], ranked: dict[str, int]) -> tuple[GroupMember, ...]:
    seen: dict[tuple[str, str], GroupMember] = {}
    for entry in group.members:
        layer, _, side = entry.rpartition(" (")
        side = side.rstrip(")")
        module = modules.get(layer)
        kind = "attention" if isinstance(module, HeadAttention) else type(module).__name__ if module is not None else "parameter"
        seen.setdefault((layer, side), GroupMember(layer, kind, side, ranked.get(layer, len(ranked))))
    return tuple(sorted(seen.values(), key=lambda member: (member.order, member.side != OUT)))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _ElementwiseRecorder(TorchFunctionMode):
    """Notes every add and multiply of two tensors: the module running it and its operands' grad_fns."""

    def __init__(self, stack: list[str]):
        super().__init__()
        self.stack, self.calls = stack, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _ADD_NAMES or name in _MUL_NAMES:
            # Read before the call: an in-place add (out += identity) makes itself its first operand's grad_fn.
            grad_fns = [arg.grad_fn for arg in args[:2] if isinstance(arg, torch.Tensor) and arg.grad_fn is not None]
            if len(grad_fns) == 2:
                self.calls.append(("add" if name in _ADD_NAMES else "multiply", self.stack[-1] if self.stack else "", grad_fns))
        return func(*args, **(kwargs or {}))


def _trace(model: nn.Module, example_input: torch.Tensor) -> tuple[list[str], list[_Operation]]:
    """One forward pass in eval mode: the modules in the order they first run, and every add or
    multiply with the nearest layers (modules with their own weights) upstream of each operand."""
    stack: list[str] = []
    order: dict[str, None] = {}
    produced: dict[object, str] = {}  # a layer's output grad_fn -> the layer
    keep_alive: list[object] = []  # ids of grad_fns must not be reused while the pass runs
    handles = []
    for name, module in model.named_modules():
        # A layer: a module with weights of its own and no submodules (a conv, a linear, a norm), or an attention.
        layer = isinstance(module, HeadAttention) or (any(True for _ in module.parameters(recurse=False)) and not any(True for _ in module.children()))

        def before(_module, _inputs, name=name):
            stack.append(name)
            order.setdefault(name, None)

        def after(_module, _inputs, output, name=name, layer=layer):
            stack.pop()
            tensor = output[0] if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor) else output
            if layer and isinstance(tensor, torch.Tensor) and tensor.grad_fn is not None:
                produced.setdefault(tensor.grad_fn, name)
                keep_alive.append(tensor.grad_fn)

        if name:  # the model itself is not a place an operation "runs in"
            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    recorder = _ElementwiseRecorder(stack)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), recorder:
            model(example_input[:1].detach().clone().requires_grad_(True))
        operations = [_Operation(kind, module, frozenset(name for grad_fn in grad_fns for name in _nearest_layers(grad_fn, produced))) for kind, module, grad_fns in recorder.calls]
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return list(order), operations


def _nearest_layers(grad_fn, produced: dict[object, str]) -> set[str]:
    """The layers whose outputs reach this autograd node through weight-free operations only."""
    found, seen, frontier = set(), set(), [grad_fn]
    while frontier:
        node = frontier.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node in produced:
            found.add(produced[node])
            continue
        frontier += [parent for parent, _ in getattr(node, "next_functions", ())]
    return found


__all__ = [
    "ATTENTION_HEADS",
    "COUPLINGS",
    "DEPTHWISE",
    "GROUPED",
    "LEFT_WHOLE",
    "MULTIPLY",
    "ONE_LAYER",
    "RESIDUAL",
    "TIED",
    "ChannelGroups",
    "CoupledGroup",
    "GroupMember",
    "coupled_groups",
]

"""Per-tensor against per-channel int8 weights, after batch-norm folding: why one scale per tensor
collapses a depthwise network and leaves a ResNet alone (Krishnamoorthi 2018, arXiv 1806.08342:
MobileNet-v2 post-training int8 with per-layer weights 0.1% top-1, per-channel 69.8%, float 71.9%;
ResNet-50 75.0% either way).

    lesson = granularity_lesson(model, evaluator)      # a GranularityLesson: accuracies, every layer's ranges and errors
    lesson.layer(lesson.worst_layer).ranges            # one layer's weight range per output channel, before and after folding

A deployed int8 model folds each batch norm into the convolution before it (W' = W * gamma /
sqrt(var + eps), per output channel), so the weights that get quantized are the folded ones. A
depthwise convolution's output channel sees one input channel only: a channel whose activations
barely vary gets a tiny running variance, hence a huge folded scale, and its range dwarfs the
others'. One scale for the whole tensor must cover that channel, so the small channels' weights
round to a few codes or to zero. A dense conv mixes every input channel into each output, its
folded channels stay within a few times of each other, and one scale serves them all.

Only weights are fake-quantized here (symmetric, torch's fake-quantize ops through
core.quantization.fake_quant); activations stay float and biases stay fp32, so the accuracy gap is
the weight granularity alone.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from core.foundation.training.quick_evaluation import QuickEvaluator
from core.quantization.apply import fake_quantize_weights, weight_error
from core.quantization.config import QuantSpec
from core.quantization.fake_quant import fake_quantize, quantizable_layers

LESSON_BITS = 8


@dataclass(frozen=True)
class FoldedPair:
    """A convolution and the batch norm folded into it, by module name."""

    conv: str
    batch_norm: str


@dataclass(frozen=True)
class ChannelRanges:
    """One layer's weight range per output channel, before and after folding its batch norm (the
    same when none follows it), and the per-tensor int8 grid of the folded weight."""

    layer: str
    kind: str  # "depthwise conv", "grouped conv", "conv" or "linear"
    batch_norm: str  # the batch norm folded into this layer; "" when none follows it
    minimum_before: tuple[float, ...] = field(repr=False)  # one per output channel
    maximum_before: tuple[float, ...] = field(repr=False)
    minimum_after: tuple[float, ...] = field(repr=False)
    maximum_after: tuple[float, ...] = field(repr=False)
    quant_max: int  # the largest symmetric code: 127 at 8 bits

    @property
    def channels(self) -> int:
        return len(self.minimum_after)

    @property
    def abs_max_before(self) -> tuple[float, ...]:
        return tuple(max(-low, high) for low, high in zip(self.minimum_before, self.maximum_before))

    @property
    def abs_max_after(self) -> tuple[float, ...]:
        return tuple(max(-low, high) for low, high in zip(self.minimum_after, self.maximum_after))

    @property
    def per_tensor_abs_max_before(self) -> float:
        return max(self.abs_max_before)

    @property
    def per_tensor_abs_max_after(self) -> float:
        return max(self.abs_max_after)

    @property
    def per_tensor_step_after(self) -> float:
        """The folded weight's per-tensor quantization step: |w| below half of it rounds to 0."""
        return self.per_tensor_abs_max_after / self.quant_max


@dataclass(frozen=True)
class LayerGranularity:
    """One layer's folded weight quantized with one scale per tensor and one per output channel."""

    layer: str
    kind: str
    batch_norm: str  # "" when none was folded into it
    per_tensor_mse: float
    per_channel_mse: float
    per_tensor_sqnr_db: float
    per_channel_sqnr_db: float
    channel_range_ratio: float  # the widest output channel's max |w| over the median channel's, after folding
    channels_zeroed_per_tensor: int  # output channels all of whose nonzero weights round to 0 with one scale per tensor
    weights_zeroed_per_tensor_fraction: float  # share of the nonzero weights that round to 0 with one scale per tensor
    weights_zeroed_per_channel_fraction: float
    ranges: ChannelRanges = field(repr=False)

    @property
    def channels(self) -> int:
        return self.ranges.channels


@dataclass(frozen=True)
class GranularityLesson:
    """The model with its batch norms folded, its weights fake-quantized per tensor and per channel."""

    bits: int
    eval_images: int  # test images the three accuracies were measured on
    accuracy_float: float  # 0..1, the float model (folding changes no prediction)
    accuracy_per_tensor: float  # 0..1, folded weights quantized with one scale per tensor
    accuracy_per_channel: float  # 0..1, one scale per output channel
    folded: tuple[FoldedPair, ...]
    layers: tuple[LayerGranularity, ...] = field(repr=False)
    note: str = ""  # why no batch norm could be folded, when the model has some

    @property
    def worst_layer(self) -> str:
        """Where one scale per tensor hurts most: the widest spread of channel ranges after folding."""
        return max(self.layers, key=lambda layer: layer.channel_range_ratio).layer

    def layer(self, name: str) -> LayerGranularity:
        return next(layer for layer in self.layers if layer.layer == name)

    @property
    def channels_zeroed_per_tensor(self) -> int:
        return sum(layer.channels_zeroed_per_tensor for layer in self.layers)

    @property
    def channels(self) -> int:
        return sum(layer.channels for layer in self.layers)


# ---- batch-norm folding ---------------------------------------------------------------------------------


class UntraceableModel(Exception):
    """torch.fx could not trace the model, so which batch norm follows which conv is unknown."""


def conv_batch_norm_pairs(model: nn.Module) -> list[FoldedPair]:
    """Every Conv2d whose output goes only into a BatchNorm2d with running statistics, from the
    traced graph (module order alone cannot tell: a block may register a norm it applies elsewhere).
    A module called twice is left alone: folding it would change its other call too."""
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as error:  # fx refuses data-dependent control flow with assorted exception types
        raise UntraceableModel(f"torch.fx cannot trace {type(model).__name__} ({type(error).__name__}), so its batch norms are not folded") from error
    modules = dict(traced.named_modules())
    calls = Counter(node.target for node in traced.graph.nodes if node.op == "call_module")
    pairs = []
    for node in traced.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d) or len(node.args) != 1:
            continue
        producer = node.args[0]
        if not isinstance(producer, torch.fx.Node) or producer.op != "call_module" or not isinstance(modules[producer.target], nn.Conv2d):
            continue
        conv, norm = modules[producer.target], modules[node.target]
        if len(producer.users) != 1 or calls[producer.target] != 1 or calls[node.target] != 1 or norm.running_var is None or conv.out_channels != norm.num_features:
            continue
        pairs.append(FoldedPair(producer.target, node.target))
    return pairs


def fold_batch_norms(model: nn.Module) -> tuple[nn.Module, list[FoldedPair]]:
    """A CPU copy of `model` in eval mode with each batch norm folded into the conv before it (the
    norm replaced by Identity): the weights a deployed int8 model quantizes, same outputs."""
    folded = copy.deepcopy(model).cpu().eval()
    pairs = conv_batch_norm_pairs(folded)
    with torch.no_grad():
        for pair in pairs:
            conv, norm = folded.get_submodule(pair.conv), folded.get_submodule(pair.batch_norm)
            conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias)
            parent_name, _, child_name = pair.batch_norm.rpartition(".")
            setattr(folded.get_submodule(parent_name), child_name, nn.Identity())
    return folded, pairs


# ---- the lesson ---------------------------------------------------------------------------------------


def layer_kind(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return "linear"
    if layer.groups == 1:
        return "conv"
    return "depthwise conv" if layer.groups == layer.in_channels else "grouped conv"


def channel_extremes(weight: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Each output channel's (dim 0) smallest and largest weight."""
    flat = weight.detach().float().reshape(weight.shape[0], -1)
    return tuple(flat.min(dim=1).values.tolist()), tuple(flat.max(dim=1).values.tolist())


def _range_ratio(abs_max: torch.Tensor) -> float:
    """Widest channel over the median channel; channels with no weight left (pruned) do not count."""
    alive = abs_max[abs_max > 0]
    if alive.numel() == 0:
        return 1.0
    return float(alive.max() / alive.median())


def _zeroed(weight: torch.Tensor, quantized: torch.Tensor) -> tuple[int, float]:
    """(output channels whose nonzero weights all became 0, share of nonzero weights that became 0)."""
    nonzero = weight.reshape(weight.shape[0], -1) != 0
    became_zero = nonzero & (quantized.reshape(weight.shape[0], -1) == 0)
    channels = int(((became_zero.sum(dim=1) == nonzero.sum(dim=1)) & nonzero.any(dim=1)).sum())
    return channels, float(became_zero.sum()) / max(1, int(nonzero.sum()))


def layer_granularity(name: str, original: nn.Module, folded: nn.Module, batch_norm: str, bits: int) -> LayerGranularity:
    """One layer's folded weight at `bits`, symmetric, with one scale per tensor and per output channel."""
    weight = folded.weight.detach().cpu().float()
    per_tensor_spec, per_channel_spec = QuantSpec(bits, False, True), QuantSpec(bits, True, True)
    per_tensor, per_channel = fake_quantize(weight, per_tensor_spec), fake_quantize(weight, per_channel_spec)
    tensor_mse, tensor_sqnr = weight_error(weight, per_tensor)
    channel_mse, channel_sqnr = weight_error(weight, per_channel)
    channels_zeroed, tensor_zeroed = _zeroed(weight, per_tensor)
    _, channel_zeroed = _zeroed(weight, per_channel)
    minimum_before, maximum_before = channel_extremes(original.weight)
    minimum_after, maximum_after = channel_extremes(weight)
    ranges = ChannelRanges(name, layer_kind(folded), batch_norm, minimum_before, maximum_before, minimum_after, maximum_after, per_tensor_spec.quant_max)
    abs_max = weight.reshape(weight.shape[0], -1).abs().max(dim=1).values
    return LayerGranularity(
        layer=name,
        kind=ranges.kind,
        batch_norm=batch_norm,
        per_tensor_mse=tensor_mse,
        per_channel_mse=channel_mse,
        per_tensor_sqnr_db=tensor_sqnr,
        per_channel_sqnr_db=channel_sqnr,
        channel_range_ratio=_range_ratio(abs_max),
        channels_zeroed_per_tensor=channels_zeroed,
        weights_zeroed_per_tensor_fraction=tensor_zeroed,
        weights_zeroed_per_channel_fraction=channel_zeroed,
        ranges=ranges,
    )


def quantized_weights_accuracy(folded: nn.Module, evaluator: QuickEvaluator, spec: QuantSpec) -> float:
    """Accuracy of a copy of the folded model whose conv and linear weights are fake-quantized as `spec` says."""
    model = copy.deepcopy(folded)
    fake_quantize_weights(model, spec)
    return evaluator.accuracy(model.to(evaluator.device))


def granularity_lesson(model: nn.Module, evaluator: QuickEvaluator, bits: int = LESSON_BITS, accuracy_float: float | None = None) -> GranularityLesson:
    """Fold `model`'s batch norms, then measure every conv and linear layer's weight error and the
    model's accuracy on `evaluator`'s test images with its weights at `bits`, symmetric, per tensor
    and per channel (activations float). `accuracy_float`: the float model's accuracy on the same
    images, when the caller has it (one forward pass fewer); measured on the folded model otherwise."""
    note = ""
    try:
        folded, pairs = fold_batch_norms(model)
    except UntraceableModel as error:
        folded, pairs = copy.deepcopy(model).cpu().eval(), []
        if any(isinstance(module, nn.BatchNorm2d) for module in model.modules()):
            note = str(error)
    norm_of = {pair.conv: pair.batch_norm for pair in pairs}
    originals = quantizable_layers(model)
    layers = tuple(layer_granularity(name, originals[name], layer, norm_of.get(name, ""), bits) for name, layer in quantizable_layers(folded).items())
    if accuracy_float is None:
        accuracy_float = evaluator.accuracy(folded.to(evaluator.device))
    return GranularityLesson(
        bits=bits,
        eval_images=evaluator.images,
        accuracy_float=accuracy_float,
        accuracy_per_tensor=quantized_weights_accuracy(folded, evaluator, QuantSpec(bits, False, True)),
        accuracy_per_channel=quantized_weights_accuracy(folded, evaluator, QuantSpec(bits, True, True)),
        folded=tuple(pairs),
        layers=layers,
        note=note,
    )


# Points lost per tensor beyond those lost per channel that the page's sentence calls a collapse, and a gap.
COLLAPSE_POINTS, GAP_POINTS = 5.0, 1.0
KRISHNAMOORTHI = "Krishnamoorthi (2018, arXiv 1806.08342)"


def lesson_sentences(lesson: GranularityLesson, shown: str) -> str:
    """What the page's two figures mean, in two sentences: what folding does to the ranges, then what
    this model's accuracies show beside Krishnamoorthi's."""
    first = (
        "Folding each batch norm into its convolution multiplies every output channel's weights by γ/√(var+ε), so a channel whose variance is tiny "
        "(common in depthwise convolutions, where each channel sees one input channel) grows far wider than the rest, and one scale per tensor must "
        "stretch to cover that widest channel: the narrow channels' weights then round to a few codes or to zero (bars near or below the dashed line)."
    )
    tensor_change = 100 * (lesson.accuracy_per_tensor - lesson.accuracy_float)  # points, negative when int8 loses accuracy
    channel_change = 100 * (lesson.accuracy_per_channel - lesson.accuracy_float)
    changes = f"{tensor_change:+.1f} points per tensor, {channel_change:+.1f} per channel"
    if channel_change - tensor_change >= COLLAPSE_POINTS:
        second = (
            f"Here that is the collapse ({changes}) that {KRISHNAMOORTHI} measured on MobileNet-v2 (0.1% top-1 per tensor, 69.8% per channel, "
            "71.9% float): give every output channel its own scale, as the x86 int8 backend does."
        )
    elif channel_change - tensor_change >= GAP_POINTS:
        second = (
            f"Here the gap is {channel_change - tensor_change:.1f} points ({changes}), small beside the collapse {KRISHNAMOORTHI} measured on an "
            f"ImageNet-trained MobileNet-v2 (0.1% top-1 per tensor, 69.8% per channel, 71.9% float), whose folded depthwise channels differ far more "
            f"than this model's (the widest in {shown} is {lesson.layer(shown).channel_range_ratio:.1f}× the median)."
        )
    else:
        second = (
            f"Here the widest channel of {shown} is {lesson.layer(shown).channel_range_ratio:.1f}× the median one and one scale serves the model ({changes}), "
            f"as it served ResNet-50 in {KRISHNAMOORTHI} (75.0% either way); an ImageNet-trained MobileNet-v2, whose folded depthwise channels differ far "
            "more, fell to 0.1% per tensor against 69.8% per channel."
        )
    return f"{first} {second}"

"""Uniform quantization at 2..8 bits with torch's fake-quantize ops: the integer codes, their
scales and zero points, and modules that fake-quantize weights and activations in a forward pass.

Symmetric codes use the restricted range [-(2^(b-1) - 1), 2^(b-1) - 1] so that zero is exact and
+max and -max are both representable; affine codes use [0, 2^b - 1] with a zero point chosen so
that 0.0 is exact (a ReLU's zeros and a conv's padding stay exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.quantization.config import MAX_BITS, MIN_BITS, QuantSpec  # noqa: F401 (the configs own the range and the spec; QuantSpec re-exported)

# A constant tensor (all zeros, say) still needs a positive scale.
SCALE_EPS = 1e-12


@dataclass
class QuantizedTensor:
    """Integer codes and the parameters that map them back: value = (code - zero_point) * scale."""

    codes: torch.Tensor  # int8 (symmetric) or uint8 (affine) container; only `bits` of each are used
    scale: torch.Tensor  # fp32, one per channel (axis 0) or a single element
    zero_point: torch.Tensor  # int32, same shape as scale; all zero when symmetric
    spec: QuantSpec

    def dequantize(self) -> torch.Tensor:
        shape = (-1,) + (1,) * (self.codes.dim() - 1) if self.spec.per_channel else ()
        return (self.codes.float() - self.zero_point.view(shape).float()) * self.scale.view(shape)


def qparams(minimum: torch.Tensor, maximum: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale (fp32) and zero point (int32) for observed ranges; tensors of any matching shape."""
    minimum = torch.minimum(minimum, torch.zeros_like(minimum))
    maximum = torch.maximum(maximum, torch.zeros_like(maximum))
    if spec.symmetric:
        scale = torch.maximum(-minimum, maximum) / spec.quant_max
        zero_point = torch.zeros_like(scale, dtype=torch.int32)
    else:
        scale = (maximum - minimum) / (spec.quant_max - spec.quant_min)
        zero_point = (spec.quant_min - torch.round(minimum / scale.clamp_min(SCALE_EPS))).clamp(spec.quant_min, spec.quant_max).to(torch.int32)
    return scale.clamp_min(SCALE_EPS).float(), zero_point


def weight_qparams(weight: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Min/max qparams of a weight: one pair per output channel (dim 0) or one for the tensor."""
    values = weight.detach()
    if spec.per_channel:
        flat = values.reshape(values.shape[0], -1)
        return qparams(flat.min(dim=1).values, flat.max(dim=1).values, spec)
    return qparams(values.min().reshape(1), values.max().reshape(1), spec)


def fake_quantize(tensor: torch.Tensor, spec: QuantSpec, scale: torch.Tensor | None = None, zero_point: torch.Tensor | None = None) -> torch.Tensor:
    """Quantize then dequantize with torch's ops; gradients pass straight through inside the range."""
    if scale is None or zero_point is None:
        scale, zero_point = weight_qparams(tensor, spec)
    if spec.per_channel:
        return torch.fake_quantize_per_channel_affine(tensor, scale, zero_point, 0, spec.quant_min, spec.quant_max)
    return torch.fake_quantize_per_tensor_affine(tensor, scale.reshape(()), zero_point.reshape(()), spec.quant_min, spec.quant_max)


def quantize_tensor(tensor: torch.Tensor, spec: QuantSpec) -> QuantizedTensor:
    """The integer codes a deployed model would store for `tensor` under `spec`, read back from
    torch's fake-quantize op so that ties round exactly as it rounds them."""
    scale, zero_point = weight_qparams(tensor, spec)
    shape = (-1,) + (1,) * (tensor.dim() - 1) if spec.per_channel else ()
    dequantized = fake_quantize(tensor.detach(), spec, scale, zero_point)
    codes = torch.clamp(torch.round(dequantized / scale.view(shape)) + zero_point.view(shape), spec.quant_min, spec.quant_max)
    return QuantizedTensor(codes.to(torch.int8 if spec.symmetric else torch.uint8), scale, zero_point, spec)


def quantizable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers whose weights quantization changes: every Conv2d and Linear, by module name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}


class WeightFakeQuant(nn.Module):
    """A parametrization: the layer computes with its fake-quantized weight (QAT below 8 bits)."""

    def __init__(self, spec: QuantSpec):
        super().__init__()
        self.spec = spec

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.spec)


class ActivationFakeQuant(nn.Module):
    """Per-tensor affine fake quantization of a layer's input, with an observed range.

    `observing` updates the range: plain min/max while calibrating (eval, not yet enabled), a moving
    average while training; an enabled quantizer in eval mode keeps its range fixed.
    `enabled` applies the fake quantization."""

    def __init__(self, bits: int, momentum: float = 0.01):
        super().__init__()
        self.spec = QuantSpec(bits=bits, per_channel=False, symmetric=False)
        self.momentum = momentum
        self.observing = True
        self.enabled = False
        self.register_buffer("minimum", torch.tensor(float("inf")))
        self.register_buffer("maximum", torch.tensor(float("-inf")))

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.minimum)) and bool(torch.isfinite(self.maximum))

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        return qparams(self.minimum.reshape(1), self.maximum.reshape(1), self.spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing and (self.training or not self.enabled):
            low, high = x.detach().min(), x.detach().max()
            if self.training and self.calibrated:
                self.minimum.lerp_(low, self.momentum)
                self.maximum.lerp_(high, self.momentum)
            else:
                self.minimum.copy_(torch.minimum(self.minimum, low))
                self.maximum.copy_(torch.maximum(self.maximum, high))
        if not self.enabled:
            return x
        scale, zero_point = self.qparams()
        return fake_quantize(x, self.spec, scale, zero_point)


def attach_activation_quantizers(model: nn.Module, bits: int) -> dict[str, ActivationFakeQuant]:
    """An input fake-quantizer before every Conv2d and Linear, run by a forward pre-hook."""
    quantizers: dict[str, ActivationFakeQuant] = {}
    for name, layer in quantizable_layers(model).items():
        quantizer = ActivationFakeQuant(bits).to(next(layer.parameters()).device)
        layer.add_module("input_quantizer", quantizer)
        layer.register_forward_pre_hook(lambda module, args: (module.input_quantizer(args[0]), *args[1:]))
        quantizers[name] = quantizer
    return quantizers


@torch.no_grad()
def calibrate_activations(model: nn.Module, quantizers: dict[str, ActivationFakeQuant], inputs: torch.Tensor, batch_size: int = 500) -> None:
    """Observe each quantized layer's input range over `inputs` (float, normalised), then freeze it."""
    model.eval()
    for quantizer in quantizers.values():
        quantizer.observing, quantizer.enabled = True, False
    for chunk in inputs.split(batch_size):
        model(chunk)
    for quantizer in quantizers.values():
        quantizer.observing, quantizer.enabled = False, True

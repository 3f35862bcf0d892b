"""Dynamic int8 with torchao's quantize_: Linear weights become int8 (one scale per output row) and
activations are quantized on the fly at run time. There is no dynamic Conv2d kernel, so every
convolution stays fp32; the report says so instead of counting them as quantized.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from core.quantization.fake_quant import QuantizedTensor, QuantSpec

# torchao's Int8DynamicActivationInt8WeightConfig: symmetric int8 weights, one scale per row.
DYNAMIC_WEIGHT_SPEC = QuantSpec(bits=8, per_channel=True, symmetric=True)


def quantize_linears_dynamic(model: nn.Module) -> nn.Module:
    """A copy of `model` (on the CPU) whose Linear layers run torchao's dynamic int8 kernels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchao's import-time enum deprecation notice
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    quantized = copy.deepcopy(model).cpu().eval()
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda module, _: isinstance(module, nn.Linear))
    return quantized


def dynamic_weights(quantized: nn.Module) -> dict[str, QuantizedTensor]:
    """The int8 codes and scales torchao stored in each quantized Linear."""
    weights: dict[str, QuantizedTensor] = {}
    for name, module in quantized.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.Linear) and hasattr(weight, "qdata"):
            scale = weight.scale.detach().reshape(-1).float()
            zero_point = torch.zeros_like(scale, dtype=torch.int32)
            weights[name] = QuantizedTensor(weight.qdata.detach().clone(), scale, zero_point, DYNAMIC_WEIGHT_SPEC)
    return weights

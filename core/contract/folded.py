"""An int8 model whose batch norms were folded into its convolutions, in its architecture's own layout.

Static int8 and 8-bit QAT (PT2E) fold each batch norm into the convolution before it: the int8
codes are of the folded weight W * gamma / sqrt(var + eps), and the folded bias is saved as
CONV.weight_bias. Rebuilt with the architecture's batch norms as they were, the model would
normalise twice. So each batch norm a folded convolution feeds becomes a pass-through that adds
the folded bias (weight 1, running mean 0, running variance 1 - eps, bias = the folded bias): the
state dict keeps the architecture's names, and the model computes what the int8 graph computes.
"""

from __future__ import annotations

import torch
from torch import nn

from core.foundation.errors import UserError

FOLDED_BIAS_SUFFIX = ".weight_bias"  # what torchao's conv + batch-norm fold names the new bias


def folded_biases(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convolution name -> its folded bias, from a quantize run's saved tensors."""
    return {name[: -len(FOLDED_BIAS_SUFFIX)]: tensor for name, tensor in tensors.items() if name.endswith(FOLDED_BIAS_SUFFIX)}


@torch.no_grad()
def batch_norm_after_conv(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, str]:
    """Convolution name -> the batch norm that takes its output directly (one forward pass, eval mode)."""
    outputs: dict[int, str] = {}
    pairs: dict[str, str] = {}
    handles = []

    def after_conv(name: str):
        def hook(_module, _args, output):
            outputs[id(output)] = name

        return hook

    def before_norm(name: str):
        def hook(_module, args):
            conv = outputs.get(id(args[0]))
            if conv is not None:
                pairs.setdefault(conv, name)

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(after_conv(name)))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            handles.append(module.register_forward_pre_hook(before_norm(name)))
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return pairs


def express_folded_batch_norms(float_tensors: dict[str, torch.Tensor], biases: dict[str, torch.Tensor], model: nn.Module, input_shape: tuple[int, ...], architecture: str) -> dict[str, torch.Tensor]:
    """`float_tensors` (the unfolded model's) with each folded convolution's batch norm turned into a
    pass-through adding the folded bias, and the convolution's own bias (if any) zeroed."""
    if not biases:
        return float_tensors
    pairs = batch_norm_after_conv(model, input_shape)
    modules = dict(model.named_modules())
    updated = dict(float_tensors)
    for conv, bias in biases.items():
        norm_name = pairs.get(conv)
        if norm_name is None:
            raise UserError(f"{architecture}: the int8 model folded a batch norm into {conv}, but no batch norm follows {conv} in this model; quantize it again")
        norm = modules[norm_name]
        bias = bias.detach().float().reshape(-1)
        if bias.numel() != norm.num_features:
            raise UserError(f"{architecture}: {conv}'s folded bias has {bias.numel()} values but {norm_name} normalises {norm.num_features} channels")
        updated[f"{norm_name}.weight"] = torch.ones_like(bias)
        updated[f"{norm_name}.bias"] = bias.clone()
        updated[f"{norm_name}.running_mean"] = torch.zeros_like(bias)
        updated[f"{norm_name}.running_var"] = torch.full_like(bias, 1.0 - norm.eps)
        if f"{conv}.bias" in updated:
            updated[f"{conv}.bias"] = torch.zeros_like(updated[f"{conv}.bias"])
    return updated

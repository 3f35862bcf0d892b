"""What a model costs: parameters, nonzeros, MACs, bytes on disk, and its latency (timed by
core.foundation.measures.latency). Every page, chart and
CLI command asks this module, so each figure is computed in exactly one place."""

from __future__ import annotations

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from core.foundation.measures.latency import measure_latencies
from core.foundation.training.records import ModelMetrics  # noqa: F401 (re-exported; torch-free for the first render)


def effective_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a model computes with, by state-dict name. A pruned module keeps
    `weight_orig` and `weight_mask`; its effective weight is their product, stored as `weight`."""
    tensors: dict[str, torch.Tensor] = {}
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, parameter in module.named_parameters(recurse=False):
            if name.endswith("_orig"):
                tensors[prefix + name[: -len("_orig")]] = getattr(module, name[: -len("_orig")]).detach()
            else:
                tensors[prefix + name] = parameter.detach()
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None and not name.endswith("_mask"):
                tensors[prefix + name] = buffer.detach()
    return tensors


def count_parameters(model: nn.Module) -> int:
    """Learnable numbers the model computes with (masks and buffers not counted)."""
    learnable = {name for name, _ in model.named_parameters()}
    learnable |= {name[: -len("_orig")] for name in learnable if name.endswith("_orig")}
    return sum(t.numel() for name, t in effective_tensors(model).items() if name in learnable)


def count_nonzero_parameters(model: nn.Module) -> int:
    learnable = {name for name, _ in model.named_parameters()}
    learnable |= {name[: -len("_orig")] for name in learnable if name.endswith("_orig")}
    return sum(int(torch.count_nonzero(t)) for name, t in effective_tensors(model).items() if name in learnable)


def count_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass for one image (dense: a masked zero still costs a MAC)."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    macs, _ = tp.utils.count_ops_and_params(model, example_input[:1])
    model.train(was_training)
    return int(macs)


def state_dict_size_bytes(model: nn.Module) -> int:
    """Bytes of the saved fp32 weights, as safetensors: the seed's 'file size' measure. Zeros cost
    as much as any other number here; pruning's savings show only in a sparse encoding."""
    return len(safetensors_bytes({name: t.contiguous().cpu() for name, t in effective_tensors(model).items()}))


def measure_model(model: nn.Module, accuracy: float, example_input: torch.Tensor) -> ModelMetrics:
    latency = measure_latencies({"model": model}, example_input)[0]["model"]
    return ModelMetrics(
        accuracy=accuracy,
        params=count_parameters(model),
        nonzero_params=count_nonzero_parameters(model),
        macs=count_macs(model, example_input),
        size_bytes=state_dict_size_bytes(model),
        **latency.timing_fields(),
        **latency.setup_fields(),
    )

"""What a model costs: parameters, nonzeros, MACs, bytes on disk, latency. Every page, chart and
CLI command asks this module, so each figure is computed in exactly one place."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from core.records import ModelMetrics  # noqa: F401 (re-exported; torch-free for the first render)


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


@dataclass
class Latency:
    latency_ms: float  # median time of one forward pass over the whole batch
    batch_size: int
    device: str
    threads: int
    repeats: int

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def measure_latency(model: nn.Module, example_input: torch.Tensor, batch_size: int = 32, warmup: int = 3, min_repeats: int = 5, budget_seconds: float = 0.5) -> Latency:
    """Median wall time of repeated forward passes after warm-up, on the device `example_input` is on."""
    model.eval()
    device = example_input.device
    batch = example_input[:1].expand(batch_size, *example_input.shape[1:]).contiguous()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def forward() -> None:
        model(batch)
        synchronize()

    milliseconds, repeats = median_call_ms(forward, warmup, min_repeats, budget_seconds)
    return Latency(milliseconds, batch_size, str(device), torch.get_num_threads(), repeats)


def median_call_ms(call, warmup: int = 3, min_repeats: int = 5, budget_seconds: float = 0.5, max_repeats: int = 200) -> tuple[float, int]:
    """Median wall time of `call()` in milliseconds (and how many timed calls it took): warm-up
    calls first, then at least `min_repeats`, more while the budget lasts. Any runtime's forward
    pass (torch, ONNX Runtime, OpenVINO) is timed by this one function."""
    for _ in range(warmup):
        call()
    timings: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    while len(timings) < min_repeats or (time.perf_counter() < deadline and len(timings) < max_repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000.0, len(timings)


def measure_model(model: nn.Module, accuracy: float, example_input: torch.Tensor) -> ModelMetrics:
    from core.latency import measure_latencies  # core.latency times with this module's measure_latency

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

"""The one latency protocol: every page, command, pipeline step and history row is timed this way,
so any two recorded latencies are like for like.

- Two batch sizes: a single image (what one user waits) and a throughput batch (what a server sees).
- The thread count torch runs with in this process, stated with each figure.
- A runtime label: "torch eager", or "torch.compile (inductor)" for int8 models, whose integer
  kernels exist only compiled; both models of a before/after pair always share one runtime.
- Interleaved rounds: the models take turns, and each keeps its fastest round's median, so a burst
  of load from another process cannot favour whichever model happened to run last.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from core.foundation.measures.latency_protocol import (  # noqa: F401 (re-exported)
    BATCH_SIZES,
    BUDGET_SECONDS,
    COMPILED,
    EAGER,
    ROUNDS,
    SINGLE_BATCH_SIZE,
    THROUGHPUT_BATCH_SIZE,
    LatencyFigures,
    batch_sizes,
    latency_budget_seconds,
    latency_rounds,
    throughput_batch_size,
)


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


def measure_latencies(models: dict[str, nn.Module], example_input: torch.Tensor, compiled: bool = False, rounds: int | None = None) -> tuple[dict[str, LatencyFigures], str]:
    """Each model timed under the protocol, and the runtime they were all timed in. With
    `compiled`, every model goes through torch.compile (inductor) for each batch size; when this
    machine cannot compile, all of them fall back to eager together and the label says why."""
    runtime = EAGER
    sizes = batch_sizes(example_input.shape[-1])
    runners: dict[int, dict[str, nn.Module]] = {size: dict(models) for size in sizes}
    if compiled:
        compiled_runners, reason = _compile_all(models, example_input)
        if compiled_runners is not None:
            runners, runtime = compiled_runners, COMPILED
        else:
            runtime = f"{EAGER} (torch.compile unavailable: {reason})"
    device = example_input.device
    inputs = example_input.cpu() if runtime == COMPILED else example_input
    best: dict[int, dict[str, float]] = {size: {} for size in sizes}
    for _ in range(rounds if rounds is not None else latency_rounds()):
        for size in sizes:
            for name, model in runners[size].items():
                milliseconds = measure_latency(model, inputs, batch_size=size, budget_seconds=latency_budget_seconds()).latency_ms
                best[size][name] = min(milliseconds, best[size].get(name, float("inf")))
    threads = torch.get_num_threads()
    shown_device = "cpu" if runtime == COMPILED else str(device)
    figures = {name: LatencyFigures(best[SINGLE_BATCH_SIZE][name], best[sizes[1]][name], sizes[1], threads, runtime, shown_device) for name in models}
    return figures, runtime


def _compile_all(models: dict[str, nn.Module], example_input: torch.Tensor) -> tuple[dict[int, dict[str, nn.Module]] | None, str]:
    from core.foundation.measures.compile import try_compile  # inductor is imported only when something is compiled

    runners: dict[int, dict[str, nn.Module]] = {}
    for size in batch_sizes(example_input.shape[-1]):
        runners[size] = {}
        for name, model in models.items():
            attempt = try_compile(model, example_input.cpu(), size)
            if isinstance(attempt, str):
                return None, attempt
            runners[size][name] = attempt[0]
    return runners, ""

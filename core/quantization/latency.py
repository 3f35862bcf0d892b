"""Real latency, compiled versus compiled: the fp32 model and the int8 model both go through
torch.compile (inductor, freezing on), so the comparison is of kernels, not of Python overhead.
Timing uses core.metrics.measure_latency, interleaved fp32/int8 over several rounds because the
CPU is shared and its speed drifts.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch
import torch._dynamo.exc
import torch._inductor.config
import torch._inductor.exc
from torch import nn

from core.metrics import measure_latency

RUNTIME = "torch.compile (inductor, freezing on), CPU"
# What compiling raises when the machine cannot build or run the kernels (compiler, oneDNN, ISA).
_BACKEND_FAILURES = (torch._dynamo.exc.BackendCompilerFailed, torch._inductor.exc.CppCompileError, torch._inductor.exc.InvalidCxxCompiler, OSError)


@dataclass
class LatencyComparison:
    available: bool
    reason: str  # why it could not be measured; "" when it was
    runtime: str
    fp32_latency_ms: float | None
    quantized_latency_ms: float | None
    batch_size: int
    threads: int
    rounds: int
    compile_seconds: float  # both models, first call included
    prediction_agreement: float | None  # fraction of evaluation images where compiled int8 and the reference int8 model agree
    round_speedups: list[float] = field(default_factory=list)  # fp32 / int8 within each round, timed back to back

    @property
    def speedup(self) -> float | None:
        """Median of the per-round ratios: a ratio of two back-to-back timings survives a busy CPU
        better than a ratio of two medians taken at different moments."""
        if self.round_speedups:
            return statistics.median(self.round_speedups)
        if self.fp32_latency_ms and self.quantized_latency_ms:
            return self.fp32_latency_ms / self.quantized_latency_ms
        return None

    def as_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def backend_unavailable_reason() -> str:
    """Why inductor cannot compile int8 CPU kernels here; "" when it should work."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return f"the int8 kernels (oneDNN via X86InductorQuantizer) need an x86 CPU; this one is {platform.machine()}"
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN (mkldnn), which inductor's int8 CPU kernels use"
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as error:  # inductor raises several types here; any of them means "no compiler"
        return f"torch.compile needs a C++ compiler on the CPU and found none ({str(error).splitlines()[0]})"
    return ""


def compile_for_cpu(model: nn.Module, example_input: torch.Tensor, batch_size: int = 32) -> nn.Module:
    """The model compiled for a fixed batch shape, with its first (compiling) call already done."""
    if any(tensor.device.type != "cpu" for tensor in (*model.parameters(), *model.buffers())):
        # Only when needed: compiling leaves weakrefs on a torchao int8 weight, so moving it again
        # (the protocol compiles each model once per batch size) raises "Couldn't swap Linear.weight".
        model.cpu()
    model.eval()  # not chained: a PT2E graph's patched eval() returns None
    compiled = torch.compile(model, backend="inductor", dynamic=False)
    # Compilation happens at the first call; freezing must be on then (passed as options=, the
    # int8 weight-prepack pass does not run and lowering fails).
    with torch._inductor.config.patch(freezing=True), torch.no_grad():
        compiled(_batch(example_input.cpu(), batch_size))
    return compiled


def _batch(example_input: torch.Tensor, batch_size: int) -> torch.Tensor:
    return example_input[:1].expand(batch_size, *example_input.shape[1:]).contiguous()


def try_compile(model: nn.Module, example_input: torch.Tensor, batch_size: int = 32) -> tuple[nn.Module, float] | str:
    """(compiled model, seconds it took), or the reason this CPU cannot run it compiled."""
    reason = backend_unavailable_reason()
    if reason:
        return reason
    start = time.perf_counter()
    try:
        compiled = compile_for_cpu(model, example_input, batch_size)
    except _BACKEND_FAILURES as error:  # an unusable backend is reported, not raised (any other error is a bug)
        message = str(error).strip().splitlines()
        return f"torch.compile could not build the CPU kernels here ({type(error).__name__}: {message[0] if message else 'no message'})"
    return compiled, time.perf_counter() - start


def compile_pair(fp32_model: nn.Module, quantized_model: nn.Module, example_input: torch.Tensor, batch_size: int = 32) -> tuple[nn.Module, nn.Module, float] | str:
    """Both models compiled, and the seconds it took; or the reason the backend is unavailable."""
    fp32 = try_compile(fp32_model, example_input, batch_size)
    if isinstance(fp32, str):
        return fp32
    quantized = try_compile(quantized_model, example_input, batch_size)
    if isinstance(quantized, str):
        return quantized
    return fp32[0], quantized[0], fp32[1] + quantized[1]


def compare_latency(compiled_fp32: nn.Module, compiled_quantized: nn.Module, example_input: torch.Tensor, batch_size: int = 32, rounds: int = 3, compile_seconds: float = 0.0, prediction_agreement: float | None = None) -> LatencyComparison:
    """Median of per-round medians, fp32 and int8 measured alternately; the speed-up pairs each round."""
    example = example_input.cpu()
    fp32_times, quantized_times = [], []
    for _ in range(rounds):
        fp32_times.append(measure_latency(compiled_fp32, example, batch_size=batch_size).latency_ms)
        quantized_times.append(measure_latency(compiled_quantized, example, batch_size=batch_size).latency_ms)
    ratios = [fp32 / quantized for fp32, quantized in zip(fp32_times, quantized_times)]
    return LatencyComparison(True, "", RUNTIME, statistics.median(fp32_times), statistics.median(quantized_times), batch_size, torch.get_num_threads(), rounds, compile_seconds, prediction_agreement, ratios)


def unavailable(reason: str, batch_size: int = 32) -> LatencyComparison:
    return LatencyComparison(False, reason, RUNTIME, None, None, batch_size, torch.get_num_threads(), 0, 0.0, None)


@torch.no_grad()
def compiled_predictions(compiled: nn.Module, inputs: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Class predictions of a model compiled for `batch_size`, padding the last batch to that shape."""
    predictions = []
    for chunk in inputs.split(batch_size):
        count = len(chunk)
        if count < batch_size:
            chunk = torch.cat([chunk, chunk[:1].expand(batch_size - count, *chunk.shape[1:])])
        predictions.append(compiled(chunk.contiguous())[:count].argmax(1))
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


def measure_compiled_latency(fp32_model: nn.Module, quantized_model: nn.Module, example_input: torch.Tensor, reference_inputs: torch.Tensor | None = None, batch_size: int = 32, rounds: int = 3) -> LatencyComparison:
    """Compile both models and compare them; with `reference_inputs`, also check that the compiled
    int8 kernels predict what the reference int8 model predicts."""
    compiled = compile_pair(fp32_model, quantized_model, example_input, batch_size)
    if isinstance(compiled, str):
        return unavailable(compiled, batch_size)
    compiled_fp32, compiled_quantized, seconds = compiled
    agreement = None
    if reference_inputs is not None and len(reference_inputs):
        agreement = agreement_with_reference(compiled_quantized, quantized_model, reference_inputs, batch_size)
    return compare_latency(compiled_fp32, compiled_quantized, example_input, batch_size, rounds, seconds, agreement)


@torch.no_grad()
def agreement_with_reference(compiled_quantized: nn.Module, reference: nn.Module, inputs: torch.Tensor, batch_size: int = 32) -> float:
    compiled = compiled_predictions(compiled_quantized, inputs.cpu(), batch_size)
    expected = torch.cat([reference(chunk).argmax(1) for chunk in inputs.cpu().split(500)])
    return float((compiled == expected).float().mean())

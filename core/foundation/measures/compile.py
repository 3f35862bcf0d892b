"""Compiling for the CPU: int8 models have integer kernels only through torch.compile (inductor,
freezing on), so core.foundation.measures.latency's protocol compiles both sides of a pair with these helpers, and
a machine that cannot compile is told apart (a reason string) from a bug (an exception).
Timing itself is core.foundation.measures.latency's, the one protocol.
"""

from __future__ import annotations

import platform
import time

import torch
import torch._dynamo.exc
import torch._inductor.config
import torch._inductor.exc
from torch import nn

# What compiling raises when the machine cannot build or run the kernels (compiler, oneDNN, ISA).
_BACKEND_FAILURES = (torch._dynamo.exc.BackendCompilerFailed, torch._inductor.exc.CppCompileError, torch._inductor.exc.InvalidCxxCompiler, OSError)


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


def compiled_predictions(compiled: nn.Module, inputs: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Class predictions of a model compiled for `batch_size`, padding the last batch to that shape."""
    predictions = []
    for chunk in inputs.split(batch_size):
        count = len(chunk)
        if count < batch_size:
            chunk = torch.cat([chunk, chunk[:1].expand(batch_size - count, *chunk.shape[1:])])
        predictions.append(compiled(chunk.contiguous())[:count].argmax(1))
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


@torch.no_grad()
def agreement_with_reference(compiled_quantized: nn.Module, reference: nn.Module, inputs: torch.Tensor, batch_size: int = 32) -> float:
    compiled = compiled_predictions(compiled_quantized, inputs.cpu(), batch_size)
    expected = torch.cat([reference(chunk).argmax(1) for chunk in inputs.cpu().split(500)])
    return float((compiled == expected).float().mean())

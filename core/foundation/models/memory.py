"""Will training fit in this machine's memory? An estimate made before the first step, refused with
the figure when it does not fit.

The estimate, in float32 bytes (4 each):
- parameters x 4: the weights, their gradients and the optimiser's two moments (AdamW; SGD's
  momentum needs one);
- activations x batch x 2: every layer's output for one image (counted by forward hooks on one
  zero image of the data's size), as kept for the backward pass, and as much again for the
  gradients flowing back and the functional operations between layers (adds, activations called
  as functions, attention scores) that hooks do not see;
- or, if larger, evaluation: batches of EVAL_BATCH images without gradients, where the two largest
  layer outputs are alive at once.
It leaves out the dataset (already loaded when this runs) and allocator slack, so it is a floor
with a safety factor, not a prediction; it is compared with what the OS reports as available
(/proc/meminfo's MemAvailable; for a CUDA device, the free GPU memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.foundation.errors import UserError

FLOAT_BYTES = 4
EVAL_BATCH = 1000  # core.foundation.training.loop.predict_logits's batch


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    activations_per_image: int  # elements of every layer's output for one image
    largest_activation: int  # elements of the largest layer output for one image
    batch_size: int

    @property
    def training_bytes(self) -> int:
        return FLOAT_BYTES * (4 * self.params + 2 * self.batch_size * self.activations_per_image)

    @property
    def evaluation_bytes(self) -> int:
        return FLOAT_BYTES * (self.params + 2 * EVAL_BATCH * self.largest_activation)

    @property
    def bytes(self) -> int:
        return max(self.training_bytes, self.evaluation_bytes)


def estimate_memory(model: nn.Module, in_channels: int, image_size: int, batch_size: int) -> MemoryEstimate:
    """Parameters and per-image layer outputs from one forward pass of one zero image (module docstring)."""
    sizes: list[int] = []

    def record(module, inputs, output):
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                sizes.append(tensor.numel())

    leaves = [module for module in model.modules() if not any(True for _ in module.children())]
    handles = [module.register_forward_hook(record) for module in leaves]
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    # The pass must leave no trace: a PT2E-prepared graph (QAT) ignores .eval(), so its batch norms
    # and observers would learn from the zero image and its dropout would draw from the seed's
    # random stream. Buffers are copied back and the random state restored.
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for buffer, saved in buffers:
                if buffer.shape == saved.shape:
                    buffer.copy_(saved)
                else:  # an observer's per-channel range starts empty and is resized by its first pass
                    buffer.data = saved
    params = sum(p.numel() for p in model.parameters())
    return MemoryEstimate(params, sum(sizes), max(sizes, default=0), batch_size)


def available_memory_bytes(device: torch.device | str = "cpu") -> int | None:
    """What the OS (or the GPU) says is free now; None when it cannot tell."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_training_memory(model: nn.Module, name: str, in_channels: int, image_size: int, batch_size: int, device: torch.device | str = "cpu") -> MemoryEstimate:
    """The estimate, or one UserError with it when it is more than the memory available."""
    estimate = estimate_memory(model, in_channels, image_size, batch_size)
    available = available_memory_bytes(device)
    if available is not None and estimate.bytes > available:
        raise UserError(
            f"training {name} on {image_size}-px images in batches of {batch_size} needs about {estimate.bytes / 1e9:.1f} GB "
            f"({estimate.params / 1e6:.1f} M parameters, {estimate.activations_per_image / 1e6:.1f} M activations per image), "
            f"more than the {available / 1e9:.1f} GB this machine has free; choose a smaller model or batch"
        )
    return estimate

"""Honest size accounting: what a deployed quantized model stores, and what its file holds.

Deployed bytes = integer values packed at their bit width (numel * bits / 8, rounded up per tensor)
+ fp32 scales + int32 zero points (stored only for affine schemes: a symmetric zero point is 0 by
definition) + every tensor left in floating point (biases, unquantized layers). The artifact is a
safetensors file; where its bytes differ, `explain_difference` says by how much and why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from safetensors.torch import save as safetensors_bytes

SCALE_BYTES = 4  # fp32
ZERO_POINT_BYTES = 4  # int32, what PyTorch's quantized kernels take


@dataclass(frozen=True)
class TensorStorage:
    """One stored tensor: `numel` values of `bits` each, plus its quantization parameters."""

    name: str
    numel: int
    bits: int  # 2..8 for quantized values; 32 for fp32, 64 for int64 buffers
    scales: int = 0
    zero_points: int = 0
    quantized: bool = False

    @property
    def values_bytes(self) -> int:
        return math.ceil(self.numel * self.bits / 8)

    @property
    def scale_bytes(self) -> int:
        return self.scales * SCALE_BYTES

    @property
    def zero_point_bytes(self) -> int:
        return self.zero_points * ZERO_POINT_BYTES

    @property
    def total_bytes(self) -> int:
        return self.values_bytes + self.scale_bytes + self.zero_point_bytes


def float_storage(name: str, tensor: torch.Tensor) -> TensorStorage:
    return TensorStorage(name, tensor.numel(), tensor.element_size() * 8)


@dataclass
class SizeReport:
    deployed_bytes: int
    quantized_values_bytes: int  # integer values, packed at their bit width
    scale_bytes: int
    zero_point_bytes: int
    float_bytes: int  # tensors kept in floating point
    artifact_bytes: int  # the safetensors file saved for this model
    explanation: str  # why artifact_bytes differs from deployed_bytes ("" when equal)

    def as_dict(self) -> dict:
        return asdict(self)


def deployed_bytes(storages: list[TensorStorage]) -> int:
    return sum(storage.total_bytes for storage in storages)


def artifact_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Bytes of the safetensors file these tensors are saved as (header included)."""
    return len(safetensors_bytes({name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}))


def size_report(storages: list[TensorStorage], artifact: dict[str, torch.Tensor]) -> SizeReport:
    quantized = [s for s in storages if s.quantized]
    floats = [s for s in storages if not s.quantized]
    file_bytes = artifact_bytes(artifact)
    return SizeReport(
        deployed_bytes=deployed_bytes(storages),
        quantized_values_bytes=sum(s.values_bytes for s in quantized),
        scale_bytes=sum(s.scale_bytes for s in storages),
        zero_point_bytes=sum(s.zero_point_bytes for s in storages),
        float_bytes=sum(s.values_bytes for s in floats),
        artifact_bytes=file_bytes,
        explanation=explain_difference(storages, artifact, file_bytes),
    )


def explain_difference(storages: list[TensorStorage], artifact: dict[str, torch.Tensor], file_bytes: int) -> str:
    """Accounts for every byte between the deployed size and the file: header and containers."""
    deployed = deployed_bytes(storages)
    if file_bytes == deployed:
        return ""
    data_bytes = sum(t.numel() * t.element_size() for t in artifact.values())
    header = file_bytes - data_bytes
    low_bit = [s for s in storages if s.quantized and s.bits < 8]
    container = sum(s.numel for s in low_bit) - sum(s.values_bytes for s in low_bit)
    parts = [f"the file is {file_bytes:,} bytes, {file_bytes - deployed:+,} vs the deployed {deployed:,}:", f"a {header:,}-byte safetensors header (tensor names, dtypes, shapes)"]
    if container:
        bits = low_bit[0].bits
        parts.append(
            f"{container:,} bytes because each {bits}-bit value sits in a whole int8 byte in the file, while deployed storage packs values at {bits} bits each (no CPU kernel reads packed {bits}-bit weights, so the file keeps the int8 container)"
        )
    other = file_bytes - deployed - header - container
    if other:
        parts.append(f"{other:+,} bytes of tensors stored in a different dtype than counted")
    return parts[0] + " " + "; ".join(parts[1:]) + "."

"""What pruned weights really cost to store.

A dense file stores a zero like any other number, so masks alone never shrink it. These encodings
are built from the actual tensors and measured as the bytes of a real safetensors file, header
included; `decode_sparse` rebuilds the exact tensors, which the tests check.

- bitmask: one bit per entry (zero or not) plus the nonzero values in fp32;
- csr: per row, the column index of each nonzero (8/16/32-bit as the width needs) plus the values;
- best: each tensor stored whichever way (dense, bitmask or csr) is smallest for it.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from core.foundation.measures.metrics import effective_tensors, state_dict_size_bytes

LAYOUTS = ("bitmask", "csr", "best")
SEPARATOR = "::"  # tensor names already contain dots
GZIP_LEVEL = 6  # gzip's own default; level 9 is 7x slower on sparse files for ~2% less


@dataclass
class SizeReport:
    size_bytes_dense: int  # fp32 safetensors of the effective weights (the seed's measure)
    size_bytes_bitmask: int
    size_bytes_csr: int
    size_bytes_sparse: int  # the "best" layout: each tensor in its cheapest form
    size_bytes_gzip: int  # gzip (default level 6, as `gzip FILE`) of the dense safetensors file

    def as_dict(self) -> dict:
        return asdict(self)


def measure_sizes(model: nn.Module, saved_file_bytes: bytes | None = None) -> SizeReport:
    """Every size of `model`'s effective weights; gzip of `saved_file_bytes` when given, else of the
    identical bytes a save of the effective tensors writes."""
    tensors = {name: t.contiguous().cpu() for name, t in effective_tensors(model).items()}
    candidates = {name: _candidates(tensor) for name, tensor in tensors.items()}
    file_bytes = saved_file_bytes if saved_file_bytes is not None else safetensors_bytes(tensors)
    return SizeReport(
        size_bytes_dense=state_dict_size_bytes(model),
        size_bytes_bitmask=len(safetensors_bytes(_assemble(candidates, "bitmask"))),
        size_bytes_csr=len(safetensors_bytes(_assemble(candidates, "csr"))),
        size_bytes_sparse=len(safetensors_bytes(_assemble(candidates, "best"))),
        size_bytes_gzip=len(gzip.compress(file_bytes, compresslevel=GZIP_LEVEL)),
    )


def encoded_size_bytes(tensors: dict[str, torch.Tensor], layout: str) -> int:
    return len(safetensors_bytes(encode_sparse(tensors, layout)))


def encode_sparse(tensors: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown sparse layout {layout!r}")
    return _assemble({name: _candidates(tensor) for name, tensor in tensors.items()}, layout)


def decode_sparse(encoded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in encoded.items():
        name, part = key.rsplit(SEPARATOR, 1)
        parts.setdefault(name, {})[part] = value
    return {name: _decode_one(pieces) for name, pieces in parts.items()}


def _candidates(tensor: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    tensor = tensor.detach().cpu().float()
    return {"dense": {"dense": tensor.contiguous()}, "bitmask": _bitmask(tensor), "csr": _csr(tensor)}


def _assemble(candidates: dict[str, dict[str, dict[str, torch.Tensor]]], layout: str) -> dict[str, torch.Tensor]:
    encoded: dict[str, torch.Tensor] = {}
    for name, forms in candidates.items():
        chosen = min(forms.values(), key=_payload_bytes) if layout == "best" else forms[layout]
        encoded.update({f"{name}{SEPARATOR}{part}": value for part, value in chosen.items()})
    return encoded


def _payload_bytes(parts: dict[str, torch.Tensor]) -> int:
    return sum(p.numel() * p.element_size() for p in parts.values())


def _bitmask(tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    nonzero = (tensor != 0).flatten()
    bits = torch.from_numpy(np.packbits(nonzero.numpy()))
    return {"shape": _shape(tensor), "bitmask": bits, "values": tensor.flatten()[nonzero].contiguous()}


def _csr(tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    matrix = tensor.reshape(tensor.shape[0] if tensor.dim() > 1 else 1, -1)
    rows, columns = torch.nonzero(matrix, as_tuple=True)
    row_starts = torch.zeros(matrix.shape[0] + 1, dtype=torch.int64)
    row_starts[1:] = torch.cumsum(torch.bincount(rows, minlength=matrix.shape[0]), 0)
    return {
        "shape": _shape(tensor),
        "csr_values": matrix[rows, columns].contiguous(),
        "csr_columns": columns.to(_index_dtype(matrix.shape[1] - 1)),
        "csr_row_starts": row_starts.to(_index_dtype(int(row_starts[-1]))),
    }


def _decode_one(pieces: dict[str, torch.Tensor]) -> torch.Tensor:
    if "dense" in pieces:
        return pieces["dense"]
    shape = [int(n) for n in pieces["shape"]]
    numel = int(np.prod(shape)) if shape else 1
    if "bitmask" in pieces:
        nonzero = torch.from_numpy(np.unpackbits(pieces["bitmask"].numpy(), count=numel).astype(bool))
        flat = torch.zeros(numel)
        flat[nonzero] = pieces["values"]
        return flat.view(shape)
    row_starts = pieces["csr_row_starts"].long()
    matrix = torch.zeros(len(row_starts) - 1, numel // max(1, len(row_starts) - 1))
    rows = torch.repeat_interleave(torch.arange(len(row_starts) - 1), row_starts.diff())
    matrix[rows, pieces["csr_columns"].long()] = pieces["csr_values"]
    return matrix.view(shape)


def _shape(tensor: torch.Tensor) -> torch.Tensor:
    return torch.tensor(list(tensor.shape), dtype=torch.int32)


def _index_dtype(largest: int) -> torch.dtype:
    """The narrowest unsigned integer that holds `largest`: what a real sparse format would store."""
    if largest < 2**8:
        return torch.uint8
    if largest < 2**16:
        return torch.uint16
    return torch.int32

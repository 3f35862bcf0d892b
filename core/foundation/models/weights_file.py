"""A trained-weights file a user brings ("bring your own trained weights"): read, checked, fitted to a model.

The file is a state dict saved as safetensors (.safetensors) or by torch.save (.pt, .pth). A torch.save
file is a pickle, and unpickling can run code, so it is read only by PyTorch's restricted loader
(torch.load with weights_only=True), which builds tensors and plain containers and refuses anything
else; the lab never calls torch.load without it. Every bad file becomes one UserError line: empty,
too big, an unknown suffix, truncated, refused, no tensors, or a state dict that does not fit the model.

Checkpoints often wrap the state dict ({"model": ..., "epoch": 3}, {"state_dict": ...}) and keep the
"module." prefix of DataParallel/DDP or "_orig_mod." of torch.compile; read_weights unwraps both.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.names import WEIGHTS_SUFFIXES
from core.foundation.models.registry import build_model

# 1 GiB: a ResNet-50 state dict is about 100 MB in float32, so this leaves room for every architecture
# in the registry (and a checkpoint with its optimizer state) while an upload stays a size the machine
# holds in memory twice (the bytes and the tensors). The sidebar states this number.
MAX_WEIGHTS_BYTES = 1024**3
SAFETENSORS, TORCH = "safetensors", "torch"
# Where checkpoints put the state dict, tried in this order (at any depth: {"model": {"state_dict": ...}}).
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "net", "weights")
# Key prefixes a wrapper adds to every key: DataParallel/DDP ("module.") and torch.compile ("_orig_mod.").
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Buffers a file may lack: torchvision's older checkpoints predate batch norm's step counter.
OPTIONAL_BUFFER_SUFFIXES = ("num_batches_tracked",)
# What PyTorch's restricted loader says when a pickle asks for something other than tensors and
# plain containers (a class, a function to call); its other errors mean the bytes are not a torch.save file.
REFUSED_BY_LOADER = re.compile(r"GLOBAL (?P<name>\S+)|Can only (create|build)|call reduce|must be imported to load")


@dataclass(frozen=True, eq=False)  # eq=False: tensors do not compare with ==; two reads are one file when their sha256 match
class WeightsFile:
    name: str  # the file's name, as every message shows it
    sha256: str  # hex digest of the file's bytes: which file a run was started from
    size_bytes: int
    format: str  # SAFETENSORS or TORCH
    state_dict: dict[str, torch.Tensor] = field(repr=False)


def read_weights(path: Path) -> WeightsFile:
    """The weights file at `path` (CLI --weights); its size is checked before it is read."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no weights file at {path}")
    _check_suffix(path.name)
    _check_size(path.name, path.stat().st_size)
    return read_weights_bytes(path.name, path.read_bytes())


def read_weights_bytes(name: str, data: bytes) -> WeightsFile:
    """The weights file `name` whose bytes are `data` (the sidebar's upload)."""
    file_format = _check_suffix(name)
    _check_size(name, len(data))
    loaded = _load_safetensors(name, data) if file_format == SAFETENSORS else _load_torch(name, data)
    state_dict = _strip_wrapper_prefixes(_find_state_dict(name, loaded))
    return WeightsFile(name=name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), format=file_format, state_dict=state_dict)


def _check_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in WEIGHTS_SUFFIXES:
        raise UserError(f"{name} is not a weights file the lab reads; use one of {', '.join(WEIGHTS_SUFFIXES)}")
    return SAFETENSORS if suffix == ".safetensors" else TORCH


def _check_size(name: str, size: int) -> None:
    if size == 0:
        raise UserError(f"{name} is empty")
    if size > MAX_WEIGHTS_BYTES:
        raise UserError(f"{name} is {_size_text(size)}; the lab reads weights files of at most {_size_text(MAX_WEIGHTS_BYTES)}")


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _load_safetensors(name: str, data: bytes) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load(data)
    except SafetensorError as error:
        raise UserError(f"{name} is not a complete safetensors file ({_first_sentence(str(error))})") from None


def _load_torch(name: str, data: bytes) -> object:
    """torch.load through the restricted loader only: it refuses a pickle that holds code or objects."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = REFUSED_BY_LOADER.search(str(error))
        if refused is None:  # a pickle opcode or layout the loader cannot read: not a torch.save file
            raise UserError(f"{name} is truncated or not a PyTorch file (PyTorch's restricted loader cannot read it: {_loader_reason(error)})") from None
        holds = f" ({refused['name']})" if refused["name"] else ""
        raise UserError(
            f"{name} was refused by PyTorch's restricted loader (weights_only=True): it holds objects other than tensors and plain containers{holds}, "
            "and the lab never runs code from an upload; save the model's state_dict() instead"
        ) from None
    except Exception as error:  # damaged bytes fail in the unpickler as any of a dozen types (EOFError, KeyError, struct.error, ...); each means a bad file
        raise UserError(f"{name} is truncated or not a PyTorch file ({_short_reason(error)})") from None


def _loader_reason(error: pickle.UnpicklingError) -> str:
    """The restricted loader's own reason, without the advice torch wraps around it (which suggests weights_only=False)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-2] if len(lines) >= 2 and lines[-1].startswith("Check the documentation") else _first_sentence(str(error))


def _short_reason(error: Exception) -> str:
    # torch's RuntimeErrors say what failed ("PytorchStreamReader failed reading zip archive: ...");
    # the others (EOFError, KeyError: '101', struct.error) need their type to mean anything.
    text = _first_sentence(str(error))
    if isinstance(error, RuntimeError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _first_sentence(text: str) -> str:
    """The first line of an error message up to its first full stop, short enough for one line."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")[:160]


def _find_state_dict(name: str, loaded: object) -> dict[str, torch.Tensor]:
    """The tensors of a flat state dict, found in `loaded` directly or under STATE_DICT_KEYS (at any depth)."""
    found = _state_dict_in(loaded)
    if found:
        return found
    if not _holds_tensors(loaded):
        raise UserError(f"{name} holds no tensors")
    holds = f"entries {', '.join(map(str, list(loaded)[:8]))}" if isinstance(loaded, dict) else f"a {type(loaded).__name__}"
    raise UserError(f"{name} holds tensors but no state dict the lab recognises (a dict of tensors, or one under {', '.join(STATE_DICT_KEYS)}); it holds {holds}")


def _state_dict_in(loaded: object) -> dict[str, torch.Tensor] | None:
    if not isinstance(loaded, dict):
        return None
    # A checkpoint: the state dict under one of the usual keys, looked for first because a checkpoint may
    # keep a metric as a tensor beside it ("best_acc": tensor(0.9)); "optimizer", "epoch" and the rest are ignored.
    # (A flat state dict never has these keys: its entries are tensors, named "model.fc.weight" and so on.)
    for key in STATE_DICT_KEYS:
        found = _state_dict_in(loaded.get(key))
        if found:
            return found
    tensors = {key: value for key, value in loaded.items() if isinstance(key, str) and isinstance(value, torch.Tensor)}
    return tensors or None  # a flat state dict; non-tensor entries beside its tensors are not weights


def _holds_tensors(loaded: object) -> bool:
    if isinstance(loaded, torch.Tensor):
        return True
    if isinstance(loaded, dict):
        return any(_holds_tensors(value) for value in loaded.values())
    if isinstance(loaded, list | tuple):
        return any(_holds_tensors(item) for item in loaded)
    return False


def _strip_wrapper_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Without "module." / "_orig_mod." where every key has it (both, in either order, for a compiled DDP model)."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state_dict):
                state_dict = {key.removeprefix(prefix): tensor for key, tensor in state_dict.items()}
                stripped = True
    return state_dict


def fit_to_model(model: nn.Module, weights: WeightsFile, model_name: str) -> None:
    """Load `weights` into `model` (architecture `model_name`) strictly, after checks that name the first
    tensor the file lacks, the first it has that the model does not, or the first whose shape differs."""
    expected = model.state_dict()
    given = weights.state_dict
    problem = _first_misfit(expected, given, weights.name, model_name)
    if problem:
        raise UserError(f"{weights.name} does not fit {model_name}: {problem}")
    # A missing optional buffer keeps the model's own value; every other tensor comes from the file.
    kept = {key: expected[key] for key in expected if key not in given}
    model.load_state_dict({**kept, **given}, strict=True)


def _first_misfit(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], file_name: str, model_name: str) -> str:
    """One clause about the first tensor that does not fit, "" when they all do. Missing comes first (in the
    model's order), then extra (in the file's), then shapes (in the model's): a file for another
    architecture usually fails all three, and a missing layer says the most about why."""
    missing = [key for key in expected if key not in given and not key.endswith(OPTIONAL_BUFFER_SUFFIXES)]
    if missing:
        return f"the file has no {missing[0]}{_and_more(missing)}"
    extra = [key for key in given if key not in expected]
    if extra:
        return f"the file's {extra[0]} is not in {model_name}{_and_more(extra)}"
    reshaped = [key for key in expected if key in given and given[key].shape != expected[key].shape]
    if reshaped:
        key = reshaped[0]
        return f"{key} is {list(given[key].shape)} in the file, {list(expected[key].shape)} in the model{_and_more(reshaped)}"
    return ""


def _and_more(keys: list[str]) -> str:
    return f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""


@functools.cache
def _stem_and_head(model_name: str) -> tuple[str, str]:
    """The module names of `model_name`'s first convolution and last Linear (its class head). Built once per
    name, at 3 channels, 32 px and 10 classes: the names do not depend on those, and a file's keys are these names."""
    model = build_model(model_name, 3, 32, 10)
    convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return (convs[0] if convs else ""), (linears[-1] if linears else "")


def _weight_shape(state_dict: dict[str, torch.Tensor], module_name: str, dims: int) -> torch.Size | None:
    weight = state_dict.get(f"{module_name}.weight") if module_name else None
    return weight.shape if isinstance(weight, torch.Tensor) and weight.dim() == dims else None


def classes_in_head(model_name: str, state_dict: dict[str, torch.Tensor]) -> int | None:
    """How many classes the file's head predicts (the output rows of the architecture's last Linear), or
    None when the file has no such weight."""
    shape = _weight_shape(state_dict, _stem_and_head(model_name)[1], dims=2)
    return None if shape is None else shape[0]


def input_channels_in_stem(model_name: str, state_dict: dict[str, torch.Tensor]) -> int | None:
    """How many image channels the file's first convolution takes (1 grey, 3 RGB), or None when it has none."""
    shape = _weight_shape(state_dict, _stem_and_head(model_name)[0], dims=4)
    return None if shape is None else shape[1]


def check_classes(model_name: str, weights: WeightsFile, dataset_classes: int) -> None:
    """One line when the file's head predicts another number of classes than the dataset has. A file
    without the head weight passes here; fit_to_model names it as missing."""
    classes = classes_in_head(model_name, weights.state_dict)
    if classes is not None and classes != dataset_classes:
        head = _stem_and_head(model_name)[1]
        raise UserError(
            f"the file's head has {classes} classes; the dataset has {dataset_classes}. "
            f"{weights.name} ({head}.weight) was trained for another dataset: choose a dataset with {classes} classes or a file trained for {dataset_classes}"
        )


def stem_for_channels(model_name: str, weights: WeightsFile, channels: int) -> WeightsFile:
    """The file with its first convolution taking the dataset's `channels`, as the registry adapts a
    stem (core.foundation.models.torchvision_models.adapted_conv): the colour weights summed, spread
    evenly over the new channels. For a grey dataset and an RGB file that is exactly the file's model
    fed the grey image repeated to RGB; for RGB data and a grey file, the RGB image averaged to grey."""
    stem = _stem_and_head(model_name)[0] + ".weight"
    weight = weights.state_dict.get(stem)
    if weight is None or weight.dim() != 4 or weight.shape[1] == channels:
        return weights
    spread = weight.sum(dim=1, keepdim=True).repeat(1, channels, 1, 1) / channels
    return replace(weights, state_dict={**weights.state_dict, stem: spread})

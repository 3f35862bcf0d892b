"""Pretrained starts (--pretrained): a torchvision network begun from torchvision's ImageNet weights.

The weights are torchvision's own for the architecture, `get_model_weights(arch).DEFAULT`, kept where
torchvision keeps them: torch's hub cache, `torch.hub.get_dir()/checkpoints/<the file name in the
weights' URL>`. A missing file is downloaded there; offline, one line names the file and the folder
to put it in. The file is read by torchvision's loader with weights_only=True (PyTorch's restricted
unpickler: tensors and plain containers only), never beyond.

Fitted to the lab's model as the registry builds it for the dataset: the ImageNet 1000-class head is
dropped (the model keeps its fresh head of the dataset's classes), the stem takes the dataset's
channels as the registry adapts any stem (the colour weights summed: a grey image = R = G = B gives
the same features), and a patchify stem the registry shrank for small images (ConvNeXt's 4x4 to 2x2)
gets each 2x2 block of the 4x4 kernel summed. Stride changes alter no weight, so they apply as they are.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.names import pretrained_arch, pretrained_refusal, torch_hub_dir
from core.foundation.models.weights_file import TORCH, WeightsFile, fit_to_model, stem_for_channels
from core.foundation.progress import Progress, ProgressCallback, no_progress
from core.foundation.workspace import file_sha256


def pretrained_weights(model_name: str):
    """torchvision's default ImageNet weights (a WeightsEnum member) for the network `model_name` builds."""
    from torchvision.models import get_model_weights

    if pretrained_refusal(model_name):
        raise UserError(pretrained_refusal(model_name))
    return get_model_weights(pretrained_arch(model_name)).DEFAULT


def weights_path(weights) -> Path:
    """Where torchvision looks for (and downloads) `weights`: the hub cache's checkpoints folder, under
    the file name of the weights' URL (torch.hub.load_state_dict_from_url's rule)."""
    return torch_hub_dir() / "checkpoints" / Path(urlparse(weights.url).path).name


def normalization(weights) -> dict[str, list[float]]:
    """The per-channel mean and std the weights were trained with (their transforms(): ImageNet's)."""
    transforms = weights.transforms()
    return {"mean": list(transforms.mean), "std": list(transforms.std)}


def start_from_pretrained(model: nn.Module, model_name: str, channels: int, progress: ProgressCallback = no_progress) -> dict:
    """Fill `model` (built by the registry for the dataset) with torchvision's ImageNet weights for
    `model_name`; what the history and the checkpoint record of the start."""
    weights = pretrained_weights(model_name)
    file = read_pretrained(weights, progress)
    fit_pretrained(model, model_name, file, channels)
    return {"pretrained": str(weights), "pretrained_file": file.name, "pretrained_sha256": file.sha256, "pretrained_normalization": normalization(weights)}


def require_on_disk(model_name: str) -> None:
    """For --no-download: one line naming the file and the folder when the weights are not there yet."""
    weights = pretrained_weights(model_name)
    path = weights_path(weights)
    if not path.is_file():
        raise UserError(f"torchvision's {weights} is not in {path.parent} ({path.name}) and downloads are off (--no-download); put the file there")


def read_pretrained(weights, progress: ProgressCallback = no_progress) -> WeightsFile:
    """`weights`' file from torch's hub cache, downloaded there first when missing."""
    path = weights_path(weights)
    if not path.is_file():
        _download(weights, path, progress)
    try:
        # check_hash applies to a download only (here _download's): torch never hashes a file already
        # in the cache, so one a user copied there (or re-saved with another torch) is read as it is,
        # and its SHA-256 goes into the run's record instead.
        state_dict = weights.get_state_dict(model_dir=str(path.parent), progress=False, check_hash=True, weights_only=True, map_location="cpu")
    except Exception as error:  # a damaged or foreign file fails in the unpickler as any of many types
        raise UserError(f"{path} is not torchvision's {weights} ({type(error).__name__}: {_first_line(error)}); delete it to download it again, or put torchvision's file there") from None
    if not isinstance(state_dict, dict) or not all(isinstance(tensor, torch.Tensor) for tensor in state_dict.values()):
        raise UserError(f"{path} is not torchvision's {weights}: it holds no flat state dict")
    return WeightsFile(name=path.name, sha256=file_sha256(path), size_bytes=path.stat().st_size, format=TORCH, state_dict=state_dict)


def _download(weights, path: Path, progress: ProgressCallback) -> None:
    """What torch.hub.load_state_dict_from_url does for a missing file, with check_hash=True (the bytes
    must match the hash prefix in torchvision's file name, or nothing is kept), but the failure as one
    line; done here because the loader announces its download on stdout, where the CLI's last line
    is its JSON."""
    from torch.hub import HASH_REGEX, download_url_to_file

    progress(Progress("download", 0, 1, f"torchvision's {weights} into {path.parent}"))
    hash_prefix = HASH_REGEX.search(path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        download_url_to_file(weights.url, str(path), hash_prefix.group(1) if hash_prefix else None, progress=False)
    except (OSError, RuntimeError, ValueError) as error:  # no network, HTTP errors and timeouts (URLError is an OSError); a hash mismatch (RuntimeError)
        raise UserError(f"torchvision's {weights} is not in {path.parent} ({path.name}) and cannot be downloaded here: {_first_line(error)}; put the file there") from None
    progress(Progress("download", 1, 1, f"torchvision's {weights} into {path.parent}"))


def fit_pretrained(model: nn.Module, model_name: str, file: WeightsFile, channels: int) -> None:
    """Load `file` (torchvision's state dict for the network) into `model` strictly, but for the head:
    the model keeps its own, and the file's 1000-class one is dropped."""
    head = _last_linear(model)
    state = {key: tensor for key, tensor in file.state_dict.items() if not key.startswith(f"{head}.")}
    kept_head = {key: tensor for key, tensor in model.state_dict().items() if key.startswith(f"{head}.")}
    adapted = stem_for_channels(model_name, replace(file, state_dict={**state, **kept_head}), channels)
    fit_to_model(model, _stem_for_kernel(model, adapted), model_name)


def _stem_for_kernel(model: nn.Module, file: WeightsFile) -> WeightsFile:
    """The file's first convolution at the model's kernel, when the model's is a whole fraction of it:
    each r x r block summed, so a 4x4 patch of an image upsampled r times (nearest) is the model's
    r-times smaller patch of the image itself (ConvNeXt's 2x2 patchify stem for small images)."""
    stem = next(name for name, module in model.named_modules() if isinstance(module, nn.Conv2d))
    weight, expected = file.state_dict.get(f"{stem}.weight"), model.get_submodule(stem).weight
    if weight is None or weight.dim() != 4 or weight.shape[2:] == expected.shape[2:]:
        return file
    (height, width), (model_height, model_width) = weight.shape[2:], expected.shape[2:]
    if height % model_height or width % model_width or height // model_height != width // model_width:
        return file  # no whole fraction: fit_to_model names the shapes that differ
    ratio = height // model_height
    out_channels, in_channels = weight.shape[:2]
    summed = weight.reshape(out_channels, in_channels, model_height, ratio, model_width, ratio).sum(dim=(3, 5))
    return replace(file, state_dict={**file.state_dict, f"{stem}.weight": summed})


def _last_linear(model: nn.Module) -> str:
    """The module name of the model's class head, its last Linear (core.foundation.models.weights_file's rule)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]

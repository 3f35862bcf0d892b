"""The model registry's names, and which of them this machine can build, without importing torch.

core.foundation.models.registry holds the builders (keyed by exactly these names, checked at import); the sidebar lists
the names before torch is loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RESNET18 = "resnet18"
RESNET18_IMAGENET = "resnet18_imagenet"
MODEL_NAMES = ("simple_cnn", "simple_cnn_narrow", "simple_cnn_wide", "teacher", RESNET18, RESNET18_IMAGENET)
STUDENT_MODELS = ("simple_cnn", "simple_cnn_narrow", "simple_cnn_wide")
IMAGENET_WEIGHTS_FILE = "resnet18_imagenet.safetensors"


def torch_hub_dir() -> Path:
    """torch.hub.get_dir(): asked of torch once it is loaded (torch.hub.set_dir may have moved it),
    else the same rule torch applies ($TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub)."""
    if "torch" in sys.modules:  # loaded, or loading in another thread: `import` waits for it to finish
        import torch

        return Path(torch.hub.get_dir())
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(os.path.expanduser(torch_home)) / "hub"


def imagenet_weights_path() -> Path:
    return torch_hub_dir() / "checkpoints" / IMAGENET_WEIGHTS_FILE


def imagenet_weights_available() -> bool:
    return imagenet_weights_path().is_file()


def available_models() -> list[str]:
    """The registry's names usable on this machine: the ImageNet-started ResNet-18 only when its
    weights are on disk (they cannot be downloaded as anything but a pickle)."""
    return [name for name in MODEL_NAMES if name != RESNET18_IMAGENET or imagenet_weights_available()]

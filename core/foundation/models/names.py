"""The model registry's names, grouped, and which of them this machine can build, without importing torch.

Each architecture is one `Architecture` entry in ARCHITECTURES: its name, its group (the lab's own or
torchvision's), the builder family in core.foundation.models.registry that makes it and that family's
options (the torchvision name, a width multiplier), the smallest image it takes and why. The registry
builds MODEL_BUILDERS from these entries; the sidebar lists MODEL_NAMES (or MODEL_GROUPS) before torch
is loaded.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

LAB_OWN = "the lab's own"
TORCHVISION = "torchvision"
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 8, 64  # what every model takes; an architecture may need more (min_image_size)


@dataclass(frozen=True)
class Architecture:
    name: str
    group: str  # LAB_OWN or TORCHVISION
    family: str  # the builder in core.foundation.models.registry.FAMILIES
    options: tuple[tuple[str, object], ...] = ()  # the family's keyword arguments (torchvision name, width)
    min_image_size: int = MIN_IMAGE_SIDE
    min_reason: str = ""  # why min_image_size, when it is above MIN_IMAGE_SIDE
    adaptation: str = ""  # what was changed for small images (torchvision models)


RESNET18 = "resnet18"
RESNET18_IMAGENET = "resnet18_imagenet"
MOBILENET_V2_X0_5 = "mobilenet_v2_x0_5"
VIT_TINY = "vit_tiny_p4"

SMALL_STEM = "stem at stride 1, no max-pool (/8 in all)"
ARCHITECTURES = (
    Architecture("simple_cnn", LAB_OWN, "simple_cnn"),
    Architecture("simple_cnn_narrow", LAB_OWN, "simple_cnn", (("width", 0.5),)),
    Architecture("simple_cnn_wide", LAB_OWN, "simple_cnn", (("width", 2.0),)),
    Architecture("teacher", LAB_OWN, "teacher"),
    Architecture(RESNET18, TORCHVISION, "resnet18", adaptation=SMALL_STEM),
    Architecture(RESNET18_IMAGENET, TORCHVISION, "resnet18", (("imagenet", True),), adaptation=SMALL_STEM + "; ImageNet weights"),
    Architecture("resnet50", TORCHVISION, "torchvision", (("arch", "resnet50"),), adaptation=SMALL_STEM),
    Architecture("mobilenet_v2", TORCHVISION, "torchvision", (("arch", "mobilenet_v2"),), adaptation="first conv and the 24-channel stage at stride 1 (/8)"),
    Architecture(
        MOBILENET_V2_X0_5,
        TORCHVISION,
        "torchvision",
        (("arch", "mobilenet_v2"), ("width", 0.5)),
        adaptation="width 0.5; first conv and the 24-channel stage at stride 1 (/8)",
    ),
    Architecture("mobilenet_v3_small", TORCHVISION, "torchvision", (("arch", "mobilenet_v3_small"),), adaptation="first conv and first block at stride 1 (/8); batch-norm momentum 0.1, not 0.01"),
    Architecture("efficientnet_b0", TORCHVISION, "torchvision", (("arch", "efficientnet_b0"),), adaptation="first conv and the 24-channel stage at stride 1 (/8)"),
    Architecture("regnet_y_400mf", TORCHVISION, "torchvision", (("arch", "regnet_y_400mf"),), adaptation="stem and first stage at stride 1 (/8)"),
    Architecture(
        "convnext_tiny",
        TORCHVISION,
        "torchvision",
        (("arch", "convnext_tiny"),),
        min_image_size=16,
        min_reason="a 2x2 patchify stem and three 2x2 downsamplings halve the image four times",
        adaptation="patchify stem 2x2 at stride 2 instead of 4x4 at stride 4 (/16)",
    ),
    Architecture(VIT_TINY, TORCHVISION, "vit", adaptation="torchvision VisionTransformer: 4-px patches, 6 layers, 4 heads, width 192, MLP 384"),
)
MODEL_NAMES = tuple(architecture.name for architecture in ARCHITECTURES)
ARCHITECTURE_BY_NAME = {architecture.name: architecture for architecture in ARCHITECTURES}
MODEL_GROUPS = {group: tuple(a.name for a in ARCHITECTURES if a.group == group) for group in (LAB_OWN, TORCHVISION)}
STUDENT_MODELS = ("simple_cnn", "simple_cnn_narrow", "simple_cnn_wide")
IMAGENET_WEIGHTS_FILE = "resnet18_imagenet.safetensors"


def model_group(name: str) -> str:
    """Which group the sidebar shows a model under ("the lab's own" or "torchvision")."""
    return ARCHITECTURE_BY_NAME[name].group


def model_label(name: str) -> str:
    """A model as every picker and table shows it: "resnet18 · torchvision"."""
    return f"{name} · {model_group(name)}"


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
    """The names usable on this machine: the ImageNet-started ResNet-18 only when its weights are
    on disk (they cannot be downloaded as anything but a pickle)."""
    return [name for name in MODEL_NAMES if name != RESNET18_IMAGENET or imagenet_weights_available()]


def available_model_groups() -> dict[str, list[str]]:
    """available_models(), grouped as the sidebar shows them."""
    usable = set(available_models())
    return {group: [name for name in names if name in usable] for group, names in MODEL_GROUPS.items()}

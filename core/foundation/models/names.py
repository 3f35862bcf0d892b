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
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 8, 224  # what every model takes; an architecture may need more (min_image_size) or take less (max_image_size)
# Up to this side torchvision's networks get the small-image adaptation (the stem at stride 1, see
# Architecture.adaptation); above it they keep torchvision's own stem, as their weights were trained
# at their real size (224 px for ImageNet). A folder is decoded at most this size unless --image-size
# asks for more (core.foundation.data.datasets), so a classroom's models stay small and fast.
SMALL_IMAGE_MAX_SIDE = 64


@dataclass(frozen=True)
class Architecture:
    name: str
    group: str  # LAB_OWN or TORCHVISION
    family: str  # the builder in core.foundation.models.registry.FAMILIES
    options: tuple[tuple[str, object], ...] = ()  # the family's keyword arguments (torchvision name, width)
    min_image_size: int = MIN_IMAGE_SIDE
    min_reason: str = ""  # why min_image_size, when it is above MIN_IMAGE_SIDE
    max_image_size: int = MAX_IMAGE_SIDE
    max_reason: str = ""  # why max_image_size, when it is below MAX_IMAGE_SIDE
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
    # Retired (RETIRED_MODELS): kept so the runs older workspaces recorded under this name still rebuild.
    Architecture(RESNET18_IMAGENET, TORCHVISION, "resnet18", adaptation=SMALL_STEM + "; retired: resnet18 with --pretrained"),
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
    Architecture(
        VIT_TINY,
        TORCHVISION,
        "vit",
        max_image_size=SMALL_IMAGE_MAX_SIDE,
        max_reason="4-pixel patches: a 224-px image would be 3,136 tokens, too slow to attend over on a CPU",
        adaptation="torchvision VisionTransformer: 4-px patches, 6 layers, 4 heads, width 192, MLP 384",
    ),
)
MODEL_NAMES = tuple(architecture.name for architecture in ARCHITECTURES)
ARCHITECTURE_BY_NAME = {architecture.name: architecture for architecture in ARCHITECTURES}
MODEL_GROUPS = {group: tuple(a.name for a in ARCHITECTURES if a.group == group) for group in (LAB_OWN, TORCHVISION)}
STUDENT_MODELS = ("simple_cnn", "simple_cnn_narrow", "simple_cnn_wide")
# The weights files a user may bring (core.foundation.models.weights_file reads them); here, torch-free,
# for the sidebar's uploader.
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth")
# Names no new model is given, each with what replaced it; the registry still builds them (the same
# network, without reading any file) so runs recorded under them open. Every picker hides them.
RETIRED_MODELS = {RESNET18_IMAGENET: f"it is now {RESNET18} started from torchvision's ImageNet weights: --model {RESNET18} --pretrained"}


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


def pretrained_arch(name: str) -> str | None:
    """torchvision's name for the network `name` builds when torchvision publishes ImageNet weights
    for it (--pretrained starts from get_model_weights(that name).DEFAULT), else None."""
    if why_not_pretrained(name):
        return None
    architecture = ARCHITECTURE_BY_NAME[name]
    return RESNET18 if architecture.family == "resnet18" else dict(architecture.options)["arch"]


def why_not_pretrained(name: str) -> str:
    """Why torchvision has no ImageNet weights for the network `name` builds; "" when it has."""
    architecture = ARCHITECTURE_BY_NAME[name]
    options = dict(architecture.options)
    if architecture.group == LAB_OWN:
        return "it is the lab's own network"
    if "width" in options:
        return f"torchvision publishes {options['arch']} weights at width 1.0 only, and this is width {options['width']}"
    if architecture.family not in ("resnet18", "torchvision"):  # the ViT: the lab's own configuration of torchvision's class
        return "it is the lab's own small configuration of torchvision's network, for which torchvision publishes no weights"
    return ""


def pretrained_models() -> list[str]:
    """The offered models --pretrained can start from ImageNet's weights."""
    return [name for name in available_models() if pretrained_arch(name)]


def pretrained_refusal(name: str) -> str:
    """The one line refusing --pretrained for `name`, "" when torchvision has weights for it."""
    reason = why_not_pretrained(name)
    return f"--pretrained: torchvision has no ImageNet weights for {name} ({reason}); choose one of {', '.join(pretrained_models())}" if reason else ""


def available_models() -> list[str]:
    """The names offered on this machine: every registry entry but the retired ones."""
    return [name for name in MODEL_NAMES if name not in RETIRED_MODELS]


def available_model_groups() -> dict[str, list[str]]:
    """available_models(), grouped as the sidebar shows them."""
    usable = set(available_models())
    return {group: [name for name in names if name in usable] for group, names in MODEL_GROUPS.items()}

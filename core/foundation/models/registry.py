"""Models by name. Every model takes standardised float images [N, C, H, W] with C in {1, 3}
and H = W from its architecture's minimum (8 for most) to its maximum (224 for most), and returns
class logits. torchvision's networks are adapted to small images up to SMALL_IMAGE_MAX_SIDE and
keep torchvision's own stem above it (core.foundation.models.torchvision_models).

The entries are core.foundation.models.names.ARCHITECTURES; each names a builder family below and
that family's options, so MODEL_BUILDERS has one builder per name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.names import (  # noqa: F401 (re-exported)
    ARCHITECTURE_BY_NAME,
    ARCHITECTURES,
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    MODEL_GROUPS,
    MODEL_NAMES,
    RESNET18,
    RESNET18_IMAGENET,
    SMALL_IMAGE_MAX_SIDE,
    STUDENT_MODELS,
    available_models,
)
from core.foundation.models.resnet import small_image_resnet18
from core.foundation.models.torchvision_models import torchvision_model
from core.foundation.models.vit import small_image_vit


class SimpleCNN(nn.Module):
    """The seed notebook's network: 5x5 conv 16 -> pool -> 5x5 conv 32 -> pool -> fc 120 -> fc 84 -> fc classes.

    Padding 2 keeps each conv's output the size of its input, so an 8x8 digit still has a 2x2 map
    left after the two pools. `width` scales every hidden layer (0.5: narrow student, 2: wide)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: float = 1.0):
        super().__init__()
        conv1, conv2, fc1, fc2 = (max(1, round(n * width)) for n in (16, 32, 120, 84))
        self.conv1 = nn.Conv2d(in_channels, conv1, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(conv1, conv2, kernel_size=5, padding=2)
        feature_side = image_size // 4
        self.fc1 = nn.Linear(conv2 * feature_side * feature_side, fc1)
        self.fc2 = nn.Linear(fc1, fc2)
        self.fc3 = nn.Linear(fc2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TeacherResNet(nn.Module):
    """A small ResNet-9-style network with batch norm (after Page's DAWNBench CIFAR-10 design),
    about 4x the compute and 2x the parameters of SimpleCNN on 32x32 input, and clearly stronger."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 16):
        super().__init__()
        c1, c2, c3, c4 = width, 2 * width, 4 * width, 8 * width
        self.stem = conv_bn(in_channels, c1)
        self.layer1 = nn.Sequential(conv_bn(c1, c2), nn.MaxPool2d(2), Residual(c2))
        self.layer2 = nn.Sequential(conv_bn(c2, c3), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn(c3, c4), nn.MaxPool2d(2), Residual(c4))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(c4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def _resnet18_at_real_size(in_channels: int, image_size: int, num_classes: int, **options) -> nn.Module:
    """The lab's ResNet-18 (core.foundation.models.resnet, the network old runs saved), with
    torchvision's own stride-2 stem and max-pool back for images above SMALL_IMAGE_MAX_SIDE."""
    model = small_image_resnet18(in_channels, image_size, num_classes, **options)
    if image_size > SMALL_IMAGE_MAX_SIDE:
        model.conv1.stride = (2, 2)
        model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return model


# The builder families: each takes (in_channels, image_size, num_classes, **an entry's options).
FAMILIES = {
    "simple_cnn": SimpleCNN,
    "teacher": TeacherResNet,
    "resnet18": _resnet18_at_real_size,
    "torchvision": torchvision_model,
    "vit": small_image_vit,
}


def _builder(family, options: dict):
    return lambda c, s, k: family(c, s, k, **options)


# The one model registry: every page, the CLI and every saved run name models from this table.
MODEL_BUILDERS = {architecture.name: _builder(FAMILIES[architecture.family], dict(architecture.options)) for architecture in ARCHITECTURES}
assert tuple(MODEL_BUILDERS) == MODEL_NAMES, "core.foundation.models.names.MODEL_NAMES lists the builders above, in order"


def check_image_size(name: str, image_size: int) -> None:
    """One line naming the range, or the architecture's minimum and why, for a side it cannot take."""
    architecture = ARCHITECTURE_BY_NAME[name]
    if image_size > MAX_IMAGE_SIDE or image_size < MIN_IMAGE_SIDE:
        raise UserError(f"image size {image_size} is outside the supported {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} pixels")
    if image_size > architecture.max_image_size:
        raise UserError(
            f"{name} takes images of at most {architecture.max_image_size}x{architecture.max_image_size} pixels ({architecture.max_reason}); these are {image_size}x{image_size}: choose --image-size {architecture.max_image_size} or less"
        )
    if image_size < architecture.min_image_size:
        raise UserError(f"{name} needs images of at least {architecture.min_image_size}x{architecture.min_image_size} pixels ({architecture.min_reason}); these are {image_size}x{image_size}")


def build_model(name: str, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    if name not in MODEL_BUILDERS:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(MODEL_NAMES)}")
    check_image_size(name, image_size)
    return MODEL_BUILDERS[name](in_channels, image_size, num_classes)

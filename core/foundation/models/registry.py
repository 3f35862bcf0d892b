"""Models by name. Every model takes standardised float images [N, C, H, W] with C in {1, 3}
and H = W anywhere from 8 to 64, and returns class logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.names import MODEL_NAMES, RESNET18, RESNET18_IMAGENET, STUDENT_MODELS, available_models, imagenet_weights_available  # noqa: F401 (re-exported)
from core.foundation.models.resnet import small_image_resnet18


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


# The one model registry: every page, the CLI and every saved run name models from this table.
MODEL_BUILDERS = {
    "simple_cnn": lambda c, s, k: SimpleCNN(c, s, k),
    "simple_cnn_narrow": lambda c, s, k: SimpleCNN(c, s, k, width=0.5),
    "simple_cnn_wide": lambda c, s, k: SimpleCNN(c, s, k, width=2.0),
    "teacher": lambda c, s, k: TeacherResNet(c, s, k),
    RESNET18: lambda c, s, k: small_image_resnet18(c, s, k),
    RESNET18_IMAGENET: lambda c, s, k: small_image_resnet18(c, s, k, imagenet=True),
}
assert tuple(MODEL_BUILDERS) == MODEL_NAMES, "core.foundation.models.names.MODEL_NAMES lists the builders above, in order"


def build_model(name: str, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    if name not in MODEL_BUILDERS:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(MODEL_NAMES)}")
    if not 8 <= image_size <= 64:
        raise UserError(f"image size {image_size} is outside the supported 8..64 pixels")
    return MODEL_BUILDERS[name](in_channels, image_size, num_classes)

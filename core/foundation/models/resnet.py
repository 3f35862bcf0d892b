"""torchvision's ResNet-18, adapted to small images: a teacher bigger than the lab's own.

Its ImageNet start is `--pretrained` (core.foundation.models.pretrained), as for every torchvision
network with published weights; the stem keeps torchvision's 7x7 shape so those weights fit.
"""

from __future__ import annotations

from torch import nn

from core.foundation.models.names import RESNET18, RESNET18_IMAGENET  # noqa: F401 (re-exported)


def small_image_resnet18(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """ResNet-18 for 8..64-pixel images: the 7x7 stem keeps its shape (so ImageNet weights fit) but
    runs at stride 1 without the max-pool, which would otherwise shrink a 32x32 image to 8x8 at once."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=1, padding=3, bias=False)
    model.maxpool = nn.Identity()
    return model

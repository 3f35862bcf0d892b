"""torchvision's ResNet-18, adapted to small images: a teacher bigger than the lab's own.

torchvision's ImageNet weights are published as pickles (.pth), which this lab never loads; a
safetensors copy of that state dict under IMAGENET_WEIGHTS_FILE in torch's hub folder is used when
present, so the "resnet18_imagenet" start exists only on machines that have it.
"""

from __future__ import annotations

from safetensors.torch import load_file
from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.names import IMAGENET_WEIGHTS_FILE, RESNET18, RESNET18_IMAGENET, imagenet_weights_available, imagenet_weights_path  # noqa: F401 (re-exported)


def small_image_resnet18(in_channels: int, image_size: int, num_classes: int, imagenet: bool = False) -> nn.Module:
    """ResNet-18 for 8..64-pixel images: the 7x7 stem keeps its shape (so ImageNet weights fit) but
    runs at stride 1 without the max-pool, which would otherwise shrink a 32x32 image to 8x8 at once."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=1, padding=3, bias=False)
    model.maxpool = nn.Identity()
    if imagenet:
        _load_imagenet_features(model, in_channels)
    return model


def _load_imagenet_features(model: nn.Module, in_channels: int) -> None:
    path = imagenet_weights_path()
    if not path.is_file():
        raise UserError(f"ResNet-18 ImageNet weights are not on disk at {path}; choose teacher '{RESNET18}' to train from scratch")
    state = load_file(path)
    state = {name: tensor for name, tensor in state.items() if not name.startswith("fc.")}  # new head for these classes
    if in_channels == 1 and "conv1.weight" in state:
        state["conv1.weight"] = state["conv1.weight"].sum(dim=1, keepdim=True)  # grey image = R = G = B
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
        raise UserError(f"{path} is not a torchvision ResNet-18 state dict (missing {len(missing)}, unexpected {len(unexpected)} tensors)")

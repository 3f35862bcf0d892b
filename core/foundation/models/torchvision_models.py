"""torchvision's classification networks, adapted to small images and 1- or 3-channel data.

Each is `torchvision.models.get_model(name, num_classes=K)` (no weights). Above SMALL_IMAGE_MAX_SIDE
(images at their real size, up to 224 px) it keeps torchvision's own stem and strides, so weights
trained at that size (a user's, ImageNet's) see the network they were trained in; only the first
convolution's input channels and the batch-norm momentum below change. Up to that side:
- the stem and the first downsampling stage run at stride 1 (ConvNeXt: a 2x2 patchify stem at
  stride 2), so a 32-px image leaves a 4x4 map at the end (ConvNeXt 2x2) instead of 1x1, as
  CIFAR versions of these networks do;
- a block whose stride became 1 gets the identity shortcut torchvision gives such a block;
- batch norm keeps its running statistics with momentum 0.1 (MobileNetV3's 0.01 suits ImageNet's
  hundreds of thousands of steps; in a classroom run of a few hundred its statistics would still be
  near their start and the evaluated model would guess);
- for data with other than 3 channels the first convolution is replaced by one whose weights are
  the 3-channel weights summed over the colours (a grey image = R = G = B gives the same features).
"""

from __future__ import annotations

from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.names import SMALL_IMAGE_MAX_SIDE

MOBILENET_V2_SMALL_IMAGES = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]  # (t, c, n, s): the 24-channel stage at stride 1
BATCH_NORM_MOMENTUM = 0.1  # PyTorch's default
WIDTH_OPTION = {"mobilenet_v2": "width_mult", "mobilenet_v3_small": "width_mult", "mobilenet_v3_large": "width_mult"}


def adapted_conv(conv: nn.Conv2d, in_channels: int | None = None, stride: int | None = None, kernel_size: int | None = None) -> nn.Conv2d:
    """A copy of `conv` with another input-channel count, stride or kernel. Fewer or more input
    channels: the colour weights summed, spread evenly over the new channels. A new kernel: fresh
    weights, initialised as torchvision initialises that layer's kind (truncated normal, std 0.02)."""
    in_channels = conv.in_channels if in_channels is None else in_channels
    kernel = conv.kernel_size if kernel_size is None else (kernel_size, kernel_size)
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel,
        stride=conv.stride if stride is None else stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    new = new.to(conv.weight.device, conv.weight.dtype)
    if kernel_size is not None:
        nn.init.trunc_normal_(new.weight, std=0.02)
        if new.bias is not None:
            nn.init.zeros_(new.bias)
        return new
    if conv.groups != 1 and in_channels != conv.in_channels:
        raise UserError(f"cannot change the input channels of a grouped first convolution ({conv.groups} groups)")
    weight = conv.weight.detach()
    if in_channels != conv.in_channels:
        weight = weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
    new.weight.data.copy_(weight)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach())
    return new


def _stride_one(block: nn.Module) -> None:
    """Every stride-2 convolution of `block` at stride 1; where torchvision would then give the block an
    identity shortcut (same channels in and out), it gets one."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        if conv.stride != (1, 1):
            conv.stride = (1, 1)
    if hasattr(block, "use_res_connect"):
        block.use_res_connect = convs[0].in_channels == convs[-1].out_channels
    if hasattr(block, "stride"):
        block.stride = 1


def _first_conv_parent(model: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent_name, _, attribute = name.rpartition(".")
            return model.get_submodule(parent_name), attribute
    raise UserError(f"{type(model).__name__} has no convolution to adapt")


def _replace_first_conv(model: nn.Module, in_channels: int, **changes) -> None:
    parent, attribute = _first_conv_parent(model)
    conv = getattr(parent, attribute)
    if in_channels != conv.in_channels or changes:
        setattr(parent, attribute, adapted_conv(conv, in_channels, **changes))


def torchvision_model(in_channels: int, image_size: int, num_classes: int, arch: str, width: float = 1.0) -> nn.Module:
    """torchvision's `arch` for `num_classes` classes, adapted to small images (module docstring)."""
    from torchvision.models import get_model

    options: dict = {"weights": None, "num_classes": num_classes}
    if width != 1.0:
        if arch not in WIDTH_OPTION:
            raise UserError(f"torchvision's {arch} has no width multiplier")
        options[WIDTH_OPTION[arch]] = width
    small_images = image_size <= SMALL_IMAGE_MAX_SIDE
    if arch == "mobilenet_v2" and small_images:
        options["inverted_residual_setting"] = MOBILENET_V2_SMALL_IMAGES
    model = get_model(arch, **options)
    if not small_images:
        _replace_first_conv(model, in_channels)
    elif arch.startswith("resnet"):
        _replace_first_conv(model, in_channels, stride=1)
        model.maxpool = nn.Identity()
    elif arch == "mobilenet_v2":
        _replace_first_conv(model, in_channels, stride=1)
    elif arch.startswith("mobilenet_v3"):
        _replace_first_conv(model, in_channels, stride=1)
        _stride_one(model.features[1])
    elif arch.startswith("efficientnet"):
        _replace_first_conv(model, in_channels, stride=1)
        _stride_one(model.features[2][0])
    elif arch.startswith("regnet"):
        _replace_first_conv(model, in_channels, stride=1)
        _stride_one(model.trunk_output[0][0])
    elif arch.startswith("convnext"):
        _replace_first_conv(model, in_channels, stride=2, kernel_size=2)
    else:
        raise UserError(f"no small-image adaptation for torchvision's {arch}")
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None and module.momentum < BATCH_NORM_MOMENTUM:
            module.momentum = BATCH_NORM_MOMENTUM
    return model

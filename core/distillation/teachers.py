"""Which models can teach: the lab's own `teacher` (core.models) and torchvision's ResNet-18
adapted to small images (core.resnet). All of them live in core.models' one registry, so a teacher
is trained, cached and loaded like every other model, on every page and in the CLI."""

from __future__ import annotations

from core.models import available_models
from core.resnet import RESNET18, RESNET18_IMAGENET

TEACHER_MODELS = ("teacher", RESNET18, RESNET18_IMAGENET)


def available_teachers() -> list[str]:
    """Teacher names usable on this machine (the ImageNet start only when its weights are on disk)."""
    usable = set(available_models())
    return [name for name in TEACHER_MODELS if name in usable]

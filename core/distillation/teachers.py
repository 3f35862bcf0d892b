"""Which models can teach: the lab's own `teacher` (core.foundation.models.registry) and torchvision's ResNet-18
adapted to small images (core.foundation.models.resnet). All of them live in core.foundation.models.registry' one registry, so a teacher
is trained, cached and loaded like every other model, on every page and in the CLI."""

from __future__ import annotations

from core.foundation.models.registry import available_models
from core.foundation.models.resnet import RESNET18, RESNET18_IMAGENET

TEACHER_MODELS = ("teacher", RESNET18, RESNET18_IMAGENET)


def available_teachers() -> list[str]:
    """Teacher names usable on this machine (the ImageNet start only when its weights are on disk)."""
    usable = set(available_models())
    return [name for name in TEACHER_MODELS if name in usable]

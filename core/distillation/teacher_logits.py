"""Where the teacher's logits come from during distillation.

Without random crops, every training image always looks the same (or is one of two mirror images),
so the teacher's logits are computed once, kept in the workspace next to the teacher, and looked up
by the batch's indices: distillation then costs little more than plain training. With random crops
every epoch shows new pixels, so the teacher has to run on every batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from core.foundation.baseline.trained import Baseline
from core.foundation.data.datasets import Dataset, ImageSplit
from core.foundation.training.loop import Batch, TrainRecipe, predict_logits
from core.foundation.workspace import META_FILE, Workspace, atomic_save_tensors

# Random crops shift every image differently each epoch, so no per-image logit can be stored.
AUGMENTATIONS_WITH_CROPS = ("crop", "flip_crop")


def teacher_logits_cacheable(augment: str) -> bool:
    return augment not in AUGMENTATIONS_WITH_CROPS


def augmentation_flips(augment: str) -> bool:
    """Whether the cache needs mirrored copies too (today's recipes only flip together with crops)."""
    return "flip" in augment


@dataclass
class TeacherLogitCache:
    """The teacher's logits for every training image (and its mirror image, when flips are used),
    computed once and looked up by the batch's indices, so the teacher costs nothing per step."""

    plain: torch.Tensor  # [N, classes] on the training device
    flipped: torch.Tensor | None = None  # [N, classes] for horizontally mirrored images
    lookups: int = 0  # batches served, so callers (and tests) can see the cache was used

    def logits_for(self, batch: Batch) -> torch.Tensor:
        self.lookups += 1
        indices = batch.indices.to(self.plain.device)
        logits = self.plain[indices]
        if bool(batch.flipped.any()):
            if self.flipped is None:
                raise RuntimeError("batch has mirrored images but the teacher logit cache holds no mirrored copies")
            logits = torch.where(batch.flipped.to(logits.device).view(-1, 1), self.flipped[indices], logits)
        return logits


def build_teacher_logit_cache(teacher: nn.Module, dataset: Dataset, device: torch.device, with_flips: bool) -> TeacherLogitCache:
    plain = predict_logits(teacher, dataset, dataset.train, device).to(device)
    flipped = None
    if with_flips:
        mirrored = ImageSplit(dataset.train.images.flip(-1), dataset.train.labels)
        flipped = predict_logits(teacher, dataset, mirrored, device).to(device)
    return TeacherLogitCache(plain, flipped)


def save_teacher_logit_cache(cache: TeacherLogitCache, path: Path) -> None:
    tensors = {"plain": cache.plain} if cache.flipped is None else {"plain": cache.plain, "flipped": cache.flipped}
    atomic_save_tensors(path, tensors)


def load_teacher_logit_cache(path: Path, train_images: int, num_classes: int, with_flips: bool, device: torch.device) -> TeacherLogitCache | None:
    """The cache saved at `path`, or None when it is absent, unreadable or does not fit this training split."""
    if not path.is_file():
        return None
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError):
        return None
    expected = (train_images, num_classes)
    if tuple(tensors.get("plain", torch.empty(0)).shape) != expected or (with_flips and tuple(tensors.get("flipped", torch.empty(0)).shape) != expected):
        return None
    return TeacherLogitCache(tensors["plain"].to(device), tensors["flipped"].to(device) if with_flips else None)


class TeacherPerBatch:
    """The fallback when augmentation makes caching impossible: run the teacher on each batch."""

    def __init__(self, teacher: nn.Module):
        self.teacher = teacher.eval()
        self.lookups = 0

    @torch.no_grad()
    def logits_for(self, batch: Batch) -> torch.Tensor:
        self.lookups += 1
        return self.teacher(batch.inputs)


def teacher_logits_key(teacher: Baseline) -> str:
    """What a teacher's cached logits are named after: its recorded run (two teacher runs never share
    logits, and a retrained teacher is a new run, so its old logits are never read again, even when
    its weights came out the same), its checkpoint (whose key covers the architecture, dataset and
    recipe) and its weights' hash."""
    weights_sha = json.loads((teacher.checkpoint / META_FILE).read_text())["weights_sha256"]
    run = f"run{teacher.run_id}" if teacher.run_id is not None else "unrecorded"
    return f"{run}-{teacher.checkpoint.name}-{weights_sha[:16]}"


def teacher_logits_path(teacher: Baseline, workspace: Workspace, with_flips: bool) -> Path:
    """Where a teacher's training-set logits are kept (teacher_logits_key)."""
    return workspace.root / "teacher-logits" / f"{teacher_logits_key(teacher)}{'-flips' if with_flips else ''}.safetensors"


def teacher_test_logits(teacher: Baseline, dataset: Dataset, device: torch.device, workspace: Workspace) -> torch.Tensor:
    """The teacher's logits on the test split (for agreement), computed once per teacher and kept in the workspace."""
    path = teacher_logits_path(teacher, workspace, with_flips=False).with_suffix(".test.safetensors")
    try:
        logits = load_file(path)["test"] if path.is_file() else None
    except (SafetensorError, OSError, KeyError):
        logits = None
    if logits is None or tuple(logits.shape) != (len(dataset.test), dataset.num_classes):
        logits = predict_logits(teacher.model, dataset, dataset.test, device)
        atomic_save_tensors(path, {"test": logits})
    return logits


def teacher_logit_source(teacher: Baseline, dataset: Dataset, recipe: TrainRecipe, device: torch.device, workspace: Workspace) -> tuple[TeacherLogitCache | TeacherPerBatch, str]:
    """How the students' recipe lets the teacher's logits be served, and one sentence saying so."""
    if not teacher_logits_cacheable(recipe.augment):
        return TeacherPerBatch(teacher.model), f"Augmentation '{recipe.augment}' shifts every image by a random crop each epoch, so teacher logits cannot be cached: the teacher runs on every batch."
    flips = augmentation_flips(recipe.augment)
    copies = "each training image and its mirror image" if flips else "each training image"
    path = teacher_logits_path(teacher, workspace, flips)
    cache = load_teacher_logit_cache(path, len(dataset.train), dataset.num_classes, flips, device)
    which = f"this teacher (run #{teacher.run_id})" if teacher.run_id is not None else "this teacher"
    if cache is not None:
        return cache, f"Teacher logits for {copies} were computed once for {which} and loaded from the workspace, so each distillation step only looks them up."
    cache = build_teacher_logit_cache(teacher.model, dataset, device, with_flips=flips)
    save_teacher_logit_cache(cache, path)
    return cache, f"Teacher logits were computed once for {copies} and cached for {which} (also in the workspace, for the next race), so each distillation step only looks them up."

"""What a teacher teaches: its class probabilities for a few test images, at T = 1 and at the chosen T."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.distillation.loss import soft_targets
from core.foundation.data.datasets import Dataset, ImageSplit
from core.foundation.training.loop import predict_logits


@dataclass
class SoftLabelExamples:
    images: torch.Tensor  # uint8 [n, C, H, W]
    labels: list[int]
    probabilities_t1: list[list[float]]  # softmax(logits), what the teacher predicts
    probabilities_t: list[list[float]]  # softmax(logits / T), what the student is taught
    temperature: float
    class_names: list[str]


def example_indices(dataset: Dataset, count: int) -> list[int]:
    """The first test image of each of the first `count` classes, so the examples show different classes."""
    indices = []
    for c in range(min(count, dataset.num_classes)):
        matches = torch.nonzero(dataset.test.labels == c).flatten()
        if len(matches):
            indices.append(int(matches[0]))
    return indices


def soft_label_examples(teacher: nn.Module, dataset: Dataset, temperature: float, count: int = 4, device: torch.device | None = None) -> SoftLabelExamples:
    device = device or next(teacher.parameters()).device
    indices = example_indices(dataset, count)
    split = ImageSplit(dataset.test.images[indices], dataset.test.labels[indices])
    logits = predict_logits(teacher, dataset, split, device)
    return SoftLabelExamples(
        images=split.images,
        labels=split.labels.tolist(),
        probabilities_t1=soft_targets(logits, 1.0).tolist(),
        probabilities_t=soft_targets(logits, temperature).tolist(),
        temperature=temperature,
        class_names=list(dataset.class_names),
    )

"""The one quick evaluator: accuracy on a fixed, class-balanced test subset, for everything that
redraws while a user moves a slider (pruning preview, simulated quantization, scans, sweeps).

Full-test-set accuracy, which every recorded run's headline carries, is core.foundation.training.loop.evaluate.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from core.foundation.data.datasets import Dataset, ImageSplit, class_balanced_subset
from core.foundation.models.names import LAB_OWN, model_group
from core.foundation.training.loop import evaluation_from_logits

EVAL_SUBSET_SIZE = 2000  # class-balanced test images for interactive evaluation
QUICK_EVAL_BATCH_SIZE = 250  # batches of 250 stay in the CPU cache; 1,000 measured ~1.5x slower on 2 cores
# torchvision's networks cost 10 to 100 times a lab model per image (MobileNetV2 x0.5 on 32 px: a
# simulated-quantization preview of 2,000 images took 4.3 s on 2 busy cores), so their previews use
# fewer images to redraw within 2 s; every preview says how many images it used.
TORCHVISION_PREVIEW_SIZE = 256


def preview_subset_size(architecture: str) -> int:
    """How many test images a slider's preview evaluates for this registry architecture."""
    return EVAL_SUBSET_SIZE if model_group(architecture) == LAB_OWN else TORCHVISION_PREVIEW_SIZE


def evaluation_subset(dataset: Dataset, size: int = EVAL_SUBSET_SIZE, seed: int = 0) -> Dataset:
    """The dataset with its test split cut to `size` class-balanced images: quick, repeatable evaluation."""
    return replace(dataset, test=class_balanced_subset(dataset.test, size, dataset.num_classes, seed, "test"))


class QuickEvaluator:
    """Accuracy on a class-balanced test subset, with the images standardised once and kept on the
    device: what a page pays per slider move is the forward passes alone."""

    def __init__(self, dataset: Dataset, device: torch.device | str = "cpu", size: int = EVAL_SUBSET_SIZE, seed: int = 0):
        self.dataset = evaluation_subset(dataset, size, seed)
        self.device = torch.device(device)
        # Channels-last input lets oneDNN skip a layout reorder per conv: measured 2x faster on CPU, same outputs.
        self.inputs = self.dataset.normalize(self.dataset.test.images.to(self.device)).contiguous(memory_format=torch.channels_last)
        self.labels = self.dataset.test.labels

    @property
    def images(self) -> int:
        return len(self.labels)

    @property
    def split(self) -> ImageSplit:
        return self.dataset.test

    @torch.no_grad()
    def logits(self, model: nn.Module) -> torch.Tensor:
        model.eval()
        return torch.cat([model(chunk).float().cpu() for chunk in self.inputs.split(QUICK_EVAL_BATCH_SIZE)])

    def accuracy(self, model: nn.Module) -> float:
        return evaluation_from_logits(self.logits(model), self.labels, self.dataset.num_classes).accuracy

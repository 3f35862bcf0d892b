"""Test images as pictures a class can see: enlarged pixel arrays for the pages, PNG data URIs for
the self-contained HTML report (no network), each with the caption the gallery shows."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from core.diff.exemplars import Exemplar
from core.diff.pairs import FlippedImage
from core.foundation.data.datasets import Dataset

GALLERY_SCALE = 3  # 32-pixel CIFAR images become 96 pixels: recognisable when projected
DEFAULT_GALLERY_SIZE = 24


def image_array(dataset: Dataset, index: int, scale: int = GALLERY_SCALE) -> np.ndarray:
    """One test image as uint8 [H, W, 3] (grey images repeated), enlarged with square pixels."""
    pixels = dataset.test.images[index].permute(1, 2, 0).numpy()
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.kron(pixels, np.ones((scale, scale, 1), dtype=np.uint8)).astype(np.uint8)


def image_data_uri(dataset: Dataset, index: int, scale: int = GALLERY_SCALE) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image_array(dataset, index, scale)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def flipped_caption(image: FlippedImage, class_names: list[str], label_a: str = "A", label_b: str = "B") -> str:
    return (
        f"#{image.index} true: {class_names[image.true_label]} · {label_a}: {class_names[image.prediction_a]} {image.confidence_a:.0%}"
        f" · {label_b}: {class_names[image.prediction_b]} {image.confidence_b:.0%}"
    )


def exemplar_caption(exemplar: Exemplar, class_names: list[str]) -> str:
    return f"#{exemplar.index} {class_names[exemplar.true_label]}: {exemplar.failing_descendants} of {exemplar.descendants} descendants wrong (mostly '{class_names[exemplar.commonest_wrong_label]}')"

"""Which datasets exist and how a configuration names one, without importing torch.

The sidebar, the share link and the Overview need these names before any image is decoded;
core.foundation.data.datasets (which loads the images into tensors) re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.foundation.errors import UserError
from core.foundation.models.names import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from core.foundation.workspace import Workspace

DEFAULT_DATASET = "digits"
TORCHVISION_DATASETS = ("cifar10", "mnist", "fashion-mnist")
FOLDER_PREFIX = "folder:"

# The files torchvision's loaders need, relative to the data folder. Checking them directly keeps
# torchvision (and the torch._dynamo it imports, seconds on a busy CPU) off the dashboard's start-up.
TORCHVISION_FILES = {
    "cifar10": [f"cifar-10-batches-py/{name}" for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")],
    "mnist": [f"MNIST/raw/{name}" for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
    "fashion-mnist": [f"FashionMNIST/raw/{name}" for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str = DEFAULT_DATASET
    train_size: int | None = None  # class-balanced subset; None = all
    test_size: int | None = None
    subset_seed: int = 0
    # Every image resized to this side (--image-size); None: the dataset's own side (a folder's
    # most common one, at most core.foundation.models.names.SMALL_IMAGE_MAX_SIDE).
    image_size: int | None = None

    def as_dict(self) -> dict:
        values = {"name": self.name, "train_size": self.train_size, "test_size": self.test_size, "subset_seed": self.subset_seed}
        if self.image_size is not None:  # only then: the configurations named before it keep their keys
            values["image_size"] = self.image_size
        return values


def available_dataset_names() -> list[str]:
    return [DEFAULT_DATASET, *TORCHVISION_DATASETS]


def validate_dataset_name(name: str) -> None:
    if name.startswith(FOLDER_PREFIX):
        if not name[len(FOLDER_PREFIX) :].strip():
            raise UserError("folder dataset needs a path: folder:/path/with/train/and/test")
        return
    if name not in available_dataset_names():
        raise UserError(f"unknown dataset '{name}'; choose one of {', '.join(available_dataset_names())} or folder:PATH")


def check_image_side(image_size: int | None) -> None:
    """--image-size's range, refused alike by the CLI, the sidebar and the loader."""
    if image_size is not None and not MIN_IMAGE_SIDE <= image_size <= MAX_IMAGE_SIDE:
        raise UserError(f"--image-size must be between {MIN_IMAGE_SIDE} and {MAX_IMAGE_SIDE} pixels, got {image_size}")


def is_dataset_on_disk(name: str, workspace: Workspace) -> bool:
    """Whether a torchvision dataset's files are already in the data folder (no download needed)."""
    if name not in TORCHVISION_DATASETS:
        return True
    return all((workspace.data_dir / relative).is_file() for relative in TORCHVISION_FILES[name])

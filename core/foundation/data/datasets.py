"""Datasets by name, decoded once into uint8 tensors held in memory.

Names: `digits` (scikit-learn's bundled 8x8 digits, the offline default), `cifar10`, `mnist`,
`fashion-mnist` (torchvision; looked for in the data folder, downloaded when missing) and
`folder:PATH` (ImageFolder layout with train/ and test/). Decoded tensors are cached in the
workspace as safetensors, so a second start loads CIFAR-10 in about a second instead of decoding
60,000 files again.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from core.foundation.data.names import (  # noqa: F401 (re-exported)
    DEFAULT_DATASET,
    FOLDER_PREFIX,
    TORCHVISION_DATASETS,
    TORCHVISION_FILES,
    DatasetSpec,
    available_dataset_names,
    check_image_side,
    is_dataset_on_disk,
    validate_dataset_name,
)
from core.foundation.errors import UserError
from core.foundation.models.memory import available_memory_bytes
from core.foundation.models.names import MIN_IMAGE_SIDE, SMALL_IMAGE_MAX_SIDE
from core.foundation.progress import Progress, ProgressCallback, no_progress
from core.foundation.workspace import Workspace, atomic_save_tensors, config_key

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
CACHE_FORMAT_VERSION = 1
# Decoded images may take at most this share of the memory free when they are decoded: the rest is
# for the model, its activations and the float batches made from them.
IMAGE_MEMORY_SHARE = 0.5


@dataclass
class ImageSplit:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    name: str
    train: ImageSplit
    test: ImageSplit
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, of train pixels scaled to [0, 1]
    std: tuple[float, ...]
    skipped_files: list[str] = field(default_factory=list)  # "path: reason" for each unreadable file

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the float input every model here expects (per-channel standardised)."""
        mean = torch.tensor(self.mean, device=images_uint8.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images_uint8.device).view(1, -1, 1, 1)
        return (images_uint8.float() / 255.0 - mean) / std

    def summary(self) -> dict:
        return {
            "dataset": self.name,
            "train_images": len(self.train),
            "test_images": len(self.test),
            "classes": self.num_classes,
            "channels": self.channels,
            "image_size": self.image_size,
            "skipped_files": len(self.skipped_files),
        }


class DatasetUnavailable(UserError):
    """A torchvision dataset that is not on disk and could not be downloaded."""


def load_dataset(spec: DatasetSpec, workspace: Workspace, progress: ProgressCallback = no_progress, allow_download: bool = True) -> Dataset:
    """The dataset named by `spec`, with its class-balanced subsets taken."""
    full = load_full_dataset(spec.name, workspace, progress, allow_download, spec.image_size)
    train = class_balanced_subset(full.train, spec.train_size, full.num_classes, spec.subset_seed, "train")
    test = class_balanced_subset(full.test, spec.test_size, full.num_classes, spec.subset_seed, "test")
    return Dataset(full.name, train, test, full.class_names, full.mean, full.std, full.skipped_files)


def load_full_dataset(name: str, workspace: Workspace, progress: ProgressCallback = no_progress, allow_download: bool = True, image_size: int | None = None) -> Dataset:
    """The whole dataset, decoded (or read back from its tensor cache); with `image_size`, every
    image resized to that side (a folder is decoded at it, a built-in dataset resized after)."""
    validate_dataset_name(name)
    check_image_side(image_size)
    # Even digits goes through the tensor cache: reading it back skips importing scikit-learn,
    # seconds of the dashboard's first render.
    if name == DEFAULT_DATASET:
        source_signature = {"source": "scikit-learn load_digits"}
    elif name.startswith(FOLDER_PREFIX):
        # The layout first: the signature walks the whole folder, and a link may name folder:/.
        _check_folder_layout(Path(name[len(FOLDER_PREFIX) :]))
        source_signature = _folder_signature(Path(name[len(FOLDER_PREFIX) :]))
    else:
        source_signature = {"data_dir": str(workspace.data_dir)}
    resized = {"image_size": image_size} if image_size is not None else {}  # only then: older caches keep their names
    cache_path = workspace.dataset_cache_dir / f"{_cache_stem(name)}-{config_key({'name': name, 'v': CACHE_FORMAT_VERSION, **source_signature, **resized})}.safetensors"
    cached = _read_cache(name, cache_path)
    if cached is not None and not (name.startswith(FOLDER_PREFIX) and cached.num_classes < 2):  # a one-class folder cached before it was refused
        return cached
    if name.startswith(FOLDER_PREFIX):
        dataset = _load_folder(name, Path(name[len(FOLDER_PREFIX) :]), progress, image_size)
    elif image_size is not None:  # the built-in dataset at its own size (cached too), then resized
        dataset = resize_dataset(load_full_dataset(name, workspace, progress, allow_download), image_size, progress)
    elif name == DEFAULT_DATASET:
        dataset = _load_digits()
    else:
        dataset = _load_torchvision(name, workspace.data_dir, progress, allow_download)
    _write_cache(dataset, cache_path)
    return dataset


def check_image_memory(images: int, channels: int, side: int, what: str) -> None:
    """Refuse, before any decoding, images whose uint8 pixels would not fit IMAGE_MEMORY_SHARE of
    the memory free now (one line with both figures and what to change)."""
    needed = images * channels * side * side
    free = available_memory_bytes()
    if free is not None and needed > IMAGE_MEMORY_SHARE * free:
        raise UserError(
            f"{what}: {images:,} images at {side}x{side}x{channels} need {needed / 1e9:.1f} GB as uint8, and {free / 1e9:.1f} GB of memory is free "
            f"(at most {IMAGE_MEMORY_SHARE:.0%} goes to images): choose a smaller --image-size or fewer images"
        )


def resize_dataset(dataset: Dataset, side: int, progress: ProgressCallback = no_progress) -> Dataset:
    """Every image of `dataset` resized to side x side (bilinear, antialiased when shrinking, as PIL
    resizes a folder's files), in chunks, with the channel statistics of the resized training images."""
    if dataset.image_size == side:
        return dataset
    check_image_memory(len(dataset.train) + len(dataset.test), dataset.channels, side, f"{dataset.name} resized to {side} px")
    total = len(dataset.train) + len(dataset.test)
    done = 0

    def resized(split: ImageSplit) -> ImageSplit:
        nonlocal done
        chunks = []
        for chunk in split.images.split(1024):
            scaled = torch.nn.functional.interpolate(chunk.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=side < chunk.shape[-1])
            chunks.append(scaled.round().clamp(0, 255).to(torch.uint8))
            done += len(chunk)
            progress(Progress("resize", done, total, f"resizing images to {side} px (once; cached afterwards)"))
        images = torch.cat(chunks) if chunks else torch.empty(0, dataset.channels, side, side, dtype=torch.uint8)
        return ImageSplit(images, split.labels)

    return _make_dataset(dataset.name, resized(dataset.train), resized(dataset.test), dataset.class_names, dataset.skipped_files)


def class_balanced_subset(split: ImageSplit, size: int | None, num_classes: int, seed: int, split_name: str) -> ImageSplit:
    """`size` examples with classes as equal as the data allows, chosen reproducibly from `seed`."""
    if size is None or size >= len(split):
        return split
    chosen = class_balanced_indices(split, size, num_classes, seed, split_name)
    return ImageSplit(split.images[chosen], split.labels[chosen])


def class_balanced_indices(split: ImageSplit, size: int, num_classes: int, seed: int, split_name: str) -> torch.Tensor:
    """The positions class_balanced_subset picks (all of them, shuffled, when `size` covers the split)."""
    if size < num_classes:
        raise UserError(f"{split_name} size {size} is smaller than the {num_classes} classes; use at least {num_classes}")
    generator = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(split.labels == c).flatten() for c in range(num_classes)]
    per_class = [indices[torch.randperm(len(indices), generator=generator)] for indices in per_class]
    quota = [0] * num_classes
    remaining = size
    # Round-robin fill: classes with few examples give their unused quota to the others.
    while remaining > 0:
        progressed = False
        for c in range(num_classes):
            if remaining and quota[c] < len(per_class[c]):
                quota[c] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    chosen = torch.cat([per_class[c][: quota[c]] for c in range(num_classes)])
    return chosen[torch.randperm(len(chosen), generator=generator)]


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for chunk in images.split(4096):
        pixels = chunk.to(torch.float64) / 255.0
        total += pixels.sum(dim=(0, 2, 3))
        total_sq += (pixels**2).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def _make_dataset(name: str, train: ImageSplit, test: ImageSplit, class_names: list[str], skipped: list[str] | None = None) -> Dataset:
    mean, std = _channel_stats(train.images)
    return Dataset(name, train, test, class_names, mean, std, skipped or [])


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    # Fixed seed and stratification: the same class-balanced 80/20 split on every machine.
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=bunch.target, random_state=0)
    train = ImageSplit(images[train_idx], labels[train_idx])
    test = ImageSplit(images[test_idx], labels[test_idx])
    return _make_dataset(DEFAULT_DATASET, train, test, [str(d) for d in range(10)])


def _torchvision_splits(name: str, data_dir: Path, download: bool):
    from torchvision import datasets as tv

    constructor = {"cifar10": tv.CIFAR10, "mnist": tv.MNIST, "fashion-mnist": tv.FashionMNIST}[name]
    return constructor(str(data_dir), train=True, download=download), constructor(str(data_dir), train=False, download=download)


def _load_torchvision(name: str, data_dir: Path, progress: ProgressCallback, allow_download: bool) -> Dataset:
    try:
        train_raw, test_raw = _torchvision_splits(name, data_dir, download=False)
    except (RuntimeError, OSError):
        if not allow_download:
            raise DatasetUnavailable(_missing_message(name, data_dir, "downloads are off")) from None
        progress(Progress("download", 0, 1, f"downloading {name} into {data_dir}"))
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            train_raw, test_raw = _torchvision_splits(name, data_dir, download=True)
        except Exception as error:  # any network or archive failure means: not available here
            raise DatasetUnavailable(_missing_message(name, data_dir, f"download failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")) from None
        progress(Progress("download", 1, 1, f"downloaded {name}"))

    def to_split(raw) -> ImageSplit:
        data = torch.as_tensor(np.asarray(raw.data))
        images = data.permute(0, 3, 1, 2) if data.ndim == 4 else data.unsqueeze(1)
        return ImageSplit(images.contiguous().to(torch.uint8), torch.as_tensor(np.asarray(raw.targets), dtype=torch.int64))

    return _make_dataset(name, to_split(train_raw), to_split(test_raw), list(train_raw.classes))


def _missing_message(name: str, data_dir: Path, reason: str) -> str:
    files = {"cifar10": "cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/)", "mnist": "MNIST/raw/*-ubyte.gz", "fashion-mnist": "FashionMNIST/raw/*-ubyte.gz"}[name]
    return f"{name} is not in {data_dir} ({reason}); put {files} there, or use the embedded default '{DEFAULT_DATASET}'"


def _folder_signature(root: Path) -> dict:
    """What identifies a folder's content cheaply: path, file count, total bytes, newest change."""
    count = total_bytes = 0
    newest = 0.0
    for directory, _, files in os.walk(root):
        for file_name in files:
            try:
                stat = os.stat(os.path.join(directory, file_name))
            except OSError:
                continue
            count += 1
            total_bytes += stat.st_size
            newest = max(newest, stat.st_mtime)
    return {"folder": str(root.resolve()), "files": count, "bytes": total_bytes, "newest": newest}


def _list_class_folders(split_dir: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")) for d in sorted(split_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")}


def _check_folder_layout(root: Path) -> None:
    """A folder dataset's root exists and holds train/ and test/ (nothing under it is read yet)."""
    if not root.is_dir():
        raise UserError(f"dataset folder {root} does not exist")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise UserError(f"dataset folder {root} has no {split}/ subfolder (expected {root}/{split}/<class>/<image>)")


def _load_folder(name: str, root: Path, progress: ProgressCallback, image_size: int | None = None) -> Dataset:
    _check_folder_layout(root)
    train_files, test_files = _list_class_folders(root / "train"), _list_class_folders(root / "test")
    if not train_files:
        raise UserError(f"{root}/train has no class subfolders (expected {root}/train/<class>/<image>)")
    class_names = list(train_files)
    if len(class_names) < 2:
        raise UserError(f"{root}/train has one class folder ({class_names[0]}); a classifier needs at least two (expected {root}/train/<class>/<image> for each class)")
    unknown = sorted(set(test_files) - set(class_names))
    if unknown:
        raise UserError(f"{root}/test has classes that train/ lacks: {', '.join(unknown)}")
    skipped: list[str] = []
    candidates = {split: {c: [] for c in class_names} for split in ("train", "test")}
    for split, files_by_class in (("train", train_files), ("test", test_files)):
        for class_name, paths in files_by_class.items():
            for path in paths:
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    candidates[split][class_name].append(path)
                else:
                    skipped.append(f"{path}: not an image file")
    all_paths = [(split, c, p) for split in ("train", "test") for c in class_names for p in candidates[split][c]]
    if not all_paths:
        raise UserError(f"{root} contains no image files")
    grayscale, side = _choose_folder_format([p for _, _, p in all_paths[:: max(1, len(all_paths) // 300)]])
    side = image_size or side
    check_image_memory(len(all_paths), 1 if grayscale else 3, side, f"{root}")
    decoded = _decode_images([p for _, _, p in all_paths], grayscale, side, progress)
    arrays = {"train": ([], []), "test": ([], [])}
    for (split, class_name, path), image_or_error in zip(all_paths, decoded):
        if isinstance(image_or_error, str):
            skipped.append(f"{path}: {image_or_error}")
            continue
        arrays[split][0].append(image_or_error)
        arrays[split][1].append(class_names.index(class_name))
    for split in ("train", "test"):
        counts = Counter(arrays[split][1])
        empty = [c for i, c in enumerate(class_names) if counts[i] == 0 and (split == "train" or c in test_files)]
        if empty:
            raise UserError(f"{root}/{split} has no readable images for class{'es' if len(empty) > 1 else ''} {', '.join(empty)}")

    def to_split(images: list[np.ndarray], labels: list[int]) -> ImageSplit:
        stacked = torch.from_numpy(np.stack(images))
        stacked = stacked.unsqueeze(1) if grayscale else stacked.permute(0, 3, 1, 2)
        return ImageSplit(stacked.contiguous(), torch.tensor(labels, dtype=torch.int64))

    return _make_dataset(name, to_split(*arrays["train"]), to_split(*arrays["test"]), class_names, skipped)


def _choose_folder_format(sample_paths: list[Path]) -> tuple[bool, int]:
    """(grayscale?, square side) for a folder: RGB unless every sampled image is grayscale; the
    most common side, clamped to MIN_IMAGE_SIDE..SMALL_IMAGE_MAX_SIDE so a classroom's models stay
    small and fast (--image-size asks for more, up to MAX_IMAGE_SIDE)."""
    from PIL import Image

    modes, sides = [], []
    for path in sample_paths:
        try:
            with Image.open(path) as image:
                modes.append(image.mode)
                sides.append(max(image.size))
        except Exception:
            continue
    grayscale = bool(modes) and all(mode in ("L", "1", "I", "I;16", "F") for mode in modes)
    side = Counter(sides).most_common(1)[0][0] if sides else 32
    return grayscale, int(min(SMALL_IMAGE_MAX_SIDE, max(MIN_IMAGE_SIDE, side)))


def _decode_one(path: Path, grayscale: bool, side: int) -> np.ndarray | str:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if image.size != (side, side):
                image = image.resize((side, side), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Exception as error:  # PIL raises many types for bad files; each becomes a skip with a reason
        return f"unreadable image ({type(error).__name__})"


def _decode_images(paths: list[Path], grayscale: bool, side: int, progress: ProgressCallback) -> list:
    results = []
    chunk = 2000
    # PIL releases the GIL while decoding, so a small thread pool uses both cores.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, len(paths), chunk):
            results.extend(pool.map(lambda p: _decode_one(p, grayscale, side), paths[start : start + chunk]))
            progress(Progress("decode", min(start + chunk, len(paths)), len(paths), "decoding images (once; cached afterwards)"))
    return results


def _cache_stem(name: str) -> str:
    if name.startswith(FOLDER_PREFIX):
        return "folder-" + "".join(ch if ch.isalnum() else "_" for ch in Path(name[len(FOLDER_PREFIX) :]).name)[:40]
    return name


def _write_cache(dataset: Dataset, path: Path) -> None:
    tensors = {
        "train_images": dataset.train.images,
        "train_labels": dataset.train.labels,
        "test_images": dataset.test.images,
        "test_labels": dataset.test.labels,
    }
    metadata = {"class_names": json.dumps(dataset.class_names), "skipped_files": json.dumps(dataset.skipped_files), "mean": json.dumps(dataset.mean), "std": json.dumps(dataset.std)}
    try:
        atomic_save_tensors(path, tensors, metadata)
    except OSError:
        pass  # a read-only workspace only costs the next start a decode


def _read_cache(name: str, path: Path) -> Dataset | None:
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
        tensors = load_file(path)
        return Dataset(
            name,
            ImageSplit(tensors["train_images"], tensors["train_labels"]),
            ImageSplit(tensors["test_images"], tensors["test_labels"]),
            json.loads(metadata["class_names"]),
            tuple(json.loads(metadata["mean"])),
            tuple(json.loads(metadata["std"])),
            json.loads(metadata["skipped_files"]),
        )
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError):
        return None

import numpy as np
import pytest
import torch
from PIL import Image

from core.foundation.data.datasets import DatasetSpec, class_balanced_subset, load_dataset, load_full_dataset
from core.foundation.errors import UserError


def write_image(path, size=(12, 12), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)


def make_folder(root, classes=("cat", "dog"), per_class=4, mode="RGB", size=(12, 12)):
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            for i in range(per_class):
                write_image(root / split / name / f"{i}.png", size, mode, seed=c * 100 + i)
    return root


def test_digits_split_is_deterministic_and_class_balanced(workspace):
    first = load_full_dataset("digits", workspace)
    second = load_full_dataset("digits", workspace)
    assert torch.equal(first.train.labels, second.train.labels)
    assert torch.equal(first.test.images, second.test.images)
    assert len(first.train) + len(first.test) == 1797
    # Stratified: every class puts 20% of its own images (to within one) into the test split.
    test_counts = torch.bincount(first.test.labels, minlength=10)
    class_counts = test_counts + torch.bincount(first.train.labels, minlength=10)
    assert ((test_counts - 0.2 * class_counts).abs() <= 1).all()
    assert first.channels == 1 and first.image_size == 8 and first.train.images.dtype == torch.uint8


def test_class_balanced_subset_is_balanced_and_reproducible(workspace):
    dataset = load_full_dataset("digits", workspace)
    subset = class_balanced_subset(dataset.train, 105, 10, seed=3, split_name="train")
    again = class_balanced_subset(dataset.train, 105, 10, seed=3, split_name="train")
    other = class_balanced_subset(dataset.train, 105, 10, seed=4, split_name="train")
    counts = torch.bincount(subset.labels, minlength=10)
    assert len(subset) == 105 and counts.max() - counts.min() <= 1
    assert torch.equal(subset.labels, again.labels) and torch.equal(subset.images, again.images)
    assert not torch.equal(subset.images, other.images)


def test_subset_smaller_than_class_count_is_refused(workspace):
    with pytest.raises(UserError, match="smaller than the 10 classes"):
        load_dataset(DatasetSpec("digits", train_size=5), workspace)


def test_folder_loader_reads_rgb_folder_and_caches_it(workspace, tmp_path):
    root = make_folder(tmp_path / "pets")
    dataset = load_dataset(DatasetSpec(f"folder:{root}"), workspace)
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.train.images.shape == (8, 3, 12, 12) and len(dataset.test) == 8
    assert sorted(dataset.train.labels.tolist()) == [0] * 4 + [1] * 4
    cached_files = list(workspace.dataset_cache_dir.glob("folder-pets-*.safetensors"))
    assert len(cached_files) == 1
    again = load_dataset(DatasetSpec(f"folder:{root}"), workspace)
    assert torch.equal(again.train.images, dataset.train.images)


def test_folder_loader_grayscale_and_mixed_sizes_become_one_square_size(workspace, tmp_path):
    root = make_folder(tmp_path / "gray", mode="L", size=(20, 20))
    write_image(root / "train" / "cat" / "odd.png", size=(30, 17), mode="L")
    dataset = load_dataset(DatasetSpec(f"folder:{root}"), workspace)
    assert dataset.channels == 1 and dataset.image_size == 20
    assert dataset.train.images.shape[0] == 9


def test_folder_loader_skips_corrupt_and_non_image_files_by_path(workspace, tmp_path):
    root = make_folder(tmp_path / "messy")
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    (root / "train" / "dog" / "notes.txt").write_text("hello")
    dataset = load_dataset(DatasetSpec(f"folder:{root}"), workspace)
    assert len(dataset.train) == 8
    assert any("broken.jpg" in entry and "unreadable" in entry for entry in dataset.skipped_files)
    assert any("notes.txt" in entry for entry in dataset.skipped_files)


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing_test", "no test/ subfolder"),
        ("empty", "no class subfolders"),
        ("empty_class", "no readable images for class bird"),
        ("nothing", "does not exist"),
    ],
)
def test_folder_loader_gives_clear_errors(workspace, tmp_path, breakage, message):
    root = tmp_path / "data"
    if breakage == "missing_test":
        make_folder(root)
        import shutil

        shutil.rmtree(root / "test")
    elif breakage == "empty":
        (root / "train").mkdir(parents=True)
        (root / "test").mkdir()
    elif breakage == "empty_class":
        make_folder(root)
        (root / "train" / "bird").mkdir()
    with pytest.raises(UserError, match=message):
        load_dataset(DatasetSpec(f"folder:{root}"), workspace)


def test_folder_with_a_single_class_is_refused_in_one_line(workspace, tmp_path):
    root = make_folder(tmp_path / "only-cats", classes=("cat",))
    with pytest.raises(UserError) as error:
        load_dataset(DatasetSpec(f"folder:{root}"), workspace)
    message = str(error.value)
    assert "one class folder (cat)" in message and "at least two" in message and str(root) in message
    assert "\n" not in message
    assert not list(workspace.dataset_cache_dir.glob("folder-only_cats-*"))  # nothing cached


def test_single_class_folder_cached_before_the_refusal_is_refused_too(workspace, tmp_path, monkeypatch):
    """A workspace may hold a one-class folder decoded by an older version; its cache is not served."""
    import core.foundation.data.datasets as datasets

    root = make_folder(tmp_path / "only-cats", classes=("cat",))

    def split():
        return datasets.ImageSplit(torch.randint(0, 255, (4, 3, 12, 12), dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))

    one_class = datasets._make_dataset(f"folder:{root}", split(), split(), ["cat"])
    with monkeypatch.context() as patch:
        patch.setattr(datasets, "_load_folder", lambda name, path, progress, image_size=None: one_class)  # what the old loader returned
        load_dataset(DatasetSpec(f"folder:{root}"), workspace)
    assert list(workspace.dataset_cache_dir.glob("folder-only_cats-*"))
    with pytest.raises(UserError, match="one class folder"):
        load_dataset(DatasetSpec(f"folder:{root}"), workspace)


def test_unknown_dataset_name_is_a_user_error(workspace):
    with pytest.raises(UserError, match="unknown dataset 'imagenet'"):
        load_dataset(DatasetSpec("imagenet"), workspace)


def test_offline_torchvision_dataset_names_the_folder(workspace, monkeypatch):
    import core.foundation.data.datasets as datasets

    def refuse_download(name, data_dir, download):
        if download:
            raise OSError("network is unreachable")
        raise RuntimeError("Dataset not found")

    monkeypatch.setattr(datasets, "_torchvision_splits", refuse_download)
    with pytest.raises(datasets.DatasetUnavailable) as error:
        load_dataset(DatasetSpec("cifar10"), workspace)
    assert str(workspace.data_dir) in str(error.value) and "cifar-10-python.tar.gz" in str(error.value)
    assert "digits" in str(error.value)

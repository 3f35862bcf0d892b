"""Images at their real size (issue 27, part 4): folders and built-in datasets resized with
--image-size up to 224 px, torchvision's own stem above SMALL_IMAGE_MAX_SIDE, memory estimated
before decoding, and the latency protocol's batch of 32 for such images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.foundation.data import datasets
from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.measures.latency_protocol import REAL_SIZE_THROUGHPUT_BATCH_SIZE, THROUGHPUT_BATCH_SIZE, throughput_batch_size
from core.foundation.models.names import SMALL_IMAGE_MAX_SIDE
from core.foundation.models.registry import build_model
from tests.conftest import cli_in_process


def _image_folder(root, side: int, per_class: int = 6):
    """Two classes of RGB images `side` px square: left half bright for 'a', right half for 'b'."""
    generator = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, column in (("a", slice(0, side // 2)), ("b", slice(side // 2, side))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(per_class):
                pixels = generator.integers(0, 60, (side, side, 3), dtype=np.uint8)
                pixels[:, column] += 150
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"])
def test_above_the_small_image_side_a_network_is_torchvisions_own(arch):
    """A torchvision state dict at 224 px loads into the registry's network and gives torchvision's
    outputs: same stem, same strides (weights trained at their real size see their own network)."""
    from torchvision.models import get_model

    torch.manual_seed(0)
    reference = get_model(arch, weights=None, num_classes=10).eval()
    ours = build_model(arch, 3, 224, 10).eval()
    ours.load_state_dict(reference.state_dict())
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), atol=1e-4, rtol=1e-4)
    small = build_model(arch, 3, SMALL_IMAGE_MAX_SIDE, 10)
    assert next(m for m in small.modules() if isinstance(m, torch.nn.Conv2d)).stride != next(m for m in ours.modules() if isinstance(m, torch.nn.Conv2d)).stride


def test_the_small_vision_transformer_refuses_real_size_images_in_one_line():
    with pytest.raises(UserError, match=r"vit_tiny_p4 takes images of at most 64x64 pixels \(4-pixel patches.*choose --image-size 64 or less"):
        build_model("vit_tiny_p4", 3, 96, 10)


def test_a_folder_is_decoded_small_by_default_and_at_the_asked_size_with_image_size(workspace, tmp_path):
    folder = _image_folder(tmp_path / "photos", side=100)
    default = load_dataset(DatasetSpec(f"folder:{folder}"), workspace)
    assert default.image_size == SMALL_IMAGE_MAX_SIDE  # the classroom's size, as before
    real = load_dataset(DatasetSpec(f"folder:{folder}", image_size=96), workspace)
    assert real.image_size == 96 and real.test.images.dtype == torch.uint8 and len(real.test) == 12
    assert load_dataset(DatasetSpec(f"folder:{folder}"), workspace).image_size == SMALL_IMAGE_MAX_SIDE  # two caches, neither replaced


def test_a_built_in_dataset_is_resized_and_its_spec_keeps_older_keys(workspace):
    digits = load_dataset(DatasetSpec("digits", image_size=32), workspace)
    assert digits.image_size == 32 and len(digits.test) == 360
    assert "image_size" not in DatasetSpec("digits").as_dict()  # configurations named before it keep their keys
    assert DatasetSpec(**DatasetSpec("digits", image_size=32).as_dict()) == DatasetSpec("digits", image_size=32)


def test_images_too_large_for_the_memory_left_are_refused_before_decoding(workspace, tmp_path, monkeypatch):
    folder = _image_folder(tmp_path / "photos", side=40)
    monkeypatch.setattr(datasets, "available_memory_bytes", lambda: 100_000)
    decoded = []
    monkeypatch.setattr(datasets, "_decode_images", lambda *args: decoded.append(args) or [])
    with pytest.raises(UserError, match=r"24 images at 224x224x3 need 0.0 GB as uint8, and 0.0 GB of memory is free .* choose a smaller --image-size or fewer images"):
        load_dataset(DatasetSpec(f"folder:{folder}", image_size=224), workspace)
    assert not decoded


def test_images_at_their_real_size_are_timed_in_batches_of_32():
    assert throughput_batch_size(SMALL_IMAGE_MAX_SIDE) == THROUGHPUT_BATCH_SIZE
    assert throughput_batch_size(SMALL_IMAGE_MAX_SIDE + 1) == REAL_SIZE_THROUGHPUT_BATCH_SIZE == 32


def test_a_torchvision_state_dict_at_real_size_becomes_the_baseline_with_torchvisions_predictions(workspace, tmp_path, capsys):
    """`train --model resnet18 --weights FILE --image-size 96`: the brought file, evaluated in its own
    (torchvision) network on the resized folder, predicts what torchvision's model predicts."""
    from torchvision.models import resnet18

    folder = _image_folder(tmp_path / "photos", side=120)
    torch.manual_seed(1)
    theirs = resnet18(weights=None, num_classes=2).eval()
    weights = tmp_path / "resnet18_photos.pth"
    torch.save({"model": theirs.state_dict()}, weights)
    completed = cli_in_process(capsys, "train", "--model", "resnet18", "--weights", str(weights), "--dataset", f"folder:{folder}", "--image-size", "96", "--workspace", str(workspace.root))
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    assert payload["dataset"]["image_size"] == 96 and payload["latency_batch_size"] == 32
    dataset = load_dataset(DatasetSpec(f"folder:{folder}", image_size=96), workspace)
    with torch.no_grad():
        expected = (theirs(dataset.normalize(dataset.test.images)).argmax(1) == dataset.test.labels).float().mean().item()
    assert payload["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert "evaluating 12/12 test images" in completed.stderr  # progress of the recorded headline

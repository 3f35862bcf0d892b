"""One test on real CIFAR-10 images (the JPEG copy in ../shared/data), loaded through folder:."""

import pytest
import torch

from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.models.registry import build_model
from core.foundation.training.loop import TrainRecipe, evaluate, train_model


@pytest.mark.slow
def test_real_cifar10_folder_loads_and_trains_well_above_chance(cifar_folder, workspace):
    dataset = load_dataset(DatasetSpec(f"folder:{cifar_folder}", train_size=10_000, test_size=2_000), workspace)
    assert dataset.class_names == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert dataset.channels == 3 and dataset.image_size == 32 and not dataset.skipped_files
    assert len(dataset.train) == 10_000 and torch.bincount(dataset.train.labels).tolist() == [1000] * 10
    torch.manual_seed(0)
    model = build_model("simple_cnn", 3, 32, 10)
    train_model(model, dataset, TrainRecipe(epochs=2, batch_size=128, learning_rate=3e-3), torch.device("cpu"), evaluate_each_epoch=False)
    # Chance is 10%; two quick epochs on 10,000 real images reach about 40%.
    assert evaluate(model, dataset, dataset.test).accuracy > 0.30

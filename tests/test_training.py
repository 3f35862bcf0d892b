import threading

import pytest
import torch

from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.models.registry import build_model
from core.foundation.progress import Progress
from core.foundation.training.loop import MAX_EPOCHS, TrainRecipe, augment_batch, evaluate, evaluation_from_logits, train_model


def test_training_on_digits_reaches_90_percent(workspace):
    dataset = load_dataset(DatasetSpec("digits"), workspace)
    torch.manual_seed(0)
    model = build_model("simple_cnn", 1, 8, 10)
    events: list[Progress] = []
    result = train_model(model, dataset, TrainRecipe(epochs=12, batch_size=64, learning_rate=3e-3), torch.device("cpu"), seed=0, progress=events.append)
    assert evaluate(model, dataset, dataset.test).accuracy >= 0.90
    assert [record.epoch for record in result.history] == list(range(1, 13))
    assert events and events[-1].fraction == 1.0 and "loss" in events[0].metrics and "eta_seconds" in events[0].metrics


def test_training_is_deterministic_for_a_seed(workspace):
    dataset = load_dataset(DatasetSpec("digits", train_size=200), workspace)
    weights = []
    for _ in range(2):
        torch.manual_seed(5)
        model = build_model("simple_cnn", 1, 8, 10)
        train_model(model, dataset, TrainRecipe(epochs=2, batch_size=32), torch.device("cpu"), seed=5, evaluate_each_epoch=False)
        weights.append(model.fc3.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_stop_flag_ends_training_early(workspace):
    dataset = load_dataset(DatasetSpec("digits"), workspace)
    stop = threading.Event()

    def stop_after_first_report(progress: Progress) -> None:
        stop.set()

    result = train_model(build_model("simple_cnn", 1, 8, 10), dataset, TrainRecipe(epochs=20), torch.device("cpu"), progress=stop_after_first_report, stop=stop)
    assert result.stopped and len(result.history) <= 1


def test_zero_epochs_leaves_the_model_untouched(workspace):
    dataset = load_dataset(DatasetSpec("digits"), workspace)
    model = build_model("simple_cnn", 1, 8, 10)
    before = model.fc3.weight.detach().clone()
    result = train_model(model, dataset, TrainRecipe(epochs=0), torch.device("cpu"))
    assert result.history == [] and torch.equal(before, model.fc3.weight)


def test_augmentation_shifts_and_flips_but_keeps_shape():
    images = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    augmented, flipped = augment_batch(images, "flip_crop", torch.Generator().manual_seed(0))
    assert augmented.shape == images.shape and flipped.dtype == torch.bool
    unchanged, none_flipped = augment_batch(images, "none", torch.Generator())
    assert torch.equal(unchanged, images) and not none_flipped.any()


def test_evaluation_counts_confusion_and_per_class_accuracy():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0], [0, 0, 5.0]])
    labels = torch.tensor([0, 1, 1, 2])
    evaluation = evaluation_from_logits(logits, labels, 3)
    assert evaluation.accuracy == 0.75
    assert evaluation.confusion == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert evaluation.per_class_accuracy == [1.0, 0.5, 1.0]


def test_a_run_with_very_few_steps_still_trains(workspace):
    dataset = load_dataset(DatasetSpec("digits", train_size=20), workspace)
    result = train_model(build_model("simple_cnn", 1, 8, 10), dataset, TrainRecipe(epochs=1, batch_size=128), torch.device("cpu"))
    assert len(result.history) == 1


def test_recipes_outside_the_epoch_cap_are_refused():
    TrainRecipe(epochs=0).validate()
    TrainRecipe(epochs=MAX_EPOCHS).validate()
    for epochs in (-1, MAX_EPOCHS + 1):
        with pytest.raises(UserError, match=f"epochs must be between 0 and {MAX_EPOCHS}, got {epochs}"):
            TrainRecipe(epochs=epochs).validate()
    with pytest.raises(UserError, match="unknown augmentation"):
        TrainRecipe(epochs=1, augment="rotate").validate()

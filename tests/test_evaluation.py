"""The one quick evaluator (core.foundation.training.quick_evaluation): a fixed, class-balanced test subset whose accuracy is
the full evaluation's on the same images."""

from __future__ import annotations

import pytest
import torch

from core.foundation.models.names import LAB_OWN, MODEL_NAMES, model_group
from core.foundation.models.registry import build_model
from core.foundation.training.loop import evaluate
from core.foundation.training.quick_evaluation import EVAL_SUBSET_SIZE, TORCHVISION_PREVIEW_SIZE, QuickEvaluator, evaluation_subset, preview_subset_size


def test_the_subset_is_class_balanced_and_repeatable(digits_baseline):
    dataset = digits_baseline.dataset
    subset = evaluation_subset(dataset, 200)
    assert len(subset.test) == 200 and subset.train is dataset.train
    assert torch.bincount(subset.test.labels, minlength=dataset.num_classes).tolist() == [20] * dataset.num_classes
    again = evaluation_subset(dataset, 200)
    assert torch.equal(again.test.images, subset.test.images) and torch.equal(again.test.labels, subset.test.labels)
    other = evaluation_subset(dataset, 200, seed=1)
    assert not torch.equal(other.test.labels, subset.test.labels) or not torch.equal(other.test.images, subset.test.images)


def test_a_subset_larger_than_the_test_split_is_the_whole_split(digits_baseline):
    dataset = digits_baseline.dataset
    assert len(dataset.test) < EVAL_SUBSET_SIZE
    evaluator = QuickEvaluator(dataset)
    assert evaluator.images == len(dataset.test)
    assert evaluator.accuracy(digits_baseline.model) == pytest.approx(evaluate(digits_baseline.model, dataset, dataset.test).accuracy, abs=1e-6)


def test_quick_accuracy_and_logits_match_the_full_evaluation_on_the_same_images(digits_baseline):
    dataset = digits_baseline.dataset
    evaluator = QuickEvaluator(dataset, "cpu", 150)
    assert evaluator.images == len(evaluator.split) == 150 and evaluator.dataset.test is evaluator.split
    logits = evaluator.logits(digits_baseline.model)
    assert logits.shape == (150, dataset.num_classes)
    expected = evaluate(digits_baseline.model, evaluator.dataset, evaluator.split)
    assert evaluator.accuracy(digits_baseline.model) == pytest.approx(expected.accuracy, abs=1e-6)
    torch.manual_seed(0)
    untrained = build_model("simple_cnn", dataset.channels, dataset.image_size, dataset.num_classes).eval()
    assert evaluator.accuracy(untrained) < evaluator.accuracy(digits_baseline.model) - 0.5  # it measures the model, not a constant


def test_previews_of_torchvision_networks_use_fewer_images_than_the_labs_own():
    """A slider preview of a torchvision network costs 10-100x a lab model per image: it evaluates
    TORCHVISION_PREVIEW_SIZE images, the lab's own EVAL_SUBSET_SIZE, and the page says how many."""
    assert TORCHVISION_PREVIEW_SIZE < EVAL_SUBSET_SIZE
    for name in MODEL_NAMES:
        expected = EVAL_SUBSET_SIZE if model_group(name) == LAB_OWN else TORCHVISION_PREVIEW_SIZE
        assert preview_subset_size(name) == expected, name
    assert preview_subset_size("simple_cnn") == EVAL_SUBSET_SIZE and preview_subset_size("mobilenet_v2_x0_5") == TORCHVISION_PREVIEW_SIZE

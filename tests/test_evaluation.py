"""The one quick evaluator (core.foundation.training.quick_evaluation): a fixed, class-balanced test subset whose accuracy is
the full evaluation's on the same images."""

from __future__ import annotations

import pytest
import torch

from core.foundation.models.registry import build_model
from core.foundation.training.loop import evaluate
from core.foundation.training.quick_evaluation import EVAL_SUBSET_SIZE, QuickEvaluator, evaluation_subset


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

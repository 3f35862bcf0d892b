"""ModelSource: what every technique starts from, whether a baseline, any recorded run, or the
model a pipeline step just made."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource, compose_removed_channels
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.training.loop import evaluate
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.quantization.config import SimulateConfig
from core.quantization.run import quantize


def test_a_baseline_source_carries_its_run_and_figures(digits_baseline):
    source = ModelSource.from_baseline(digits_baseline)
    assert (source.run_id, source.lineage, source.technique, source.architecture) == (digits_baseline.run_id, (digits_baseline.run_id,), "train", "simple_cnn")
    assert source.accuracy == digits_baseline.evaluation.accuracy and source.recipe == digits_baseline.recipe and source.dataset_spec.name == "digits"
    assert (source.size_bytes(), source.params(), source.macs()) == (digits_baseline.metrics.size_bytes, digits_baseline.metrics.params, digits_baseline.metrics.macs)
    assert source.example_input().shape == (1, 1, 8, 8) and not source.quantized
    copy = source.fresh_copy()
    with torch.no_grad():
        copy.conv1.weight.zero_()
    assert source.model.conv1.weight.abs().sum() > 0  # a technique changes its copy, never the source
    assert f"run #{digits_baseline.run_id}" in source.label and "train" in source.label


def test_a_recorded_run_reads_back_as_the_same_model(session_workspace, digits_baseline):
    source = ModelSource.from_run(session_workspace, digits_baseline.run_id, device="cpu")
    assert source.run_id == digits_baseline.run_id and source.lineage == (digits_baseline.run_id,) and source.technique == "train"
    assert source.accuracy == pytest.approx(digits_baseline.evaluation.accuracy) and source.recipe == digits_baseline.recipe
    for name, tensor in digits_baseline.model.state_dict().items():
        assert torch.equal(source.model.state_dict()[name].cpu(), tensor.cpu()), name


def test_an_unknown_run_is_a_user_error(session_workspace):
    missing = history.count_runs(session_workspace.history_db) + 1000
    with pytest.raises(UserError, match=f"no run #{missing}"):
        ModelSource.from_run(session_workspace, missing)


def test_a_quantized_run_is_refused_as_a_source_and_names_its_parent(session_workspace, digits_baseline):
    source = ModelSource.from_baseline(digits_baseline)
    result = quantize(source, SimulateConfig(bits=4), RunContext(session_workspace))
    run_id = record(result, session_workspace)
    with pytest.raises(UserError, match=f"run #{run_id} is a quantized model.*run #{digits_baseline.run_id}"):
        ModelSource.from_run(session_workspace, run_id)
    # The same model handed on in memory (a pipeline's next step) is refused by any technique that compresses.
    handed_on = ModelSource.from_result(result, run_id)
    assert handed_on.quantized and handed_on.lineage == (digits_baseline.run_id, run_id) and handed_on.technique == "quantize"
    with pytest.raises(UserError, match=f"already quantized.*run #{digits_baseline.run_id}"):
        handed_on.check_compressible("pruning")
    source.check_compressible("pruning")  # a floating-point model passes


def test_a_result_measured_on_a_subset_is_re_measured_on_the_full_test_split(session_workspace, digits_baseline):
    source = ModelSource.from_baseline(digits_baseline)
    evaluator = QuickEvaluator(digits_baseline.dataset, size=100)
    result = quantize(source, SimulateConfig(bits=3), RunContext(session_workspace), evaluator=evaluator)
    assert result.headline.eval_images == 100 < len(digits_baseline.dataset.test)
    handed_on = ModelSource.from_result(result, None)
    full = evaluate(result.model, digits_baseline.dataset, digits_baseline.dataset.test).accuracy
    assert handed_on.accuracy == full and handed_on.lineage == source.lineage and handed_on.run_id is None


def test_channels_removed_twice_map_back_to_the_full_architecture():
    # conv1 has 8 channels; the first step removed 1 and 4, leaving [0, 2, 3, 5, 6, 7]; the second removes that list's 0 and 3 (channels 0 and 5).
    assert compose_removed_channels({"conv1": [1, 4]}, {"conv1": [0, 3]}, {"conv1": 8, "conv2": 4}) == {"conv1": [0, 1, 4, 5]}
    assert compose_removed_channels({}, {"conv2": [2]}, {"conv1": 8, "conv2": 4}) == {"conv2": [2]}
    assert compose_removed_channels({"conv1": [7]}, {}, {"conv1": 8}) == {"conv1": [7]}


def test_a_quantized_source_without_a_recorded_parent_names_none(digits_baseline):
    quantized = dataclasses.replace(ModelSource.from_baseline(digits_baseline), quantized=True, lineage=(digits_baseline.run_id,))
    with pytest.raises(UserError, match="already quantized; distillation needs a floating-point model$"):
        quantized.check_compressible("distillation")

"""Pruning a model that was already pruned: the channels removed along the lineage are composed
(as indices of the full architecture), so the recorded artifact rebuilds the model exactly."""

from __future__ import annotations

import json

import pytest
import torch

from core.cli.main import main
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource, compose_removed_channels
from core.foundation import history
from core.foundation.measures.metrics import count_parameters
from core.foundation.models.registry import build_model
from core.foundation.training.loop import predict_logits
from core.pruning import PruneConfig, global_sparsity, prune
from core.pruning.stats import output_channels

CPU = torch.device("cpu")


def test_compose_maps_the_second_step_back_through_the_channels_the_first_left():
    # Layer a had 6 channels; step one removed 1 and 3, leaving [0, 2, 4, 5]. Step two removes
    # positions 0 and 2 of those, i.e. channels 0 and 4 of the full layer.
    combined = compose_removed_channels({"a": [3, 1]}, {"a": [0, 2], "b": [1]}, {"a": 6, "b": 4})
    assert combined == {"a": [0, 1, 3, 4], "b": [1]}
    assert compose_removed_channels({"a": [2]}, {"a": []}, {"a": 4}) == {"a": [2]}
    assert compose_removed_channels({}, {"a": [1, 0]}, {"a": 3}) == {"a": [0, 1]}


def full_channels(source: ModelSource) -> dict[str, int]:
    dataset = source.dataset
    return output_channels(build_model(source.architecture, dataset.channels, dataset.image_size, dataset.num_classes))


def logits_of(model, dataset):
    return predict_logits(model, dataset, dataset.test, CPU)


def assert_same_predictions(rebuilt: torch.nn.Module, model: torch.nn.Module, dataset) -> None:
    """On the whole test set: the recorded artifact computes what the technique's model computed."""
    expected, got = logits_of(model.cpu(), dataset), logits_of(rebuilt.cpu(), dataset)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def pruned_run(digits_baseline, session_workspace):
    """The baseline with half of its channels removed, recorded: (result, run id)."""
    result = prune(ModelSource.from_baseline(digits_baseline), PruneConfig(method="l1", granularity="channel", amount=0.5, remove=True), RunContext(session_workspace))
    return result, record(result, session_workspace)


def test_from_run_reads_a_pruned_run_back_at_its_smaller_size(digits_baseline, session_workspace, pruned_run):
    result, run_id = pruned_run
    source = ModelSource.from_run(session_workspace, run_id)
    assert source.run_id == run_id and source.technique == "prune" and source.architecture == "simple_cnn"
    assert source.lineage == (digits_baseline.run_id, run_id)
    assert source.pruned_channels == result.pruned_channels and source.pruned_channels  # what was removed, full-architecture indices
    assert source.params() == result.headline.params_after < count_parameters(digits_baseline.model)
    assert source.accuracy == pytest.approx(result.headline.accuracy_after, abs=1e-6)  # both on the full test split
    assert_same_predictions(source.model, result.model, digits_baseline.dataset)


def test_pruning_a_pruned_run_with_removal_composes_the_removed_channels(digits_baseline, session_workspace, pruned_run):
    first, first_id = pruned_run
    source = ModelSource.from_run(session_workspace, first_id)
    second = prune(source, PruneConfig(method="l1", granularity="channel", amount=0.3, remove=True), RunContext(session_workspace))
    second_id = record(second, session_workspace)

    full = full_channels(source)
    removed_now = second.report.pruned_channels  # indices of the channels the first step left
    assert removed_now and second.pruned_channels != removed_now
    for layer, indices in second.pruned_channels.items():
        assert set(first.pruned_channels.get(layer, [])) <= set(indices)
        assert len(indices) == len(first.pruned_channels.get(layer, [])) + len(removed_now.get(layer, []))
        assert dict(second.model.named_modules())[layer].weight.shape[0] == full[layer] - len(indices)
    assert second.headline.params_before == source.params() and second.headline.params_after < second.headline.params_before

    run = history.get_run(session_workspace.history_db, second_id)
    assert run.parent_id == first_id and run.params["lineage"] == [digits_baseline.run_id, first_id]
    rebuilt = ModelSource.from_run(session_workspace, second_id)
    assert rebuilt.pruned_channels == second.pruned_channels and rebuilt.lineage == (digits_baseline.run_id, first_id, second_id)
    assert_same_predictions(rebuilt.model, second.model, digits_baseline.dataset)


def test_pruning_from_a_result_composes_too_and_masks_keep_the_removed_shape(digits_baseline, session_workspace, pruned_run):
    first, first_id = pruned_run
    source = ModelSource.from_result(first, first_id)  # a pipeline's next step: no reload
    assert source.pruned_channels == first.pruned_channels and source.accuracy == first.headline.accuracy_after

    removed = prune(source, PruneConfig(method="ln", granularity="channel", amount=0.25, remove=True), RunContext(session_workspace))
    removed_id = record(removed, session_workspace)
    assert_same_predictions(ModelSource.from_run(session_workspace, removed_id).model, removed.model, digits_baseline.dataset)

    # Masks only (no removal now) on the smaller model: the artifact still rebuilds the removed shape.
    masked = prune(source, PruneConfig(method="l1", granularity="unstructured", amount=0.6), RunContext(session_workspace))
    masked_id = record(masked, session_workspace)
    assert masked.pruned_channels == first.pruned_channels
    reloaded = ModelSource.from_run(session_workspace, masked_id)
    assert reloaded.params() == source.params() and global_sparsity(reloaded.model) == pytest.approx(masked.report.sparsity)
    assert_same_predictions(reloaded.model, masked.model, digits_baseline.dataset)


def test_cli_prunes_a_pruned_run_with_from_run(digits_baseline, session_workspace, pruned_run, capsys):
    first, first_id = pruned_run
    code = main(["prune", "--from-run", str(first_id), "--granularity", "channel", "--amount", "0.2", "--remove", "--workspace", str(session_workspace.root)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out.strip().splitlines()[-1])
    assert payload["source_run_id"] == first_id and payload["params_before"] == first.headline.params_after > payload["params_after"]
    assert history.get_run(session_workspace.history_db, payload["run_id"]).parent_id == first_id
    rebuilt = ModelSource.from_run(session_workspace, payload["run_id"])
    assert rebuilt.params() == payload["params_after"]
    assert all(set(first.pruned_channels[layer]) <= set(rebuilt.pruned_channels[layer]) for layer in first.pruned_channels)

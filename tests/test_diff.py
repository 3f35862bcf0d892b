"""What compression changed, example by example and layer by layer (core.diff, `python -m core diff`)."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from core.contract import predictions as predictions_module
from core.contract.predictions import artifact_fingerprint, fingerprint_test_split, predictions_path, run_predictions
from core.contract.run_models import package_for_run
from core.diff.exemplars import exemplars_for_baseline, find_exemplars
from core.diff.layers import MAX_SQNR_DB, compare_packages
from core.diff.pairs import diff_predictions
from core.diff.runs import diff_runs
from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.errors import UserError
from core.foundation.workspace import META_FILE, WEIGHTS_FILE, Workspace, atomic_save_tensors, save_checkpoint
from core.pruning import PruneConfig, prune
from core.quantization import SimulateConfig, StaticInt8Config, quantize
from tests.conftest import cli_in_process, recorded_history


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A small digits history: a baseline and one run of each kind of change, all recorded."""
    return recorded_history(
        tmp_path_factory.mktemp("diff-home"),
        {
            "masked": (prune, PruneConfig(amount=0.8)),
            "removed": (prune, PruneConfig(granularity="channel", amount=0.5, remove=True)),
            "static": (quantize, StaticInt8Config(calibration_size=128)),
            "bits8": (quantize, SimulateConfig(bits=8, activations=True, calibration_size=128)),
            "bits4": (quantize, SimulateConfig(bits=4, activations=True, calibration_size=128)),
            "bits2": (quantize, SimulateConfig(bits=2, activations=True, calibration_size=128)),
        },
    )


def recorded_accuracy(workspace: Workspace, run_id: int) -> float:
    return history.get_run(workspace.history_db, run_id).metrics["accuracy"]


@pytest.mark.parametrize("name", ["masked", "removed", "static", "bits4"])
def test_the_table_adds_up_and_matches_each_run_s_recorded_accuracy(runs, name):
    workspace, ids = runs["workspace"], runs["ids"]
    comparison = diff_runs(workspace, ids[name])
    diff = comparison.predictions
    images = len(runs["dataset"].test)
    assert diff.run_b == ids["baseline"]  # B defaults to A's parent
    assert diff.both_right + diff.only_a_right + diff.only_b_right + diff.both_wrong == diff.test_images == images
    assert diff.accuracy_a == pytest.approx(recorded_accuracy(workspace, ids[name]), abs=1e-6)
    assert diff.accuracy_b == pytest.approx(recorded_accuracy(workspace, ids["baseline"]), abs=1e-6)
    assert diff.only_a_right - diff.only_b_right == round((diff.accuracy_a - diff.accuracy_b) * images)
    per_class_images = sum(change.images for change in diff.per_class)
    assert per_class_images == images


def test_the_gallery_holds_exactly_the_flipped_images_worst_first(runs):
    workspace, ids = runs["workspace"], runs["ids"]
    a = run_predictions(workspace, ids["masked"])
    b = run_predictions(workspace, ids["baseline"])
    diff = diff_runs(workspace, ids["masked"]).predictions
    changed = set(torch.nonzero(a.predicted != b.predicted).flatten().tolist())
    assert changed, "an 80% magnitude-pruned model without fine-tuning changes some predictions"
    assert {image.index for image in diff.flipped} == changed
    drops = [image.true_probability_change for image in diff.flipped]
    assert drops == sorted(drops)  # the biggest loss of the true class first
    for image in diff.flipped:
        assert image.prediction_a == int(a.predicted[image.index]) and image.prediction_b == int(b.predicted[image.index])
        assert image.true_label == int(a.labels[image.index])
    assert diff.agreement == pytest.approx(1 - len(changed) / diff.test_images)


def test_the_sentence_names_the_classes_that_lose_most(runs):
    diff = diff_runs(runs["workspace"], runs["ids"]["masked"]).predictions
    worst = min(diff.per_class, key=lambda change: change.change_points)
    assert worst.change_points < 0
    assert f"{worst.class_name} ({worst.change_points:+.1f} points)" in diff.sentence()


def test_a_model_against_itself_agrees_everywhere_and_has_no_layer_error(runs):
    workspace, ids = runs["workspace"], runs["ids"]
    comparison = diff_runs(workspace, ids["baseline"], ids["baseline"])
    assert comparison.predictions.agreement == 1.0 and comparison.predictions.flipped == []
    assert comparison.predictions.only_a_right == comparison.predictions.only_b_right == 0
    assert comparison.layers is not None and len(comparison.layers.layers) == 5
    for layer in comparison.layers.layers:
        assert layer.relative_error == 0.0 and layer.sqnr_db == MAX_SQNR_DB


def test_layer_error_grows_as_bits_fall_and_activations_add_to_it(runs):
    workspace, ids = runs["workspace"], runs["ids"]
    reports = {bits: diff_runs(workspace, ids[f"bits{bits}"]).layers for bits in (8, 4, 2)}
    layer_names = [layer.layer for layer in reports[8].layers]
    assert layer_names == ["conv1", "conv2", "fc1", "fc2", "fc3"]  # network order
    for index in range(len(layer_names)):
        sqnr = [reports[bits].layers[index].sqnr_db for bits in (8, 4, 2)]
        assert sqnr[0] > sqnr[1] > sqnr[2]
    for layer in reports[4].layers:
        assert layer.weights_only_sqnr_db is not None
        assert layer.weights_only_relative_error <= layer.relative_error  # quantizing the inputs too only adds error here


def test_channel_removal_is_compared_in_the_full_architecture_s_positions(runs):
    workspace, ids = runs["workspace"], runs["ids"]
    report = diff_runs(workspace, ids["removed"]).layers
    assert report is not None
    assert report.layers[0].layer == "conv1" and report.layers[0].relative_error > 0.1  # half of conv1's outputs are gone


def test_predictions_are_cached_and_recomputed_when_the_artifact_changes(runs, monkeypatch):
    workspace, ids = runs["workspace"], runs["ids"]
    run_id = ids["masked"]
    first = run_predictions(workspace, run_id)
    rebuilds = []
    original = predictions_module.model_for_run
    monkeypatch.setattr(predictions_module, "model_for_run", lambda *args: rebuilds.append(args) or original(*args))
    second = run_predictions(workspace, run_id)
    assert second.from_cache and rebuilds == []
    assert torch.equal(first.logits, second.logits)
    # Change the run's weights on disk (a valid checkpoint with other numbers): the stamp no longer matches.
    run = history.get_run(workspace.history_db, run_id)
    folder = workspace.resolve_artifact(run.artifact_path)
    from safetensors.torch import load_file

    tensors = load_file(folder / WEIGHTS_FILE)
    meta = json.loads((folder / META_FILE).read_text())
    tensors = {name: tensor * 0.5 if name == "fc3.weight" else tensor for name, tensor in tensors.items()}
    save_checkpoint(folder, tensors, {key: value for key, value in meta.items() if key != "weights_sha256"})
    third = run_predictions(workspace, run_id)
    assert not third.from_cache and len(rebuilds) == 1
    assert not torch.equal(third.logits, first.logits)
    assert run_predictions(workspace, run_id).from_cache


def test_a_quantize_run_s_predictions_are_those_of_the_model_it_measured(runs):
    workspace, ids = runs["workspace"], runs["ids"]
    run = history.get_run(workspace.history_db, ids["static"])
    path = predictions_path(workspace, run.id, fingerprint_test_split(runs["dataset"]))
    assert path.is_file()  # written by record(), from the int8 graph itself
    rebuilt = predictions_module.model_for_run(workspace, run, runs["dataset"])
    rebuilt_accuracy = float((predictions_module.logits_on_test_split(rebuilt, runs["dataset"]).argmax(1) == runs["dataset"].test.labels).float().mean())
    assert rebuilt_accuracy == pytest.approx(recorded_accuracy(workspace, run.id), abs=0.01)  # the file rebuilds it closely


def test_find_exemplars_ranks_images_most_descendants_miss():
    labels = torch.tensor([0, 1, 2, 3, 0])
    baseline = torch.tensor([0, 1, 2, 3, 1])  # image 4 the baseline already gets wrong
    descendants = [torch.tensor([0, 0, 2, 0, 0]), torch.tensor([0, 0, 1, 0, 0]), torch.tensor([0, 0, 2, 1, 0])]
    found = find_exemplars(baseline, descendants, labels)
    assert [(e.index, e.failing_descendants) for e in found] == [(1, 3), (3, 3)]  # image 2 fails in one of three: not "most"
    assert found[0].commonest_wrong_label == 0 and found[1].commonest_wrong_label == 0
    assert find_exemplars(baseline, [], labels) == []


def test_exemplars_over_a_hand_made_history(runs, tmp_path):
    """A baseline and three descendants whose predictions are set by hand: the ranking is known."""
    source_workspace, ids = runs["workspace"], runs["ids"]
    workspace = Workspace.open(tmp_path / "hand-made")
    baseline_run = history.get_run(source_workspace.history_db, ids["baseline"])
    artifact = source_workspace.resolve_artifact(baseline_run.artifact_path)
    dataset = runs["dataset"]
    base_id = history.record_run(workspace.history_db, "train", "digits", "simple_cnn", baseline_run.params, baseline_run.metrics, artifact_path=str(artifact))
    child_ids = [
        history.record_run(workspace.history_db, "prune", "digits", "simple_cnn", {"dataset": baseline_run.params["dataset"]}, {}, parent_id=base_id, artifact_path=str(artifact)) for _ in range(3)
    ]
    labels = dataset.test.labels
    classes = dataset.num_classes

    def store(run_id: int, predicted: torch.Tensor) -> None:
        logits = torch.nn.functional.one_hot(predicted, classes).float() * 5
        run = history.get_run(workspace.history_db, run_id)
        atomic_save_tensors(
            predictions_path(workspace, run_id, fingerprint_test_split(dataset)),
            {"logits": logits},
            metadata={"artifact_sha256": artifact_fingerprint(workspace, run), "version": predictions_module.CACHE_VERSION},
        )

    wrong = (labels + 1) % classes
    store(base_id, labels)  # the baseline gets every image right
    store(child_ids[0], torch.where(torch.arange(len(labels)) < 3, wrong, labels))  # images 0-2 wrong
    store(child_ids[1], torch.where(torch.arange(len(labels)) < 2, wrong, labels))  # images 0-1 wrong
    store(child_ids[2], torch.where(torch.arange(len(labels)) < 1, wrong, labels))  # image 0 wrong
    report = exemplars_for_baseline(workspace, base_id)
    assert report.descendant_run_ids == child_ids and report.skipped == []
    assert [(e.index, e.failing_descendants) for e in report.exemplars] == [(0, 3), (1, 2)]  # image 2: one of three
    assert "3 compressed descendants" in report.sentence()


def test_runs_on_different_test_sets_are_refused(runs, tmp_path):
    workspace, ids = runs["workspace"], runs["ids"]
    subset = get_baseline(BaselineConfig(DatasetSpec("digits", test_size=100), epochs=1), workspace)
    with pytest.raises(UserError, match="different test sets"):
        diff_runs(workspace, ids["masked"], subset.run_id)
    with pytest.raises(UserError, match="no run #999"):
        diff_runs(workspace, 999)
    with pytest.raises(UserError, match="has no parent"):
        diff_runs(workspace, ids["baseline"])


def test_diff_predictions_refuses_mismatched_shapes():
    with pytest.raises(UserError, match="different test sets"):
        diff_predictions(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(4, dtype=torch.long), ["a", "b", "c"])


def run_cli(capsys, *args: str, workspace: Workspace) -> subprocess.CompletedProcess:
    return cli_in_process(capsys, *args, "--workspace", str(workspace.root))


@pytest.mark.slow
def test_cli_diff_prints_the_comparison_as_its_last_json_line(runs, capsys):
    workspace, ids = runs["workspace"], runs["ids"]
    expected = diff_runs(workspace, ids["bits4"]).as_dict()  # first: both sides' predictions are then cached, whatever ran before
    completed = run_cli(capsys, "diff", "--run", str(ids["bits4"]), workspace=workspace)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    for key in ("run_a", "run_b", "test_images", "agreement", "both_right", "only_a_right", "only_b_right", "both_wrong", "flipped"):
        assert payload[key] == expected[key], key
    assert payload["run_b"] == ids["baseline"]
    assert [row["class"] for row in payload["per_class"]] == list(runs["dataset"].class_names)
    assert all({"accuracy_a", "accuracy_b"} <= set(row) for row in payload["per_class"])
    assert [layer["layer"] for layer in payload["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert payload["from_cache"] == {"a": True, "b": True}


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (("--run", "999"), "no run #999"),
        (("--run", "1", "--run", "2", "--run", "3"), "two runs"),
    ],
)
def test_cli_diff_refuses_bad_runs_in_one_line(runs, args, message, capsys):
    completed = run_cli(capsys, "diff", *args, workspace=runs["workspace"])
    assert completed.returncode == 2
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert completed.stdout == ""


@pytest.mark.slow
def test_cli_diff_refuses_two_runs_on_different_test_sets(runs, capsys):
    workspace, ids = runs["workspace"], runs["ids"]
    subset = get_baseline(BaselineConfig(DatasetSpec("digits", test_size=100), epochs=1), workspace)
    completed = run_cli(capsys, "diff", "--run", str(ids["masked"]), "--run", str(subset.run_id), workspace=workspace)
    assert completed.returncode == 2 and "different test sets" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_a_low_bit_quantize_run_is_rebuilt_with_its_codes_and_input_ranges(runs):
    workspace, ids = runs["workspace"], runs["ids"]
    run = history.get_run(workspace.history_db, ids["bits4"])
    package = predictions_module.package_for_any_run(workspace, run, runs["dataset"])
    assert set(package.quantized_weights) == {f"{layer}.weight" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")}
    assert set(package.activation_quant) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    assert all(quant.quant_max == 15 for quant in package.activation_quant.values())  # 4-bit inputs
    reference = package_for_run(history.get_run(workspace.history_db, ids["baseline"]), workspace, runs["dataset"])
    report = compare_packages(reference, package, runs["dataset"], "baseline", "4-bit")
    assert report.has_weights_only

"""Pruning: exact amounts, global thresholds, real channel removal, honest sizes, scans, the CLI."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.charts.pruning import accuracy_vs_sparsity_figure, sensitivity_figure, size_speed_figure, sparsity_bars_figure, weight_heatmaps_figure, weight_histogram_figure
from core.cli.main import main
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.measures.latency import EAGER, THROUGHPUT_BATCH_SIZE
from core.foundation.measures.metrics import count_macs, count_nonzero_parameters, count_parameters, effective_tensors, state_dict_size_bytes
from core.foundation.models.registry import build_model
from core.foundation.training.loop import predict_logits
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.foundation.workspace import WEIGHTS_FILE
from core.pruning import (
    PruneConfig,
    all_weights,
    apply_pruning,
    decode_sparse,
    encode_sparse,
    global_sparsity,
    load_pruned_model,
    measure_sizes,
    preview_pruning,
    prune,
    sensitivity_scan,
    sparsity_per_layer,
    weight_view,
)
from core.pruning.stats import architecture_rows, layer_shapes

CIFAR_INPUT = torch.zeros(1, 3, 32, 32)


def cifar_sized_model(name: str = "simple_cnn", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, 3, 32, 10).eval()


def weight_of(model, layer: str) -> torch.Tensor:
    return dict(model.named_modules())[layer].weight.detach()


def prune_and_record(baseline, workspace, **config):
    """prune() of the baseline, then core.contract.record: what the page and the CLI do."""
    result = prune(ModelSource.from_baseline(baseline), PruneConfig(**config), RunContext(workspace))
    return result, record(result, workspace)


@pytest.mark.parametrize("method", ["l1", "random"])
@pytest.mark.parametrize("amount", [0.3, 0.5, 0.8])
def test_unstructured_layer_amounts_are_exact(method, amount):
    model = apply_pruning(cifar_sized_model(), PruneConfig(method=method, granularity="unstructured", amount=amount), CIFAR_INPUT).masked
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        weight = weight_of(model, layer)
        assert int((weight == 0).sum()) == round(amount * weight.numel()), layer


def test_l1_prunes_the_smallest_weights_and_random_does_not():
    original = weight_of(cifar_sized_model(), "fc1").abs()
    l1 = weight_of(apply_pruning(cifar_sized_model(), PruneConfig(method="l1", amount=0.5, layers=("fc1",)), CIFAR_INPUT).masked, "fc1")
    assert original[l1 == 0].max() <= original[l1 != 0].min()
    random = weight_of(apply_pruning(cifar_sized_model(), PruneConfig(method="random", amount=0.5, layers=("fc1",)), CIFAR_INPUT).masked, "fc1")
    assert original[random == 0].max() > original[random != 0].min()


def test_only_chosen_layers_are_pruned():
    model = apply_pruning(cifar_sized_model(), PruneConfig(amount=0.6, layers=("conv2", "fc2")), CIFAR_INPUT).masked
    sparsity = sparsity_per_layer(model)
    assert sparsity["conv2"] == pytest.approx(0.6, abs=1e-3) and sparsity["fc2"] == pytest.approx(0.6, abs=1e-3)
    assert sparsity["conv1"] == sparsity["fc1"] == sparsity["fc3"] == 0.0


def test_global_scope_reaches_the_global_target_with_uneven_layers():
    model = apply_pruning(cifar_sized_model(), PruneConfig(method="l1", granularity="unstructured", amount=0.7, scope="global"), CIFAR_INPUT).masked
    total = sum(weight_of(model, layer).numel() for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"))
    assert global_sparsity(model) == pytest.approx(round(0.7 * total) / total, abs=1e-9)
    per_layer = sparsity_per_layer(model).values()
    assert max(per_layer) - min(per_layer) > 0.1  # one threshold, not one amount per layer


def test_global_channel_scope_reaches_the_target_channel_count():
    pruned = apply_pruning(cifar_sized_model(), PruneConfig(method="l1", granularity="channel", amount=0.5, scope="global"), CIFAR_INPUT)
    total = sum(pruned.channels.values())
    assert sum(len(indices) for indices in pruned.pruned_channels.values()) == round(0.5 * total)
    assert len({len(indices) / pruned.channels[name] for name, indices in pruned.pruned_channels.items()}) > 1


def test_channel_removal_gives_the_expected_shapes_and_the_masked_output(digits_baseline):
    pruned = apply_pruning(digits_baseline.fresh_copy(), PruneConfig(method="ln", granularity="channel", amount=0.5, remove=True), digits_baseline.example_input())
    shapes = {shape.name: shape.weight_shape for shape in layer_shapes(pruned.removed)}
    assert shapes == {"conv1": [8, 1, 5, 5], "conv2": [16, 8, 5, 5], "fc1": [60, 16 * 2 * 2], "fc2": [42, 60], "fc3": [10, 42]}
    dataset = digits_baseline.dataset
    masked_logits = predict_logits(pruned.masked, dataset, dataset.test, torch.device("cpu"))
    removed_logits = predict_logits(pruned.removed, dataset, dataset.test, torch.device("cpu"))
    torch.testing.assert_close(removed_logits, masked_logits, rtol=1e-5, atol=1e-5)
    evaluator = QuickEvaluator(dataset, digits_baseline.device, 200)
    assert evaluator.accuracy(pruned.fastest_equivalent) == evaluator.accuracy(pruned.masked)  # the page evaluates the cut copy
    # What the mask zeroed is exactly what removal cut: the smaller model's parameters are the masked model's nonzeros.
    assert count_parameters(pruned.removed) == count_nonzero_parameters(pruned.masked) < count_parameters(digits_baseline.model)
    assert count_macs(pruned.removed, digits_baseline.example_input()) < count_macs(pruned.masked, digits_baseline.example_input())


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_channel_removal_follows_residual_and_batch_norm_dependencies(scope):
    model = cifar_sized_model("teacher")
    with torch.no_grad():  # non-trivial batch-norm statistics, so a wrongly kept channel would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    pruned = apply_pruning(model, PruneConfig(method="l1", granularity="channel", amount=0.4, scope=scope, remove=True), CIFAR_INPUT)
    images = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pruned.removed(images), pruned.masked(images), rtol=1e-4, atol=1e-4)
    assert count_parameters(pruned.removed) < 0.8 * count_parameters(build_model("teacher", 3, 32, 10))


def test_classifier_outputs_are_never_pruned():
    pruned = apply_pruning(cifar_sized_model(), PruneConfig(method="l1", granularity="channel", amount=0.7, scope="global", remove=True), CIFAR_INPUT)
    assert weight_of(pruned.removed, "fc3").shape[0] == 10
    with pytest.raises(UserError, match="final classifier"):
        apply_pruning(cifar_sized_model(), PruneConfig(method="l1", granularity="channel", amount=0.5, layers=("fc3",)), CIFAR_INPUT)


@pytest.mark.parametrize(
    "config, message",
    [
        (PruneConfig(method="ln", granularity="channel", amount=0.99, remove=True), "would leave none"),
        (PruneConfig(method="l1", granularity="channel", amount=0.97, scope="global", remove=True), "every channel of"),
        (PruneConfig(method="l1", granularity="unstructured", amount=1.0), r"\[0, 1\)"),
        (PruneConfig(method="l1", granularity="unstructured", amount=-0.2), r"\[0, 1\)"),
        (PruneConfig(method="l1", granularity="unstructured", amount=0.5, layers=("conv7",)), "unknown layer 'conv7'"),
        (PruneConfig(method="ln", granularity="unstructured", amount=0.5), "granularity channel"),
        (PruneConfig(method="l1", granularity="unstructured", amount=0.5, remove=True), "removal needs"),
    ],
)
def test_bad_settings_raise_one_line_user_errors(config, message):
    with pytest.raises(UserError, match=message) as caught:
        apply_pruning(cifar_sized_model(), config, CIFAR_INPUT)
    assert "\n" not in str(caught.value)


def test_sparse_size_falls_with_sparsity_while_dense_size_does_not():
    reports = [measure_sizes(apply_pruning(cifar_sized_model(), PruneConfig(amount=amount, scope="global"), CIFAR_INPUT).masked) for amount in (0.0, 0.5, 0.8, 0.95)]
    assert len({report.size_bytes_dense for report in reports}) == 1
    sparse = [report.size_bytes_sparse for report in reports]
    assert sparse == sorted(sparse, reverse=True) and len(set(sparse)) == 4
    assert reports[2].size_bytes_sparse <= reports[2].size_bytes_dense / 4  # 80% zeros: a quarter of the dense bytes
    assert reports[0].size_bytes_bitmask > reports[0].size_bytes_dense  # no zeros: a mask only adds bits
    assert reports[0].size_bytes_sparse <= reports[0].size_bytes_dense + 1000  # "best" falls back to dense
    assert [r.size_bytes_gzip for r in reports] == sorted((r.size_bytes_gzip for r in reports), reverse=True)


@pytest.mark.parametrize("layout", ["bitmask", "csr", "best"])
def test_sparse_encodings_decode_to_the_exact_tensors(layout):
    tensors = effective_tensors(apply_pruning(cifar_sized_model(), PruneConfig(amount=0.7), CIFAR_INPUT).masked)
    decoded = decode_sparse(encode_sparse(tensors, layout))
    assert decoded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert torch.equal(decoded[name], tensor), name


def test_sensitivity_scan_returns_one_curve_per_layer(digits_baseline):
    evaluator = QuickEvaluator(digits_baseline.dataset, digits_baseline.device, 200)
    scan = sensitivity_scan(ModelSource.from_baseline(digits_baseline), evaluator, "unstructured", "l1", amounts=(0.0, 0.5, 0.9))
    assert list(scan.accuracy_by_layer) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert all(len(curve) == 3 for curve in scan.accuracy_by_layer.values())
    assert all(curve[0] == scan.baseline_accuracy for curve in scan.accuracy_by_layer.values())
    assert min(curve[-1] for curve in scan.accuracy_by_layer.values()) < scan.baseline_accuracy  # 90% of some layer hurts
    chosen = scan.amounts_within(0.02)
    for layer, amount in chosen.items():
        index = scan.amounts.index(amount)
        assert all(a >= scan.baseline_accuracy - 0.02 for a in scan.accuracy_by_layer[layer][: index + 1])
    figure = sensitivity_figure(scan)
    assert len([trace for trace in figure.data if trace.mode == "lines+markers"]) == 5


def test_preview_measures_the_pruned_copy_and_leaves_the_baseline_alone(digits_baseline):
    before = {name: tensor.clone() for name, tensor in digits_baseline.model.state_dict().items()}
    evaluator = QuickEvaluator(digits_baseline.dataset, digits_baseline.device, 200)
    source = ModelSource.from_baseline(digits_baseline)
    _, light = preview_pruning(source, PruneConfig(amount=0.2, scope="global"), evaluator)
    _, heavy = preview_pruning(source, PruneConfig(amount=0.95, scope="global"), evaluator)
    assert light.eval_images == 200
    assert heavy.sparsity > light.sparsity and heavy.accuracy < light.accuracy
    assert heavy.size_bytes_sparse < light.size_bytes_sparse and heavy.size_bytes_dense == light.size_bytes_dense
    assert all(torch.equal(tensor, before[name]) for name, tensor in digits_baseline.model.state_dict().items())


def test_prune_removes_finetunes_and_record_saves_and_records(digits_baseline, session_workspace):
    result, run_id = prune_and_record(digits_baseline, session_workspace, method="ln", granularity="channel", amount=0.5, remove=True, finetune_epochs=2)
    model, report, headline = result.model, result.report, result.headline
    assert report.params == headline.params_after == count_parameters(model) < headline.params_before / 3.5
    assert headline.params_before == count_parameters(digits_baseline.model)
    assert report.macs == headline.macs_after == count_macs(model, digits_baseline.example_input()) < headline.macs_before
    assert headline.accuracy_after > report.accuracy_oneshot  # fine-tuning recovered accuracy
    assert headline.accuracy_before == pytest.approx(digits_baseline.evaluation.accuracy)
    assert headline.eval_images == len(digits_baseline.dataset.test)
    assert len(report.finetune_history) == 2 and report.finetune_history[-1]["test_accuracy"] == headline.accuracy_after == report.accuracy
    # Latency under the one protocol: one image and the throughput batch, both models in one runtime.
    assert headline.latency_ms_after > 0 and headline.latency_ms_before > 0 and headline.latency_batch_size == THROUGHPUT_BATCH_SIZE
    assert headline.latency_ms_single_after > 0 and headline.latency_ms_single_before > 0
    assert headline.latency_runtime == EAGER and headline.latency_threads == torch.get_num_threads()
    assert report.latency_ms_masked > 0
    assert report.size_bytes_dense == state_dict_size_bytes(model) < state_dict_size_bytes(digits_baseline.model)
    assert headline.size_bytes_after == report.size_bytes_sparse < headline.size_bytes_before
    assert result.artifact.path is not None and run_id == result.run_id
    saved = result.artifact.path / WEIGHTS_FILE
    assert report.size_bytes_gzip == len(gzip.compress(saved.read_bytes(), 6))
    meta = json.loads(saved.with_name("meta.json").read_text())
    assert meta["channels_removed"] and meta["layer_shapes"][0]["weight_shape"] == [8, 1, 5, 5]
    assert meta["pruned_channels"] == report.pruned_channels == result.pruned_channels  # pruned from the baseline: nothing to compose
    rebuilt = load_pruned_model(saved.parent)
    images = digits_baseline.dataset.normalize(digits_baseline.dataset.test.images[:16])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), model.cpu()(images))
    run = history.get_run(session_workspace.history_db, run_id)
    assert run.technique == "prune" and run.parent_id == digits_baseline.run_id
    assert not Path(run.artifact_path).is_absolute() and session_workspace.resolve_artifact(run.artifact_path) == result.artifact.path
    assert run.metrics["params"] == report.params
    assert run.metrics["headline_version"] == 2 and run.metrics["before_run_id"] == digits_baseline.run_id
    assert run.metrics["latency_ms_after"] == headline.latency_ms_after and run.metrics["latency_runtime"] == headline.latency_runtime


def test_prune_saves_nothing_until_recorded(digits_baseline, workspace):
    result = prune(ModelSource.from_baseline(digits_baseline), PruneConfig(amount=0.3), RunContext(workspace))
    assert result.artifact.path is None and result.run_id is None
    assert not workspace.checkpoint_dir.exists() or not any(workspace.checkpoint_dir.iterdir())
    assert not workspace.history_db.exists() or history.count_runs(workspace.history_db) == 0
    run_id = record(result, workspace)
    assert history.count_runs(workspace.history_db) == 1 and result.artifact.path.is_dir() and result.run_id == run_id


def test_masks_stay_fixed_through_finetuning_and_saved_masked_weights_reload(digits_baseline, session_workspace):
    result, _ = prune_and_record(digits_baseline, session_workspace, method="l1", granularity="unstructured", amount=0.8, scope="global", finetune_epochs=1)
    model, report, headline = result.model, result.report, result.headline
    assert global_sparsity(model) == pytest.approx(report.sparsity) and report.sparsity == pytest.approx(0.8, abs=1e-4)
    assert report.params == headline.params_before and report.nonzero_params == headline.nonzero_params_after < headline.params_before / 4
    assert report.size_bytes_sparse <= report.size_bytes_dense / 4
    assert len(report.finetune_history) == 1
    reloaded = load_pruned_model(result.artifact.path)
    assert global_sparsity(reloaded) == pytest.approx(report.sparsity)


def test_iterative_schedule_grows_to_the_target(digits_baseline, session_workspace):
    result, _ = prune_and_record(digits_baseline, session_workspace, method="l1", granularity="unstructured", amount=0.9, scope="global", finetune_epochs=1, iterative_steps=3)
    report = result.report
    amounts = [point["amount"] for point in report.schedule_points]
    sparsities = [point["sparsity"] for point in report.schedule_points]
    assert len(amounts) == 3 and amounts == sorted(amounts) and amounts[-1] == pytest.approx(0.9)
    assert sparsities == sorted(sparsities) and sparsities[-1] == pytest.approx(0.9, abs=1e-4)
    assert len(report.finetune_history) == 3
    assert global_sparsity(result.model) == pytest.approx(0.9, abs=1e-4)


def test_iterative_channel_schedule_removes_at_the_end(digits_baseline, session_workspace):
    result, _ = prune_and_record(digits_baseline, session_workspace, method="l1", granularity="channel", amount=0.5, remove=True, finetune_epochs=1, iterative_steps=2)
    model = result.model
    assert weight_of(model, "conv1").shape[0] == 8 and weight_of(model, "fc2").shape[0] == 42
    assert result.report.params == count_parameters(model)
    assert len(result.report.schedule_points) == 2


def test_schedule_validation():
    with pytest.raises(UserError, match="at least 1 fine-tuning epoch"):
        PruneConfig(finetune_epochs=0, iterative_steps=3).validate()
    config = PruneConfig(finetune_epochs=1, iterative_steps=4)
    assert config.fraction_at(4) == 1.0 and 0 < config.fraction_at(1) < config.fraction_at(2) < 1
    # The schedule is part of the one config; the masks a preview draws ignore it.
    assert config.pruning_only() == PruneConfig()


def test_charts_show_pruned_weights_as_empty_cells_and_removed_filters_as_empty_rows():
    pruned = apply_pruning(cifar_sized_model(), PruneConfig(method="l1", granularity="channel", amount=0.5), CIFAR_INPUT)
    figure = weight_heatmaps_figure([weight_view(pruned.masked, "conv1"), weight_view(pruned.masked, "conv2")])
    assert [trace.name for trace in figure.data] == ["conv1", "conv2"]
    z = np.array(figure.data[1].z, dtype=float)
    assert z.shape == (32, 16 * 25)
    empty_rows = np.isnan(z).all(axis=1)
    assert empty_rows.sum() == 16 and set(np.flatnonzero(empty_rows)) == set(pruned.pruned_channels["conv2"])
    # conv1's removed channels empty conv2's matching input columns too.
    assert np.isnan(z[:, pruned.pruned_channels["conv1"][0] * 25]).all()
    assert np.nanmax(z) == 1.0  # |w| relative to the layer's largest
    assert "16 empty rows" in figure.layout.annotations[1].text
    big = weight_heatmaps_figure([weight_view(cifar_sized_model(), "fc1")], max_columns=256)
    assert np.array(big.data[0].z).shape == (120, 256) and "1 in 8 columns" in big.layout.annotations[0].text
    unstructured = apply_pruning(cifar_sized_model(), PruneConfig(method="l1", amount=0.5), CIFAR_INPUT).masked
    z = np.array(weight_heatmaps_figure([weight_view(unstructured, "conv1")]).data[0].z, dtype=float)
    assert np.isnan(z).mean() == pytest.approx(0.5, abs=0.01)


def test_other_chart_builders_draw_their_data():
    model = cifar_sized_model()
    masked = apply_pruning(cifar_sized_model(), PruneConfig(method="l1", amount=0.6, scope="global"), CIFAR_INPUT).masked
    bars = sparsity_bars_figure(sparsity_per_layer(masked), global_sparsity(masked))
    assert list(bars.data[0].x) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    histogram = weight_histogram_figure(all_weights(model), all_weights(masked))
    before_counts, after_counts = (np.array(trace.y) for trace in histogram.data)
    assert after_counts.sum() == np.count_nonzero(all_weights(masked)) and before_counts.sum() == all_weights(model).size
    centre = len(before_counts) // 2
    assert after_counts[centre] == 0 < before_counts[centre]  # the gap around zero
    curve = accuracy_vs_sparsity_figure([(0.0, 0.9), (0.5, 0.8)], [(0.5, 0.88)], 0.9, current=(0.5, 0.8))
    assert [trace.name for trace in curve.data] == ["one-shot", "after fine-tuning", "current setting"]
    sizes = size_speed_figure({"dense": 1000, "sparse": 300}, {"baseline": 2.0, "smaller": 1.0}, 256)
    assert list(sizes.data[1].y) == [2.0, 1.0]
    assert len(size_speed_figure({"dense": 1000}, None).data) == 1


def test_architecture_rows_compare_shapes():
    pruned = apply_pruning(cifar_sized_model(), PruneConfig(method="ln", granularity="channel", amount=0.5, remove=True), CIFAR_INPUT)
    rows = architecture_rows(layer_shapes(cifar_sized_model()), layer_shapes(pruned.removed))
    assert rows[0]["shape before"] == "16 × 3 × 5 × 5" and rows[0]["shape after"] == "8 × 3 × 5 × 5"
    assert sum(row["params after"] for row in rows) == count_parameters(pruned.removed)


def run_cli(capsys, *arguments: str) -> tuple[int, dict | None, str]:
    code = main(["prune", *arguments])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 else None), captured.err


def test_cli_prints_the_json_the_issue_asks_for(digits_baseline, session_workspace, capsys):
    code, payload, _ = run_cli(
        capsys,
        "--workspace",
        str(session_workspace.root),
        "--method",
        "l1",
        "--granularity",
        "channel",
        "--amount",
        "0.5",
        "--scope",
        "global",
        "--layers",
        "conv1,conv2,fc1",
        "--remove",
        "--finetune-epochs",
        "1",
    )
    assert code == 0
    for key in (
        "accuracy_before",
        "accuracy_after",
        "sparsity",
        "sparsity_per_layer",
        "params",
        "macs",
        "size_bytes_dense",
        "size_bytes_sparse",
        "size_bytes_gzip",
        "latency_ms_before",
        "latency_ms_after",
    ):
        assert key in payload, key
    assert payload["accuracy_before"] == pytest.approx(digits_baseline.evaluation.accuracy)
    assert payload["technique"] == "prune" and payload["source_run_id"] == digits_baseline.run_id
    assert payload["latency_batch_size"] == THROUGHPUT_BATCH_SIZE and payload["latency_ms_single_after"] > 0 and payload["latency_runtime"] == EAGER
    run = history.get_run(session_workspace.history_db, payload["run_id"])
    assert run.technique == "prune" and run.parent_id == digits_baseline.run_id and run.params["finetune_epochs"] == 1
    assert payload["params"] < digits_baseline.metrics.params and payload["macs"] < digits_baseline.metrics.macs
    assert payload["pruned_channel_counts"].keys() == {"conv1", "conv2", "fc1"}
    assert set(payload["sparsity_per_layer"]) == {"conv1", "conv2", "fc1", "fc2", "fc3"} and 0 < payload["sparsity"] < 1
    assert not math.isnan(payload["latency_ms_after"])


def test_cli_masked_run_keeps_dense_params_but_shrinks_the_sparse_size(digits_baseline, session_workspace, capsys):
    code, payload, _ = run_cli(capsys, "--workspace", str(session_workspace.root), "--amount", "0.75", "--method", "random")
    assert code == 0
    assert payload["params"] == digits_baseline.metrics.params and payload["macs"] == digits_baseline.metrics.macs
    assert payload["size_bytes_sparse"] < payload["size_bytes_dense"] / 2
    assert payload["accuracy_after"] == payload["accuracy_oneshot"]  # nothing was fine-tuned


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--amount", "1.5"], "--amount must be in [0, 1)"),
        (["--finetune-epochs", "51"], "--finetune-epochs must be in 0..50"),
        (["--iterative-steps", "3"], "at least 1 fine-tuning epoch"),
        (["--granularity", "unstructured", "--remove"], "removal needs"),
        (["--amount", "0.5", "--layers", "conv1,nope"], "unknown layer 'nope'"),
        (["--amount", "0.99", "--granularity", "channel", "--remove"], "would leave none"),
        (["--amount", "0.5", "--granularity", "channel", "--layers", "fc3"], "final classifier"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(session_workspace, capsys, arguments, message):
    code, _, error = run_cli(capsys, "--workspace", str(session_workspace.root), *arguments)
    assert code == 2
    last_line = error.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and message in last_line

"""Quantization lab: fake-quantization levels and error, real int8 conversion of convolutions,
QAT versus post-training, honest size accounting, the CLI, latency reporting and the charts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from core.charts.quantization import SCHEMES, LayerErrorRow, VariantCost, accuracy_vs_bits_figure, layer_error_figure, size_latency_figure, weight_histogram_figure
from core.cli.main import main
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.measures import compile as latency_module
from core.foundation.measures.latency import COMPILED, EAGER, THROUGHPUT_BATCH_SIZE, measure_latencies
from core.foundation.workspace import WEIGHTS_FILE
from core.quantization import (
    DynamicInt8Config,
    QATConfig,
    QuantSpec,
    SimulateConfig,
    StaticInt8Config,
    TensorStorage,
    error_by_granularity,
    fake_quantize,
    pt2e,
    quantize,
    quantize_model,
    quantize_tensor,
)
from core.quantization.fake_quant import quantizable_layers
from core.quantization.size import SCALE_BYTES, ZERO_POINT_BYTES, explain_difference

ALL_BITS = range(2, 9)
SPECS = [QuantSpec(bits, per_channel, symmetric) for bits in ALL_BITS for per_channel in (True, False) for symmetric in (True, False)]


def layer_weights(baseline) -> dict[str, torch.Tensor]:
    return {name: layer.weight.detach().clone() for name, layer in quantizable_layers(baseline.model).items()}


# ---- fake quantization --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.describe().replace(" ", "-"))
def test_fake_quantization_yields_at_most_2_to_the_bits_values_per_channel_or_tensor(digits_baseline, spec):
    for name, weight in layer_weights(digits_baseline).items():
        dequantized = fake_quantize(weight, spec)
        groups = list(dequantized) if spec.per_channel else [dequantized]
        assert max(torch.unique(group).numel() for group in groups) <= 2**spec.bits, name
        # The codes a deployed model stores dequantize to exactly what torch's fake-quantize op computed.
        torch.testing.assert_close(quantize_tensor(weight, spec).dequantize(), dequantized, rtol=0, atol=1e-6)


def test_the_levels_are_really_used_not_just_bounded(digits_baseline):
    weight = layer_weights(digits_baseline)["fc1"]
    assert torch.unique(fake_quantize(weight, QuantSpec(3, per_channel=False, symmetric=True))).numel() == 7  # -3..3
    assert torch.unique(fake_quantize(weight, QuantSpec(8, per_channel=False, symmetric=True))).numel() > 100


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("symmetric", [True, False])
def test_error_shrinks_as_bits_grow(digits_baseline, per_channel, symmetric):
    for name, weight in layer_weights(digits_baseline).items():
        errors = [float((fake_quantize(weight, QuantSpec(bits, per_channel, symmetric)) - weight).pow(2).mean()) for bits in ALL_BITS]
        assert all(lower > higher for lower, higher in zip(errors, errors[1:])), (name, errors)


@pytest.mark.parametrize("symmetric", [True, False])
def test_per_channel_error_is_no_larger_than_per_tensor(digits_baseline, symmetric):
    for bits in ALL_BITS:
        for row in error_by_granularity(digits_baseline.model, bits, symmetric):
            assert row.per_channel_mse <= row.per_tensor_mse, (bits, row)
            assert row.per_channel_sqnr_db >= row.per_tensor_sqnr_db, (bits, row)


def test_simulated_accuracy_falls_at_two_bits_and_the_model_is_marked_simulated(digits_baseline):
    eight = quantize_model(digits_baseline.model, digits_baseline.dataset, SimulateConfig(bits=8)).report
    two = quantize_model(digits_baseline.model, digits_baseline.dataset, SimulateConfig(bits=2, per_channel=False)).report
    assert eight.simulated and two.simulated
    assert abs(eight.accuracy_after - eight.accuracy_before) <= 0.01
    assert two.accuracy_after < eight.accuracy_after - 0.2
    assert two.layers[0].sqnr_db < eight.layers[0].sqnr_db


def test_activation_quantization_is_calibrated_and_counted(digits_baseline):
    result = quantize_model(digits_baseline.model, digits_baseline.dataset, SimulateConfig(bits=4, activations=True, calibration_size=200))
    quantizers = [layer.input_quantizer for layer in quantizable_layers(result.model).values()]
    assert all(q.enabled and not q.observing and q.calibrated for q in quantizers)
    assert quantizers[0].minimum < 0 < quantizers[0].maximum  # standardised images are signed
    assert float(quantizers[1].minimum) >= 0  # conv2 reads a ReLU's output
    without = quantize_model(digits_baseline.model, digits_baseline.dataset, SimulateConfig(bits=4)).report
    # One fp32 scale and one int32 zero point per quantized layer input.
    assert result.report.size.deployed_bytes - without.size.deployed_bytes == len(quantizers) * (SCALE_BYTES + ZERO_POINT_BYTES)
    assert result.report.activations_quantized == "static (calibrated)"


# ---- dynamic and static int8 ------------------------------------------------------------------------


def test_dynamic_int8_quantizes_linears_and_says_convolutions_stay_fp32(digits_baseline):
    report = quantize_model(digits_baseline.model, digits_baseline.dataset, DynamicInt8Config()).report
    assert report.quantized_layers == ["fc1", "fc2", "fc3"]
    assert report.fp32_layers == ["conv1", "conv2"]
    assert any("conv1, conv2 stay fp32" in note for note in report.notes)
    assert abs(report.accuracy_after - report.accuracy_before) <= 0.01
    assert not report.simulated


@pytest.fixture(scope="module")
def static_result(digits_baseline):
    """One PT2E static int8 conversion shared by the tests that only read it (each takes seconds)."""
    return quantize_model(digits_baseline.model, digits_baseline.dataset, StaticInt8Config(calibration_size=1024, observer="minmax"))


def test_static_int8_converts_convolutions_and_linears(digits_baseline, static_result):
    result = static_result
    report = result.report
    assert report.quantized_layers == ["conv1", "conv2", "fc1", "fc2", "fc3"] and report.fp32_layers == []
    # The converted graph itself holds int8 convolution weights, not fp32 ones.
    contents = pt2e.read_converted(result.model)
    assert contents.layer_kinds == {"conv1": "conv", "conv2": "conv", "fc1": "linear", "fc2": "linear", "fc3": "linear"}
    assert contents.weights["conv2"].codes.dtype == torch.int8
    assert contents.weights["conv2"].codes.shape == digits_baseline.model.conv2.weight.shape
    assert len(contents.activation_qparams) == 5
    # Full uint8 activations only where the CPU has VNNI; otherwise the backend's reduced range.
    assert contents.activation_quant_max == pt2e.activation_quant_max() == (255 if pt2e.cpu_has_vnni() else 127)
    assert all(0 <= zero_point <= contents.activation_quant_max for _, zero_point in contents.activation_qparams.values())
    assert abs(report.accuracy_after - report.accuracy_before) <= 0.01
    assert all(layer.sqnr_db > 30 for layer in report.layers)


@pytest.mark.parametrize("observer", ["histogram", "moving_average"])
def test_each_activation_observer_converts_with_its_own_ranges(digits_baseline, static_result, observer):
    # The same 1,024 images as the min/max conversion, in 4 calibration batches (a moving average of one batch is its min/max).
    result = quantize_model(digits_baseline.model, digits_baseline.dataset, StaticInt8Config(calibration_size=1024, observer=observer))
    assert result.report.config["observer"] == observer
    assert abs(result.report.accuracy_after - result.report.accuracy_before) <= 0.01
    scales = [scale for scale, _ in pt2e.read_converted(result.model).activation_qparams.values()]
    minmax_scales = [scale for scale, _ in pt2e.read_converted(static_result.model).activation_qparams.values()]
    assert scales != pytest.approx(minmax_scales, rel=1e-3)  # the observer really chose the ranges


def test_the_conversion_check_fails_loudly_when_a_convolution_stays_fp32(digits_baseline, static_result):
    contents = pt2e.read_converted(static_result.model)
    del contents.weights["conv1"]
    with pytest.raises(AssertionError, match="conv1"):
        pt2e.assert_all_layers_quantized(contents, digits_baseline.model)


# ---- quantization-aware training ---------------------------------------------------------------------


def with_outlier_channels(baseline, factor: float = 8.0) -> torch.nn.Module:
    """The digits baseline, rescaled so one channel of conv1 and one unit of fc1 have an 8x wider
    range (the next layer divides it back; ReLU and max-pool commute with positive scaling), so the
    fp32 function is unchanged. The plain digits baseline loses nothing at 4 bits, leaving QAT
    nothing to recover; outlier channels like these are what real networks have."""
    model = baseline.fresh_copy().cpu()
    with torch.no_grad():
        for layer, following in ((model.conv1, model.conv2), (model.fc1, model.fc2)):
            layer.weight[0] *= factor
            layer.bias[0] *= factor
            following.weight[:, 0] /= factor
    return model


def test_qat_at_4_bits_beats_post_training_at_4_bits(digits_baseline):
    model = with_outlier_channels(digits_baseline)
    result = quantize_model(model, digits_baseline.dataset, QATConfig(bits=4, epochs=2, per_channel=False), base_recipe=digits_baseline.recipe)
    report = result.report
    assert report.accuracy_before == pytest.approx(digits_baseline.evaluation.accuracy, abs=0.003)  # the rescaling kept the function
    assert report.post_training_accuracy < report.accuracy_before - 0.02
    assert report.accuracy_after > report.post_training_accuracy + 0.02
    assert report.simulated and len(report.train_history) == 2
    assert any("stays simulated" in note for note in report.notes)
    # The trained model computes with weights on the 4-bit grid.
    assert torch.unique(result.model.fc2.weight).numel() <= 16


def test_qat_with_activations_below_8_bits_trains_the_input_ranges(digits_baseline):
    result = quantize_model(digits_baseline.model, digits_baseline.dataset, QATConfig(bits=3, epochs=1, activations=True, symmetric=False, calibration_size=128), base_recipe=digits_baseline.recipe)
    assert result.report.activations_quantized == "trained ranges"
    assert all(layer.input_quantizer.enabled and not layer.input_quantizer.observing for layer in quantizable_layers(result.model).values())
    assert result.report.accuracy_after > 0.8


def test_qat_at_8_bits_converts_to_the_real_int8_model(digits_baseline):
    result = quantize_model(digits_baseline.model, digits_baseline.dataset, QATConfig(bits=8, epochs=1), base_recipe=digits_baseline.recipe)
    report = result.report
    assert not report.simulated and report.quantized_layers == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert pt2e.read_converted(result.model).weights["conv1"].codes.dtype == torch.int8
    assert report.post_training_accuracy is not None and abs(report.accuracy_after - report.accuracy_before) <= 0.02


# ---- size accounting ----------------------------------------------------------------------------------


def test_tensor_storage_packs_values_at_their_bit_width():
    storage = TensorStorage("w", numel=1001, bits=3, scales=7, zero_points=7, quantized=True)
    assert storage.values_bytes == math.ceil(1001 * 3 / 8) == 376
    assert storage.total_bytes == 376 + 7 * SCALE_BYTES + 7 * ZERO_POINT_BYTES


@pytest.mark.parametrize("bits,per_channel,symmetric", [(4, True, True), (3, False, False), (8, True, False)])
def test_simulated_size_is_numel_times_bits_over_8_plus_scales_and_zero_points(digits_baseline, bits, per_channel, symmetric):
    report = quantize_model(digits_baseline.model, digits_baseline.dataset, SimulateConfig(bits=bits, per_channel=per_channel, symmetric=symmetric)).report
    expected = 0
    for layer in quantizable_layers(digits_baseline.model).values():
        groups = layer.weight.shape[0] if per_channel else 1
        expected += math.ceil(layer.weight.numel() * bits / 8) + groups * SCALE_BYTES + (0 if symmetric else groups * ZERO_POINT_BYTES)
        expected += layer.bias.numel() * 4  # biases stay fp32
    assert report.size.deployed_bytes == report.size_bytes_after == expected
    assert report.size_bytes_before == 4 * digits_baseline.metrics.params
    assert report.compression_ratio == pytest.approx(report.size_bytes_before / expected)


def test_static_int8_size_counts_int8_weights_scales_biases_and_activation_qparams(digits_baseline, static_result):
    report = static_result.report
    layers = quantizable_layers(digits_baseline.model).values()
    weights = sum(layer.weight.numel() + layer.weight.shape[0] * SCALE_BYTES for layer in layers)
    biases = sum(4 * layer.bias.numel() for layer in layers)
    activations = 5 * (SCALE_BYTES + ZERO_POINT_BYTES)
    assert report.size.deployed_bytes == weights + biases + activations
    assert report.size.quantized_values_bytes == sum(layer.weight.numel() for layer in layers)
    assert report.compression_ratio > 3.5


def test_the_saved_artifact_has_the_reported_bytes_and_the_difference_is_explained(digits_baseline, session_workspace):
    workspace = session_workspace  # the baseline's run is recorded here, so the parent link can be checked
    result = quantize(ModelSource.from_baseline(digits_baseline), SimulateConfig(bits=4), RunContext(workspace))
    assert result.artifact.path is None  # the technique saves nothing; core.contract.record does
    run_id = record(result, workspace)
    folder = result.artifact.path
    quantized = result.report  # the QuantizationResult: model, report, artifact tensors
    size = quantized.report.size
    assert (folder / WEIGHTS_FILE).stat().st_size == size.artifact_bytes
    assert size.artifact_bytes > size.deployed_bytes
    data_bytes = sum(t.numel() * t.element_size() for t in quantized.artifact_tensors.values())
    header = size.artifact_bytes - data_bytes
    container = sum(layer.weight.numel() for layer in quantizable_layers(digits_baseline.model).values()) // 2  # 4-bit values in int8 bytes
    assert size.artifact_bytes - size.deployed_bytes == header + container
    assert f"{header:,}-byte safetensors header" in size.explanation and f"{container:,} bytes because each 4-bit value" in size.explanation
    run = history.get_run(workspace.history_db, run_id)
    assert run.technique == "quantize" and run.parent_id == digits_baseline.run_id
    assert not Path(run.artifact_path).is_absolute() and workspace.resolve_artifact(run.artifact_path) == folder
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["report"]["size"]["artifact_bytes"] == size.artifact_bytes
    assert meta["technique"] == "quantize" and meta["source_run_id"] == digits_baseline.run_id
    # The headline carries the same bytes as the report, with what was weighed named.
    assert result.headline.size_bytes_after == quantized.report.size_bytes_after and result.headline.size_bytes_before == quantized.report.size_bytes_before
    assert run.metrics["size_bytes_after"] == size.deployed_bytes and "deployed bytes" in run.metrics["size_measure"]


def test_no_explanation_when_file_and_deployed_bytes_agree():
    tensor = torch.zeros(3)
    assert explain_difference([TensorStorage("x", 3, 32)], {"x": tensor}, 12) == ""


# ---- command line -----------------------------------------------------------------------------------------


def cli(capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(["quantize", "--dataset", "digits", "--model", "simple_cnn", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_simulate_prints_the_json_contract_and_records_the_run(digits_baseline, session_workspace, capsys):
    code, out, _ = cli(capsys, "--mode", "simulate", "--bits", "4", "--per-tensor", "--affine", "--activations", "--calibration-size", "128")
    assert code == 0
    payload = json.loads(out.strip().splitlines()[-1])
    for key in (
        "accuracy_before",
        "accuracy_after",
        "size_bytes_before",
        "size_bytes_after",
        "compression_ratio",
        "quantized_layers",
        "latency_ms_before",
        "latency_ms_after",
        "latency_ms_single_before",
        "latency_ms_single_after",
        "latency_runtime",
        "error_per_layer",
    ):
        assert key in payload, key
    # Every run carries latency now: a simulated model computes in fp32, so both sides are timed eager.
    assert payload["latency_runtime"] == EAGER and payload["latency_batch_size"] == THROUGHPUT_BATCH_SIZE
    assert payload["latency_ms_before"] > 0 and payload["latency_ms_after"] > 0 and payload["latency_ms_single_after"] > 0
    assert payload["config"] == {"mode": "simulate", "bits": 4, "per_channel": False, "symmetric": False, "activations": True, "calibration_size": 128}
    assert set(payload["error_per_layer"]) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    assert payload["compression_ratio"] == pytest.approx(payload["size_bytes_before"] / payload["size_bytes_after"])
    assert payload["accuracy_before"] == pytest.approx(digits_baseline.evaluation.accuracy) and payload["source_run_id"] == digits_baseline.run_id
    run = history.get_run(session_workspace.history_db, payload["run_id"])
    assert run.technique == "quantize" and run.parent_id == digits_baseline.run_id


def test_cli_static_reports_quantized_convolutions_and_carries_latency(digits_baseline, capsys, monkeypatch):
    # --skip-latency is gone: every run is timed. With no compiler here, both models fall back to eager together, and the runtime says why.
    monkeypatch.setattr(latency_module, "try_compile", lambda model, example, batch_size=32: "no C++ compiler found")
    code, out, _ = cli(capsys, "--mode", "static", "--calibration-size", "64", "--observer", "minmax")
    assert code == 0
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["quantized_layers"] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert payload["latency_runtime"] == f"{EAGER} (torch.compile unavailable: no C++ compiler found)"
    assert payload["latency_ms_before"] > 0 and payload["latency_ms_after"] > 0
    assert payload["config"] == {"mode": "static", "bits": 8, "calibration_size": 64, "observer": "minmax"}


def test_cli_no_longer_has_skip_latency(capsys):
    try:
        code = main(["quantize", "--mode", "static", "--skip-latency"])
    except SystemExit as exit:  # argparse's own refusal
        code = exit.code
    assert code == 2
    assert "--skip-latency" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--mode", "dynamic", "--bits", "4"], "int8 only"),
        (["--mode", "simulate", "--bits", "9"], "--bits must be in 2..8, got 9"),
        (["--mode", "qat", "--bits", "1"], "--bits must be in 2..8, got 1"),
        (["--mode", "static", "--per-tensor"], "--per-tensor does not apply to --mode static (only to simulate, qat)"),
        (["--mode", "dynamic", "--affine"], "--affine does not apply to --mode dynamic (only to simulate, qat)"),
        (["--mode", "dynamic", "--activations"], "--activations does not apply to --mode dynamic (only to simulate, qat)"),
        (["--mode", "qat", "--bits", "8", "--affine"], "per-channel symmetric"),
        (["--mode", "simulate", "--observer", "minmax"], "--observer does not apply to --mode simulate (only to static)"),
        (["--mode", "static", "--qat-epochs", "3"], "--qat-epochs does not apply to --mode static (only to qat)"),
        (["--mode", "qat", "--bits", "4", "--qat-epochs", "0"], "--qat-epochs must be in 1..20, got 0"),
        (["--mode", "qat", "--bits", "4", "--qat-epochs", "21"], "--qat-epochs must be in 1..20, got 21"),
        (["--mode", "static", "--calibration-size", "0"], "--calibration-size must be in 1..50000, got 0"),
    ],
)
def test_cli_unsupported_combinations_exit_2_with_one_line(capsys, arguments, message):
    code, out, err = cli(capsys, *arguments)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


# ---- latency ---------------------------------------------------------------------------------------------------


def test_an_unavailable_backend_is_reported_not_raised(digits_baseline, monkeypatch):
    monkeypatch.setattr(latency_module, "backend_unavailable_reason", lambda: "no C++ compiler found")
    result = quantize_model(digits_baseline.model, digits_baseline.dataset, DynamicInt8Config())
    assert latency_module.try_compile(result.model, digits_baseline.example_input()) == "no C++ compiler found"


def test_quantize_times_int8_and_fp32_in_one_runtime_and_falls_back_together(digits_baseline, session_workspace, monkeypatch):
    monkeypatch.setattr(latency_module, "backend_unavailable_reason", lambda: "no C++ compiler found")
    result = quantize(ModelSource.from_baseline(digits_baseline), DynamicInt8Config(), RunContext(session_workspace))
    headline = result.headline
    assert headline.latency_runtime == f"{EAGER} (torch.compile unavailable: no C++ compiler found)"
    assert headline.latency_ms_before > 0 and headline.latency_ms_after > 0 and headline.latency_batch_size == THROUGHPUT_BATCH_SIZE
    assert headline.accuracy_before == pytest.approx(digits_baseline.evaluation.accuracy) and headline.eval_images == len(digits_baseline.dataset.test)
    assert result.quantized and result.artifact.path is None


def test_dynamic_int8_is_compiled_once_per_batch_size(digits_baseline, session_workspace):
    """The protocol compiles each model for 1 and 256 images: a torchao int8 model compiled once
    must still compile again (it used to fail moving its weights: "Couldn't swap Linear.weight")."""
    reason = latency_module.backend_unavailable_reason()
    result = quantize(ModelSource.from_baseline(digits_baseline), DynamicInt8Config(), RunContext(session_workspace))
    headline = result.headline
    expected = COMPILED if not reason else f"{EAGER} (torch.compile unavailable: {reason})"
    assert headline.latency_runtime == expected
    assert headline.latency_ms_single_after > 0 and headline.latency_ms_after > 0 and headline.latency_ms_before > 0
    assert result.report.report.quantized_layers == ["fc1", "fc2", "fc3"]


@pytest.mark.slow
def test_compiled_int8_runs_and_agrees_with_the_reference_graph(digits_baseline):
    result = quantize_model(digits_baseline.model, digits_baseline.dataset, StaticInt8Config(calibration_size=128))
    inputs = digits_baseline.dataset.normalize(digits_baseline.dataset.test.images)
    compiled = latency_module.try_compile(result.model, digits_baseline.example_input(), batch_size=32)
    assert not isinstance(compiled, str), compiled
    assert latency_module.agreement_with_reference(compiled[0], result.model, inputs, batch_size=32) >= 0.99
    figures, runtime = measure_latencies({"fp32": digits_baseline.fresh_copy().cpu(), "int8": result.model}, digits_baseline.example_input(), compiled=True, rounds=1)
    assert runtime == COMPILED and all(f.throughput_ms > 0 and f.single_ms > 0 for f in figures.values())


# ---- charts -------------------------------------------------------------------------------------------------------


def test_weight_histogram_draws_one_spike_per_level(digits_baseline):
    weight = layer_weights(digits_baseline)["fc1"]
    dequantized = fake_quantize(weight, QuantSpec(3, per_channel=False))
    figure = weight_histogram_figure(weight, dequantized, "fc1", "3-bit per-tensor symmetric")
    spikes = figure.data[1]
    assert spikes.name == "dequantized (7 levels)"
    assert len([x for x in spikes.x if x is not None]) == 2 * 7
    assert sum(figure.data[2].y) == pytest.approx(1.0) and sum(figure.data[0].y) == pytest.approx(1.0)


def test_weight_histogram_bins_levels_too_many_to_draw_one_by_one(digits_baseline):
    weight = layer_weights(digits_baseline)["fc1"]
    dequantized = fake_quantize(weight, QuantSpec(8, per_channel=True))
    levels = torch.unique(dequantized).numel()
    figure = weight_histogram_figure(weight, dequantized, "fc1", "8-bit per-channel symmetric", max_spikes=levels - 1)
    assert [trace.name for trace in figure.data] == ["fp32 weights", f"dequantized ({levels} levels, binned)"]
    assert sum(figure.data[1].y) == pytest.approx(1.0)


def test_accuracy_vs_bits_draws_four_schemes_and_highlights_the_current_one():
    lines = {scheme: {8: 0.98, 4: 0.9 - 0.1 * index, 2: 0.3} for index, scheme in enumerate(SCHEMES)}
    figure = accuracy_vs_bits_figure(lines, {4: 0.95}, 0.98, current=(False, False))
    post_training = [trace for trace in figure.data if trace.name.startswith("post-training")]
    assert [trace.name for trace in post_training] == [
        "post-training, per-channel symmetric",
        "post-training, per-channel affine",
        "post-training, per-tensor symmetric",
        "post-training, per-tensor affine",
    ]
    assert len({trace.line.color for trace in post_training}) == 4  # each scheme its own colour
    widths = {trace.name: trace.line.width for trace in post_training}
    assert widths["post-training, per-tensor affine"] > max(width for name, width in widths.items() if name != "post-training, per-tensor affine")
    assert [list(trace.y) for trace in post_training][2] == [98.0, 70.0, 30.0]  # 8, 4 and 2 bits, in %
    assert [trace.name for trace in figure.data][-1] == "quantization-aware training"


def test_layer_error_accuracy_and_cost_charts(digits_baseline):
    rows = [LayerErrorRow(r.layer, r.per_tensor_sqnr_db, r.per_channel_sqnr_db) for r in error_by_granularity(digits_baseline.model, 4)]
    errors = layer_error_figure(rows, "sqnr_db", 4)
    assert [trace.name for trace in errors.data] == ["per-tensor", "per-channel"] and list(errors.data[0].x) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    with pytest.raises(ValueError):
        layer_error_figure(rows, "psnr", 4)
    accuracy = accuracy_vs_bits_figure({(True, True): {8: 0.98, 4: 0.97, 2: 0.5}}, {4: 0.975}, 0.98)
    assert list(accuracy.data[0].x) == [8, 4, 2] and list(accuracy.data[1].y) == [97.5]
    costs = size_latency_figure([VariantCost("fp32", 1000, 1100, 2.0), VariantCost("QAT 4-bit", 200, 500, None, "simulated")])
    assert list(costs.data[2].text) == ["2.00", "simulated"]

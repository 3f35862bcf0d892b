"""Quantization: see the levels, measure the error, get real int8 speed.

Simulate re-renders on every control change from a cache (evaluation on a 2,000-image test
subset, no training). Dynamic, static and QAT runs are buttons; each is saved and recorded. Real
latency compiles fp32 and int8 on demand, and the compiled models stay in this browser session.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.baseline import Baseline
from core.charts.quantization import LayerErrorRow, VariantCost, accuracy_vs_bits_figure, layer_error_figure, size_latency_figure, weight_histogram_figure
from core.charts.training import learning_curve_figure
from core.datasets import ImageSplit, class_balanced_subset
from core.errors import UserError
from core.quantization import DynamicInt8Config, LatencyComparison, QATConfig, QuantizationResult, SimulateConfig, StaticInt8Config, accuracy_by_bits, error_by_granularity, quantize
from core.quantization.config import DEFAULT_CALIBRATION_SIZE, QuantizationConfig
from core.quantization.latency import agreement_with_reference, compare_latency, try_compile, unavailable
from core.quantization.pt2e import OBSERVERS
from core.quantization.runs import save_and_record
from core.training import evaluate
from ui.state import format_bytes, progress_reporter, report_error, require_baseline, show_figure, workspace

EVAL_SUBSET_SIZE = 2000
LATENCY_BATCH_SIZE = 32
MODE_LABELS = {"simulate": "Simulate (2–8 bits)", "dynamic": "Dynamic int8", "static": "Static int8", "qat": "Quantization-aware training"}
VARIANT_LABELS = {"dynamic": "dynamic int8", "static": "static int8"}
OBSERVER_LABELS = {"histogram": "histogram (backend default)", "minmax": "min/max", "moving_average": "moving-average min/max"}
TABS = ["Levels", "Per-layer error", "Accuracy vs bits", "Size & latency", "Layers"]


def baseline_key(baseline: Baseline) -> str:
    return f"{baseline.checkpoint}:{baseline.run_id}"


def config_json(config: QuantizationConfig) -> str:
    return json.dumps(config.as_dict(), sort_keys=True)


def session_dict(*path: str) -> dict:
    """A nested dict in this browser session's state (created on first use)."""
    node = st.session_state.setdefault(path[0], {})
    for name in path[1:]:
        node = node.setdefault(name, {})
    return node


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_eval_split(key: str, _baseline: Baseline) -> ImageSplit:
    dataset = _baseline.dataset
    return class_balanced_subset(dataset.test, min(EVAL_SUBSET_SIZE, len(dataset.test)), dataset.num_classes, 0, "test")


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_accuracy(key: str, _baseline: Baseline, _split: ImageSplit) -> float:
    return evaluate(_baseline.model, _baseline.dataset, _split).accuracy


@st.cache_resource(max_entries=64, show_spinner=False)
def cached_simulation(key: str, config_key: str, _baseline: Baseline, _config: SimulateConfig, _split: ImageSplit, accuracy_before: float) -> QuantizationResult:
    return quantize(_baseline.model, _baseline.dataset, _config, eval_split=_split, accuracy_before=accuracy_before, seed=_baseline.config.seed)


@st.cache_resource(max_entries=32, show_spinner=False)
def cached_granularity_errors(key: str, bits: int, symmetric: bool, _baseline: Baseline) -> list:
    return error_by_granularity(_baseline.model, bits, symmetric)


@st.cache_resource(max_entries=16, show_spinner="Post-training accuracy at 8 down to 2 bits…")
def cached_bit_sweep(key: str, per_channel: bool, symmetric: bool, activations: bool, _baseline: Baseline, _split: ImageSplit) -> dict[int, float]:
    return accuracy_by_bits(_baseline.model, _baseline.dataset, _split, per_channel, symmetric, activations)


# ---- controls ----------------------------------------------------------------------------------------


def scheme_controls(prefix: str, disabled: bool = False) -> tuple[bool, bool, bool]:
    left, middle, right = st.columns(3)
    per_channel = left.radio("Scales", ["per-channel", "per-tensor"], key=f"{prefix}_granularity", horizontal=True, disabled=disabled, help="One scale per output channel, or one for the whole weight tensor") == "per-channel"
    symmetric = middle.radio("Scheme", ["symmetric", "affine"], key=f"{prefix}_scheme", horizontal=True, disabled=disabled, help="Symmetric: zero is code 0. Affine: a zero point shifts the range to the weights' min..max") == "symmetric"
    activations = right.checkbox("Quantize activations too", key=f"{prefix}_activations", disabled=disabled, help="Fake-quantize each conv/linear input to the same bit width, with ranges calibrated on training images")
    return per_channel, symmetric, activations


def calibration_slider(baseline: Baseline, key: str, label: str = "Calibration images") -> int:
    available = len(baseline.dataset.train)
    top = max(32, min(5000, available))
    return int(st.slider(label, 32, top, min(DEFAULT_CALIBRATION_SIZE, top), 32, key=key, help="Training images run through the observers to set activation ranges"))


# ---- results ------------------------------------------------------------------------------------------


def show_metrics(result: QuantizationResult) -> None:
    report = result.report
    columns = st.columns(5)
    columns[0].metric(f"Accuracy ({report.eval_images:,} test images)", f"{report.accuracy_after:.1%}", f"{100 * (report.accuracy_after - report.accuracy_before):+.1f} points vs fp32 {report.accuracy_before:.1%}")
    columns[1].metric("Deployed size", format_bytes(report.size.deployed_bytes), f"{report.compression_ratio:.2f}× smaller", delta_color="off", help="Integer values packed at their bit width + scales + zero points + tensors kept in fp32")
    columns[2].metric("Saved file", format_bytes(report.size.artifact_bytes), f"fp32 file {format_bytes(report.artifact_bytes_before)}", delta_color="off", help="The safetensors artifact: int codes, scales, zero points, fp32 tensors, header")
    columns[3].metric("Quantized layers", f"{len(report.quantized_layers)} of {len(report.layers)}", ", ".join(report.fp32_layers) + " fp32" if report.fp32_layers else "all", delta_color="off")
    columns[4].metric("Runs as", "simulated (fp32)" if report.simulated else "int8 kernels")
    for note in report.notes:
        st.markdown(f"- {note}")
    if report.size.explanation:
        st.caption(f"Deployed size vs saved file: {report.size.explanation}")


def levels_tab(result: QuantizationResult) -> None:
    layers = list(result.quantized_weights)
    layer = st.selectbox("Layer", layers, key="quant_hist_layer") if layers else None
    if layer not in result.quantized_weights:
        layer = layers[0]
    weight = result.quantized_weights[layer]
    reference, dequantized, title = result.reference_weights[layer], weight.dequantize(), layer
    if weight.spec.per_channel:
        channels = ["all"] + list(range(weight.codes.shape[0]))
        channel = st.selectbox("Output channel", channels, key="quant_hist_channel", format_func=lambda c: "all channels" if c == "all" else f"channel {c}", help="Each channel has its own scale: one channel shows its 2^bits grid")
        if channel != "all" and channel < len(reference):
            reference, dequantized, title = reference[channel], dequantized[channel], f"{layer}[{channel}]"
    show_figure(weight_histogram_figure(reference, dequantized, title, weight.spec.describe()), key="quant_histogram")
    st.caption("Bars: the fp32 weights. Spikes: the values the quantized model computes with. Per-channel scales give each channel its own grid, so a whole layer shows more spikes than 2^bits; pick one channel to see its grid.")


def error_tab(baseline: Baseline, bits: int, symmetric: bool) -> None:
    metric = st.radio("Error measure", ["sqnr_db", "mse"], key="quant_error_metric", horizontal=True, format_func={"sqnr_db": "SQNR (dB)", "mse": "MSE"}.get)
    rows = cached_granularity_errors(baseline_key(baseline), bits, symmetric, baseline)
    if metric == "sqnr_db":
        chart_rows = [LayerErrorRow(r.layer, r.per_tensor_sqnr_db, r.per_channel_sqnr_db) for r in rows]
    else:
        chart_rows = [LayerErrorRow(r.layer, r.per_tensor_mse, r.per_channel_mse) for r in rows]
    show_figure(layer_error_figure(chart_rows, metric, bits), key="quant_layer_error")
    st.caption("Each output channel's own scale fits its own range; one scale for the tensor must cover the widest channel, so narrow channels get coarse steps.")


def accuracy_tab(baseline: Baseline, split: ImageSplit, accuracy_before: float, per_channel: bool, symmetric: bool, activations: bool) -> None:
    key = baseline_key(baseline)
    setting = f"{per_channel}:{symmetric}:{activations}"
    post_training = cached_bit_sweep(key, per_channel, symmetric, activations, baseline, split)
    qat_points = session_dict("quant_qat_points", key, setting)
    scheme = f"{'per-channel' if per_channel else 'per-tensor'} {'symmetric' if symmetric else 'affine'}{', activations too' if activations else ''}"
    show_figure(accuracy_vs_bits_figure(post_training, dict(qat_points), accuracy_before, f"Accuracy versus bit width ({scheme})"), key="quant_accuracy_bits")
    if not qat_points:
        st.caption("Run quantization-aware training with this scheme to add its points; at 4 bits the gap to post-training is usually largest.")


def size_latency_tab(baseline: Baseline, result: QuantizationResult | None, mode: str) -> None:
    key = baseline_key(baseline)
    latencies: dict[str, LatencyComparison] = session_dict("quant_latency", key)
    if result is not None and not result.report.simulated:
        if st.button("Measure real latency (compiled fp32 vs compiled int8)", key="quant_latency_button"):
            with st.spinner("Compiling with torch.compile (inductor, freezing on); tens of seconds the first time…"):
                latencies[mode] = measure_session_latency(baseline, result, mode)
        comparison = latencies.get(mode)
        if comparison is not None and not comparison.available:
            st.warning(f"Real latency is unavailable on this machine: {comparison.reason}")
        elif comparison is not None:
            columns = st.columns(3)
            columns[0].metric(f"fp32 compiled (batch {comparison.batch_size})", f"{comparison.fp32_latency_ms:.2f} ms")
            columns[1].metric(f"{VARIANT_LABELS.get(mode, 'QAT int8')} compiled", f"{comparison.quantized_latency_ms:.2f} ms", f"{comparison.speedup:.2f}× faster", delta_color="off")
            columns[2].metric("Compiled int8 agrees with the reference", f"{comparison.prediction_agreement:.1%}" if comparison.prediction_agreement is not None else "n/a", help="Share of evaluation images where the compiled kernels predict the same class as the converted graph")
            st.caption(f"{comparison.runtime}, {comparison.threads} threads, median of {comparison.rounds} interleaved rounds; compiling took {comparison.compile_seconds:.0f} s.")
    elif result is not None:
        st.info("Simulated models compute in fp32 with rounded values: there is no integer kernel to time.")
    show_figure(size_latency_figure(variant_costs(baseline, result, mode, latencies)), key="quant_size_latency")
    st.caption("Deployed: what a runtime loads (values at their bit width, scales, zero points, fp32 biases). Saved file: the safetensors artifact, which adds a header and keeps sub-8-bit codes in whole bytes.")


def measure_session_latency(baseline: Baseline, result: QuantizationResult, mode: str) -> LatencyComparison:
    """Compile fp32 (once per session) and this int8 model (once per setting), then time them."""
    example = baseline.example_input().cpu()
    compiled = session_dict("quant_compiled", baseline_key(baseline))
    if "fp32" not in compiled:
        compiled["fp32"] = try_compile(baseline.fresh_copy(), example, LATENCY_BATCH_SIZE)
    setting = f"{mode}:{json.dumps(result.report.config, sort_keys=True)}:{id(result.model)}"
    if setting not in compiled:
        compiled[setting] = try_compile(result.model, example, LATENCY_BATCH_SIZE)
    for attempt in (compiled["fp32"], compiled[setting]):
        if isinstance(attempt, str):
            return unavailable(attempt, LATENCY_BATCH_SIZE)
    (fp32, fp32_seconds), (quantized, quantized_seconds) = compiled["fp32"], compiled[setting]
    split = cached_eval_split(baseline_key(baseline), baseline)
    agreement = agreement_with_reference(quantized, result.model, baseline.dataset.normalize(split.images), LATENCY_BATCH_SIZE)
    return compare_latency(fp32, quantized, example, LATENCY_BATCH_SIZE, rounds=3, compile_seconds=fp32_seconds + quantized_seconds, prediction_agreement=agreement)


def variant_costs(baseline: Baseline, result: QuantizationResult | None, mode: str, latencies: dict[str, LatencyComparison]) -> list[VariantCost]:
    runs = session_dict("quant_runs", baseline_key(baseline))
    reference = result or next(iter(runs.values()), None)
    fp32_latency = next((c.fp32_latency_ms for c in latencies.values() if c.available), None)
    variants = []
    if reference is not None:
        variants.append(VariantCost("fp32", reference.report.size_bytes_before, reference.report.artifact_bytes_before, fp32_latency, "not measured"))
    shown = dict(runs)
    if result is not None and mode == "simulate":
        shown["simulate"] = result
    for name in ("simulate", "dynamic", "static", "qat"):
        if name not in shown:
            continue
        report = shown[name].report
        label = f"simulated {report.config['bits']}-bit" if name == "simulate" else VARIANT_LABELS.get(name, f"QAT {report.config['bits']}-bit")
        comparison = latencies.get(name)
        latency = comparison.quantized_latency_ms if comparison is not None and comparison.available else None
        variants.append(VariantCost(label, report.size.deployed_bytes, report.size.artifact_bytes, latency, "simulated" if report.simulated else "not measured"))
    return variants


def layers_tab(result: QuantizationResult) -> None:
    rows = [
        {
            "layer": layer.name,
            "kind": layer.kind,
            "weights": f"{layer.weight_numel:,}",
            "stored as": layer.scheme,
            "SQNR (dB)": None if layer.sqnr_db is None else round(layer.sqnr_db, 1),
            "MSE": None if layer.mse is None else f"{layer.mse:.2e}",
        }
        for layer in result.report.layers
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"Method: {result.report.method}. Activations quantized: {result.report.activations_quantized}.")


def result_tabs(baseline: Baseline, result: QuantizationResult, split: ImageSplit, accuracy_before: float, mode: str, per_channel: bool, symmetric: bool, activations: bool) -> None:
    bits = result.report.config["bits"]
    levels, errors, accuracy, size_latency, layers = st.tabs(TABS, key="quant_tab", on_change="rerun")
    # Lazy tabs: only the open one is drawn, so a slider move redraws one chart, not five.
    if levels.open:
        with levels:
            levels_tab(result)
    if errors.open:
        with errors:
            error_tab(baseline, bits, symmetric)
    if accuracy.open:
        with accuracy:
            accuracy_tab(baseline, split, accuracy_before, per_channel, symmetric, activations)
    if size_latency.open:
        with size_latency:
            size_latency_tab(baseline, result, mode)
    if layers.open:
        with layers:
            layers_tab(result)


# ---- the four modes ---------------------------------------------------------------------------------------


def record(baseline: Baseline, result: QuantizationResult) -> None:
    run_id, folder = save_and_record(baseline, result, workspace())
    st.success(f"Saved as run {run_id}: {folder}")


def run_button(baseline: Baseline, config: QuantizationConfig, split: ImageSplit, accuracy_before: float, label: str) -> None:
    if not st.button(label, key="quant_run", type="primary"):
        return
    try:
        with st.spinner("Quantizing…"):
            result = quantize(baseline.model, baseline.dataset, config, eval_split=split, base_recipe=baseline.recipe, progress=progress_reporter(MODE_LABELS[config.mode]), seed=baseline.config.seed, accuracy_before=accuracy_before)
        record(baseline, result)
    except UserError as error:
        report_error(error)
        return
    session_dict("quant_runs", baseline_key(baseline))[config.mode] = result
    session_dict("quant_latency", baseline_key(baseline)).pop(config.mode, None)
    if isinstance(config, QATConfig):
        setting = f"{config.per_channel}:{config.symmetric}:{config.activations}" if config.bits < 8 else "True:True:False"
        session_dict("quant_qat_points", baseline_key(baseline), setting)[config.bits] = result.report.accuracy_after


def last_run(baseline: Baseline, mode: str, config: QuantizationConfig) -> QuantizationResult | None:
    result = session_dict("quant_runs", baseline_key(baseline)).get(mode)
    if result is not None and result.report.config != config.as_dict():
        st.caption(f"Showing the last run ({json.dumps({k: v for k, v in result.report.config.items() if k != 'mode'})}); press the button to run the current settings.")
    return result


def simulate_mode(baseline: Baseline, split: ImageSplit, accuracy_before: float) -> None:
    bits = int(st.slider("Weight bits", 2, 8, 8, key="quant_bits"))
    per_channel, symmetric, activations = scheme_controls("quant")
    calibration = calibration_slider(baseline, "quant_sim_calibration", "Calibration images (activation ranges)") if activations else DEFAULT_CALIBRATION_SIZE
    config = SimulateConfig(bits, per_channel, symmetric, activations, calibration)
    try:
        result = cached_simulation(baseline_key(baseline), config_json(config), baseline, config, split, accuracy_before)
    except UserError as error:
        report_error(error)
        return
    show_metrics(result)
    result_tabs(baseline, result, split, accuracy_before, "simulate", per_channel, symmetric, activations)
    if st.button("Save this simulated model to the run history", key="quant_save_simulated"):
        record(baseline, result)


def dynamic_mode(baseline: Baseline, split: ImageSplit, accuracy_before: float) -> None:
    st.markdown("torchao's `quantize_` with `Int8DynamicActivationInt8WeightConfig`: **Linear** weights become int8 and activations are quantized on the fly. There is no dynamic convolution kernel, so **convolutions stay fp32**.")
    config = DynamicInt8Config()
    run_button(baseline, config, split, accuracy_before, "Quantize Linear layers (dynamic int8)")
    result = last_run(baseline, "dynamic", config)
    if result is not None:
        show_metrics(result)
        result_tabs(baseline, result, split, accuracy_before, "dynamic", True, True, False)


def static_mode(baseline: Baseline, split: ImageSplit, accuracy_before: float) -> None:
    st.markdown("PT2E: `torch.export`, then torchao's `prepare_pt2e` with `X86InductorQuantizer`, calibration, `convert_pt2e`. **Convolutions and linears** get int8 weights (per-channel) and uint8 activations.")
    left, right = st.columns(2)
    with left:
        calibration = calibration_slider(baseline, "quant_calibration")
    observer = right.selectbox("Activation observer", OBSERVERS, key="quant_observer", format_func=OBSERVER_LABELS.get, help="How the calibration images set each activation's range: a histogram search that clips outliers, or the plain min/max")
    config = StaticInt8Config(8, calibration, observer)
    run_button(baseline, config, split, accuracy_before, "Calibrate and convert (static int8)")
    result = last_run(baseline, "static", config)
    if result is not None:
        show_metrics(result)
        result_tabs(baseline, result, split, accuracy_before, "static", True, True, False)


def qat_mode(baseline: Baseline, split: ImageSplit, accuracy_before: float) -> None:
    left, right = st.columns(2)
    bits = int(left.slider("Weight bits", 2, 8, 4, key="quant_qat_bits"))
    epochs = int(right.number_input("Fine-tuning epochs", 1, 20, 2, key="quant_qat_epochs"))
    real_int8 = bits == 8
    per_channel, symmetric, activations = scheme_controls("quant_qat", disabled=real_int8)
    if real_int8:
        per_channel, symmetric, activations = True, True, False
        st.caption("At 8 bits QAT uses the x86 backend's scheme (prepare_qat_pt2e: per-channel symmetric int8 weights, uint8 activations) and converts to the real int8 model.")
    else:
        st.caption(f"Below 8 bits no CPU kernel exists: the result stays simulated, and its size is the packed {bits}-bit storage.")
    config = QATConfig(bits, epochs, per_channel, symmetric, activations)
    run_button(baseline, config, split, accuracy_before, f"Fine-tune with fake quantization ({bits} bits)")
    result = last_run(baseline, "qat", config)
    if result is None:
        return
    report = result.report
    st.metric(f"Post-training at the same setting ({report.config['bits']} bits)", f"{report.post_training_accuracy:.1%}", f"QAT {100 * (report.accuracy_after - report.post_training_accuracy):+.1f} points", delta_color="normal")
    show_metrics(result)
    if report.train_history:
        show_figure(learning_curve_figure(report.train_history, "QAT fine-tuning"), key="quant_qat_curve")
    result_tabs(baseline, result, split, accuracy_before, "qat", report.config["per_channel"], report.config["symmetric"], report.config["activations"] and report.config["bits"] < 8)


st.title("🔢 Quantization")
st.markdown(
    "Fewer bits per weight: a smaller model, and with int8 kernels a faster one. **Simulate** shows "
    "the levels and the accuracy they cost; **dynamic** and **static** int8 are real integer models; "
    "**QAT** fine-tunes the model to live with its levels."
)
baseline = require_baseline()
eval_split = cached_eval_split(baseline_key(baseline), baseline)
eval_accuracy_before = cached_accuracy(baseline_key(baseline), baseline, eval_split)
chosen_mode = st.radio("Mode", list(MODE_LABELS), key="quant_mode", format_func=MODE_LABELS.get, horizontal=True)
{"simulate": simulate_mode, "dynamic": dynamic_mode, "static": static_mode, "qat": qat_mode}[chosen_mode](baseline, eval_split, eval_accuracy_before)

"""Quantization: see the levels, measure the error, get real int8 speed.

The page starts from a model source (the sidebar's baseline, or any floating-point run of the
history). Simulate re-renders on every control change from a cache (the quick evaluator's test
subset, no training, no latency). Dynamic, static and QAT runs are buttons: core.quantization's
`quantize` measures them on the full test set and times them under the one latency protocol
(compiled, for int8 kernels); the page records each with core.contract.record. On a classroom server the
QAT run (the one that trains) goes through the job queue instead, and its recorded run is read back.

Below the modes, a lazy expander holds the per-tensor against per-channel lesson
(core.quantization.granularity): the source's batch norms folded into their convolutions, one
layer's weight range per output channel before and after folding against the one range a
per-tensor scale must cover, every layer's share of weights rounded to zero, and the accuracy with
int8 weights per tensor and per channel (activations float) on the quick evaluator's images.
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import streamlit as st

from core.charts.granularity import channel_ranges_figure, zeroed_weights_figure
from core.charts.quantization import SCHEMES, LayerErrorRow, VariantCost, accuracy_vs_bits_figure, layer_error_figure, scheme_label, size_latency_figure, weight_histogram_figure
from core.charts.training import learning_curve_figure
from core.contract.context import RunContext
from core.contract.options import spec
from core.contract.record import record
from core.contract.result import TechniqueResult
from core.contract.run_models import package_from_quantized
from core.contract.source import ModelSource
from core.diff.layers import LayerErrorReport
from core.diff.runs import layer_errors_against_source
from core.foundation.errors import UserError
from core.foundation.measures.latency import COMPILED, LatencyFigures, measure_latencies
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.quantization import DynamicInt8Config, QATConfig, QuantizationResult, SimulateConfig, StaticInt8Config, accuracy_by_bits, error_by_granularity, quantize, quantize_model
from core.quantization.config import QuantizationConfig
from core.quantization.granularity import LESSON_BITS, GranularityLesson, granularity_lesson, lesson_sentences
from core.quantization.recorded import is_rebuilt, recorded_quantization
from ui import share
from ui.diff_view import run_diff, show_layer_errors, show_run_diff
from ui.jobs_view import queued_job, source_config
from ui.latency import protocol_text
from ui.metrics import delta_or_none
from ui.opened_run import show_opened_run
from ui.source import choose_source, quick_accuracy, quick_evaluator, source_key
from ui.state import classroom_mode, format_bytes, progress_reporter, report_error, show_figure, workspace

MODE_LABELS = {"simulate": "Simulate (2–8 bits)", "dynamic": "Dynamic int8", "static": "Static int8", "qat": "Quantization-aware training"}
VARIANT_LABELS = {"dynamic": "dynamic int8", "static": "static int8"}
OBSERVER_LABELS = {"histogram": "histogram (backend default)", "minmax": "min/max", "moving_average": "moving-average min/max"}
TABS = ["Levels", "Per-layer error", "Accuracy vs bits", "Size & latency", "Layers", "What changed"]


def config_json(config: QuantizationConfig) -> str:
    return json.dumps(config.as_dict(), sort_keys=True)


def session_dict(*path: str) -> dict:
    """A nested dict in this browser session's state (created on first use)."""
    node = st.session_state.setdefault(path[0], {})
    for name in path[1:]:
        node = node.setdefault(name, {})
    return node


@st.cache_resource(max_entries=64, show_spinner=False)
def cached_simulation(key: str, config_key: str, _source: ModelSource, _config: SimulateConfig, _evaluator: QuickEvaluator, accuracy_before: float) -> QuantizationResult:
    """The bare quantization (nothing timed, nothing saved) on the quick evaluator's images: a slider move's redraw."""
    return quantize_model(_source.model, _source.dataset, _config, eval_split=_evaluator.split, accuracy_before=accuracy_before, seed=_source.seed)


@st.cache_resource(max_entries=32, show_spinner=False)
def cached_granularity_errors(key: str, bits: int, symmetric: bool, _source: ModelSource) -> list:
    return error_by_granularity(_source.model, bits, symmetric)


@st.cache_resource(max_entries=32, show_spinner="Post-training accuracy at 8 down to 2 bits…")
def cached_bit_sweep(key: str, per_channel: bool, symmetric: bool, activations: bool, _source: ModelSource, _evaluator: QuickEvaluator) -> dict[int, float]:
    return accuracy_by_bits(_source.model, _source.dataset, _evaluator.split, per_channel, symmetric, activations)


@st.cache_resource(max_entries=16, show_spinner="Folding the batch norms, then rounding the weights per tensor and per channel…")
def cached_granularity_lesson(key: str, bits: int, _source: ModelSource, _evaluator: QuickEvaluator, accuracy_float: float) -> GranularityLesson:
    """The lesson for one source and bit width, shared by every session (the quick evaluator's images)."""
    return granularity_lesson(_source.model, _evaluator, bits, accuracy_float)


@st.cache_resource(max_entries=16, show_spinner="Running both models layer by layer…")
def cached_layer_errors(key: str, result_key: str, _source: ModelSource, _result: QuantizationResult) -> LayerErrorReport:
    """The shown quantization's layer errors against its source (UserError for dynamic int8, which no package reproduces)."""
    package = package_from_quantized(_source.model, _result, _source.architecture, _source.dataset, {}, _source.pruned_channels)
    return layer_errors_against_source(_source, package, f"{_result.report.mode} {_result.report.config['bits']}-bit")


# ---- controls ----------------------------------------------------------------------------------------


def yes_no_radio(container, label: str, config_class, field: str, labels: tuple[str, str], *, key: str, disabled: bool, help: str) -> bool:
    """`config_class`'s yes/no option `field` as a horizontal radio between two named choices
    (labels[0] is True), starting at the field's default."""
    index = 0 if spec(config_class, field).default else 1
    return container.radio(label, list(labels), index=index, key=key, horizontal=True, disabled=disabled, help=help) == labels[0]


def scheme_controls(prefix: str, config_class, disabled: bool = False) -> tuple[bool, bool, bool]:
    """Scales, scheme and activations, with the defaults of `config_class` (SimulateConfig or QATConfig)."""
    left, middle, right = st.columns(3)
    scales_help = "One scale per output channel, or one for the whole weight tensor"
    per_channel = yes_no_radio(left, "Scales", config_class, "per_channel", ("per-channel", "per-tensor"), key=f"{prefix}_granularity", disabled=disabled, help=scales_help)
    scheme_help = "Symmetric: zero is code 0. Affine: a zero point shifts the range to the weights' min..max"
    symmetric = yes_no_radio(middle, "Scheme", config_class, "symmetric", ("symmetric", "affine"), key=f"{prefix}_scheme", disabled=disabled, help=scheme_help)
    activations = right.checkbox(
        "Quantize activations too",
        value=spec(config_class, "activations").default,
        key=f"{prefix}_activations",
        disabled=disabled,
        help="Fake-quantize each conv/linear input to the same bit width, with ranges calibrated on training images",
    )
    return per_channel, symmetric, activations


def bits_slider(config_class, key: str, container=None) -> int:
    option_spec = spec(config_class, "bits")
    return int((container or st).slider("Weight bits", int(option_spec.minimum), int(option_spec.maximum), int(option_spec.default), key=key))


def calibration_slider(source: ModelSource, config_class, key: str, label: str = "Calibration images") -> int:
    """The config's calibration range, up to the training images there are (more would observe the same images)."""
    option_spec = spec(config_class, "calibration_size")
    available = len(source.dataset.train)
    top = max(int(option_spec.minimum), min(int(option_spec.maximum), available))
    return int(
        st.slider(
            label,
            int(option_spec.minimum),
            top,
            min(int(option_spec.default), top),
            1,
            key=key,
            help=f"Training images run through the observers to set activation ranges ({available:,} in this dataset)",
        )
    )


# ---- results ------------------------------------------------------------------------------------------


def show_metrics(result: QuantizationResult) -> None:
    report = result.report
    columns = st.columns(5)
    columns[0].metric(
        f"Accuracy ({report.eval_images:,} test images)",
        f"{report.accuracy_after:.1%}",
        delta_or_none(100 * (report.accuracy_after - report.accuracy_before), "{:+.1f} points vs fp32 {fp32:.1%}", fp32=report.accuracy_before),
    )
    columns[1].metric(
        "Deployed size",
        format_bytes(report.size.deployed_bytes),
        f"{report.compression_ratio:.2f}× smaller",
        delta_color="off",
        help="Integer values packed at their bit width + scales + zero points + tensors kept in fp32",
    )
    columns[2].metric(
        "Saved file",
        format_bytes(report.size.artifact_bytes),
        f"fp32 file {format_bytes(report.artifact_bytes_before)}",
        delta_color="off",
        help="The safetensors artifact: int codes, scales, zero points, fp32 tensors, header",
    )
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
    dequantized = weight.dequantize()
    reference, title = result.reference_weights.get(layer, dequantized), layer
    if layer not in result.reference_weights:
        st.caption("This run was made in the server's job queue, and the fp32 weights it quantized are not saved with it: the bars show the quantized values themselves.")
    if weight.spec.per_channel:
        channels = ["all"] + list(range(weight.codes.shape[0]))
        channel = st.selectbox(
            "Output channel",
            channels,
            key="quant_hist_channel",
            format_func=lambda c: "all channels" if c == "all" else f"channel {c}",
            help="Each channel has its own scale: one channel shows its 2^bits grid",
        )
        if channel != "all" and channel < len(reference):
            reference, dequantized, title = reference[channel], dequantized[channel], f"{layer}[{channel}]"
    show_figure(weight_histogram_figure(reference, dequantized, title, weight.spec.describe()), key="quant_histogram")
    st.caption(
        "Bars: the fp32 weights. Spikes: the values the quantized model computes with. Per-channel scales give each channel its own grid, so a whole layer shows more spikes than 2^bits; pick one channel to see its grid."
    )


def error_tab(source: ModelSource, bits: int, symmetric: bool) -> None:
    metric = st.radio("Error measure", ["sqnr_db", "mse"], key="quant_error_metric", horizontal=True, format_func={"sqnr_db": "SQNR (dB)", "mse": "MSE"}.get)
    rows = cached_granularity_errors(source_key(source), bits, symmetric, source)
    if metric == "sqnr_db":
        chart_rows = [LayerErrorRow(r.layer, r.per_tensor_sqnr_db, r.per_channel_sqnr_db) for r in rows]
    else:
        chart_rows = [LayerErrorRow(r.layer, r.per_tensor_mse, r.per_channel_mse) for r in rows]
    show_figure(layer_error_figure(chart_rows, metric, bits), key="quant_layer_error")
    st.caption("Each output channel's own scale fits its own range; one scale for the tensor must cover the widest channel, so narrow channels get coarse steps.")


def accuracy_tab(source: ModelSource, evaluator: QuickEvaluator, accuracy_before: float, per_channel: bool, symmetric: bool, activations: bool) -> None:
    key = source_key(source)
    setting = f"{per_channel}:{symmetric}:{activations}"
    # All four weight schemes at the current activations setting, so per-channel against per-tensor reads off one chart.
    post_training = {scheme: cached_bit_sweep(key, *scheme, activations, source, evaluator) for scheme in SCHEMES}
    qat_points = session_dict("quant_qat_points", key, setting)
    activations_text = "weights and activations" if activations else "weights only"
    title = f"Accuracy versus bit width ({activations_text}; thick line: your {scheme_label(per_channel, symmetric)})"
    show_figure(accuracy_vs_bits_figure(post_training, dict(qat_points), accuracy_before, title, current=(per_channel, symmetric)), key="quant_accuracy_bits")
    st.caption(
        f"Post-training lines on the {evaluator.images:,}-image test subset. One scale per output channel keeps narrow channels fine-grained; "
        "one scale per tensor must cover the widest channel, and the gap opens as the bits drop."
    )
    if not qat_points:
        st.caption("Run quantization-aware training with this scheme to add its points; at 4 bits the gap to post-training is usually largest.")


def headline_latency(result: TechniqueResult) -> tuple[LatencyFigures, LatencyFigures]:
    """The (fp32 source, quantized model) latencies `quantize` measured with the run."""
    h = result.headline
    return (
        LatencyFigures(h.latency_ms_single_before, h.latency_ms_before, h.latency_batch_size, h.latency_threads, h.latency_runtime, h.latency_device),
        LatencyFigures(h.latency_ms_single_after, h.latency_ms_after, h.latency_batch_size, h.latency_threads, h.latency_runtime, h.latency_device),
    )


def variant_label(mode: str, bits: int) -> str:
    return VARIANT_LABELS.get(mode, f"QAT {bits}-bit" if bits < 8 else "QAT int8")


def size_latency_tab(source: ModelSource, shown: QuantizationResult | None, run: TechniqueResult | None, mode: str) -> None:
    """`shown` is what the page shows (a simulation or a run's QuantizationResult); `run` the recorded run behind it, if any."""
    latencies: dict[str, tuple[LatencyFigures, LatencyFigures]] = session_dict("quant_latency", source_key(source))
    if run is not None and not run.report.report.simulated:
        latencies.setdefault(mode, headline_latency(run))
        if not is_rebuilt(run) and st.button(
            "Measure the latency again (compiled fp32 vs compiled int8)", key="quant_latency_button", help="The run was timed when it was made; time both again, e.g. once the machine is quieter"
        ):
            with st.spinner("Compiling with torch.compile (inductor, freezing on); tens of seconds the first time…"):
                figures, _ = measure_latencies({"fp32": copy.deepcopy(source.model).cpu().eval(), "quantized": run.model}, source.example_input().cpu(), compiled=True)
            latencies[mode] = (figures["fp32"], figures["quantized"])
        fp32, quantized = latencies[mode]
        if quantized.runtime != COMPILED:
            st.warning(f"Int8 kernels run only compiled; this machine timed both models in {quantized.runtime}.")
        label = variant_label(mode, run.report.report.config["bits"])
        columns = st.columns(4)
        columns[0].metric("fp32, 1 image", f"{fp32.single_ms:.3f} ms")
        columns[1].metric(f"{label}, 1 image", f"{quantized.single_ms:.3f} ms", f"{fp32.single_ms / quantized.single_ms:.2f}× faster", delta_color="off")
        columns[2].metric(f"fp32, batch {fp32.throughput_batch_size}", f"{fp32.throughput_ms:.2f} ms")
        columns[3].metric(f"{label}, batch {quantized.throughput_batch_size}", f"{quantized.throughput_ms:.2f} ms", f"{fp32.throughput_ms / quantized.throughput_ms:.2f}× faster", delta_color="off")
        st.caption(f"Measured at {protocol_text(quantized.runtime, quantized.threads)}, the two models interleaved (each keeps its fastest round's median).")
    elif shown is not None:
        st.info("Simulated models compute in fp32 with rounded values: there is no integer kernel to time.")
    show_figure(size_latency_figure(variant_costs(source, shown, mode, latencies)), key="quant_size_latency")
    st.caption(
        "Deployed: what a runtime loads (values at their bit width, scales, zero points, fp32 biases). Saved file: the safetensors artifact, which adds a header and keeps sub-8-bit codes in whole bytes."
    )


def variant_costs(source: ModelSource, shown: QuantizationResult | None, mode: str, latencies: dict[str, tuple[LatencyFigures, LatencyFigures]]) -> list[VariantCost]:
    runs: dict[str, TechniqueResult] = session_dict("quant_runs", source_key(source))
    reports = {name: run.report.report for name, run in runs.items()}
    if shown is not None and mode == "simulate":
        reports["simulate"] = shown.report
    reference = shown.report if shown is not None else next(iter(reports.values()), None)
    compiled = [pair for pair in latencies.values() if pair[0].runtime == COMPILED]
    fp32_latency = compiled[-1][0].throughput_ms if compiled else None
    variants = []
    if reference is not None:
        variants.append(VariantCost("fp32", reference.size_bytes_before, reference.artifact_bytes_before, fp32_latency, "not measured"))
    for name in ("simulate", "dynamic", "static", "qat"):
        if name not in reports:
            continue
        report = reports[name]
        label = f"simulated {report.config['bits']}-bit" if name == "simulate" else variant_label(name, report.config["bits"])
        pair = latencies.get(name)
        latency = pair[1].throughput_ms if pair is not None and pair[1].runtime == COMPILED and not report.simulated else None
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


def what_changed_tab(source: ModelSource, result: QuantizationResult, run: TechniqueResult | None, mode: str) -> None:
    """Layer by layer for the shown quantization; example by example for the last recorded run of this mode."""
    st.subheader("The model shown, layer by layer")
    result_key = f"run {run.run_id}" if run is not None else config_json_of(result)
    try:
        report, reason = cached_layer_errors(source_key(source), result_key, source, result), ""
    except UserError as error:
        report, reason = None, str(error)
    show_layer_errors(report, reason, key="quant_preview_layers")
    st.subheader("The last recorded run, example by example")
    recorded: TechniqueResult | None = session_dict("quant_recorded", source_key(source)).get(mode)
    if recorded is None:
        st.caption(
            "Nothing recorded in this mode yet: "
            + ("press **Save this simulated model to the run history**" if mode == "simulate" else "press the run button above")
            + " to compare it with its source on the whole test set."
        )
        return
    comparison = run_diff(recorded.run_id)
    if comparison is not None:
        show_run_diff(comparison, key="quant_diff")


def config_json_of(result: QuantizationResult) -> str:
    """A simulation's cache key: the settings it was made with."""
    return json.dumps(result.report.config, sort_keys=True, default=str)


def result_tabs(
    source: ModelSource, result: QuantizationResult, run: TechniqueResult | None, evaluator: QuickEvaluator, accuracy_before: float, mode: str, per_channel: bool, symmetric: bool, activations: bool
) -> None:
    bits = result.report.config["bits"]
    levels, errors, accuracy, size_latency, layers, what_changed = st.tabs(TABS, key="quant_tab", on_change="rerun")
    # Lazy tabs: only the open one is drawn, so a slider move redraws one chart, not five.
    if levels.open:
        with levels:
            levels_tab(result)
    if errors.open:
        with errors:
            error_tab(source, bits, symmetric)
    if accuracy.open:
        with accuracy:
            accuracy_tab(source, evaluator, accuracy_before, per_channel, symmetric, activations)
    if size_latency.open:
        with size_latency:
            size_latency_tab(source, result, run, mode)
    if layers.open:
        with layers:
            layers_tab(result)
    if what_changed.open:
        with what_changed:
            what_changed_tab(source, result, run, mode)


# ---- the four modes ---------------------------------------------------------------------------------------


def record_run(result: TechniqueResult) -> None:
    run_id = record(result, workspace())
    st.success(f"Saved as run {run_id}: {result.artifact.path}")


def run_quantization(source: ModelSource, config: QuantizationConfig) -> TechniqueResult | None:
    """Quantize the source as `config` says (full test set, latency under the protocol) and record the run."""
    try:
        with st.spinner("Quantizing, then timing the source and the quantized model…"):
            result = quantize(source, config, RunContext(workspace(), progress_reporter(MODE_LABELS[config.mode])))
        record_run(result)
    except UserError as error:
        report_error(error)
        return None
    session_dict("quant_recorded", source_key(source))[config.mode] = result  # what the "What changed" tab compares
    return result


def run_button(source: ModelSource, config: QuantizationConfig, label: str) -> None:
    if classroom_mode() and isinstance(config, QATConfig):
        queued_qat_button(source, config, label)
        return
    if not st.button(label, key="quant_run", type="primary"):
        return
    result = run_quantization(source, config)
    if result is not None:
        remember_run(source, config, result)


def queued_qat_button(source: ModelSource, config: QATConfig, label: str) -> None:
    """A classroom server fine-tunes in the job queue, once for every student with these settings;
    when the job is done its recorded run is read back from the history and shown as after an in-page run."""
    job_config = {"source": source_config(source), "quantization": config.as_dict(), "seed": source.seed}
    result = queued_job("quantize", job_config, str(workspace().root), label, "quant", button_key="quant_run", work="fine-tuning")
    shown = session_dict("quant_runs", source_key(source)).get(config.mode)
    if result is None or (shown is not None and shown.run_id == result["run_id"]):
        return
    try:
        run = recorded_quantization(workspace(), source, result["run_id"])
    except UserError as error:
        report_error(error)
        return
    st.success(f"Saved as run {run.run_id}: {run.artifact.path}")
    session_dict("quant_recorded", source_key(source))[config.mode] = run  # what the "What changed" tab compares
    remember_run(source, config, run)


def remember_run(source: ModelSource, config: QuantizationConfig, result: TechniqueResult) -> None:
    """What the page shows of a finished run: its figures and tabs, and for QAT its point on the accuracy chart."""
    session_dict("quant_runs", source_key(source))[config.mode] = result
    session_dict("quant_latency", source_key(source)).pop(config.mode, None)
    if isinstance(config, QATConfig):
        setting = f"{config.per_channel}:{config.symmetric}:{config.activations}" if config.bits < 8 else "True:True:False"
        session_dict("quant_qat_points", source_key(source), setting)[config.bits] = result.headline.accuracy_after


def last_run(source: ModelSource, mode: str, config: QuantizationConfig) -> TechniqueResult | None:
    result = session_dict("quant_runs", source_key(source)).get(mode)
    if result is not None and result.config != config.as_dict():
        st.caption(f"Showing the last run ({json.dumps({k: v for k, v in result.config.items() if k != 'mode'})}); press the button to run the current settings.")
    return result


def simulate_mode(source: ModelSource, evaluator: QuickEvaluator, accuracy_before: float) -> None:
    bits = bits_slider(SimulateConfig, "quant_bits")
    per_channel, symmetric, activations = scheme_controls("quant", SimulateConfig)
    calibration = calibration_slider(source, SimulateConfig, "quant_sim_calibration", "Calibration images (activation ranges)") if activations else spec(SimulateConfig, "calibration_size").default
    config = SimulateConfig(bits=bits, per_channel=per_channel, symmetric=symmetric, activations=activations, calibration_size=calibration)
    try:
        result = cached_simulation(source_key(source), config_json(config), source, config, evaluator, accuracy_before)
    except UserError as error:
        report_error(error)
        return
    show_metrics(result)
    # Saved before the tabs are drawn, so the "What changed" tab already compares the run it records.
    if st.button("Save this simulated model to the run history", key="quant_save_simulated", help="Measures it on the full test set and times it (eager, as it computes in fp32), then records it"):
        run_quantization(source, config)
    result_tabs(source, result, None, evaluator, accuracy_before, "simulate", per_channel, symmetric, activations)


def run_int8_mode(source: ModelSource, config, label: str, evaluator: QuickEvaluator, accuracy_before: float) -> None:
    """The run button of an int8 mode, then its last run's figures and tabs (per-channel symmetric weights)."""
    run_button(source, config, label)
    run = last_run(source, config.mode, config)
    if run is not None:
        show_metrics(run.report)
        result_tabs(source, run.report, run, evaluator, accuracy_before, config.mode, True, True, False)


def dynamic_mode(source: ModelSource, evaluator: QuickEvaluator, accuracy_before: float) -> None:
    st.markdown(
        "torchao's `quantize_` with `Int8DynamicActivationInt8WeightConfig`: **Linear** weights become int8 and activations are quantized on the fly. There is no dynamic convolution kernel, so **convolutions stay fp32**."
    )
    run_int8_mode(source, DynamicInt8Config(), "Quantize Linear layers (dynamic int8)", evaluator, accuracy_before)


def static_mode(source: ModelSource, evaluator: QuickEvaluator, accuracy_before: float) -> None:
    st.markdown(
        "PT2E: `torch.export`, then torchao's `prepare_pt2e` with `X86InductorQuantizer`, calibration, `convert_pt2e`. **Convolutions and linears** get int8 weights (per-channel) and uint8 activations."
    )
    left, right = st.columns(2)
    with left:
        calibration = calibration_slider(source, StaticInt8Config, "quant_calibration")
    observer_spec = spec(StaticInt8Config, "observer")
    observers = list(observer_spec.choices)
    observer = right.selectbox(
        "Activation observer",
        observers,
        index=observers.index(observer_spec.default),
        key="quant_observer",
        format_func=OBSERVER_LABELS.get,
        help="How the calibration images set each activation's range: a histogram search that clips outliers, or the plain min/max",
    )
    run_int8_mode(source, StaticInt8Config(calibration_size=calibration, observer=observer), "Calibrate and convert (static int8)", evaluator, accuracy_before)


def qat_mode(source: ModelSource, evaluator: QuickEvaluator, accuracy_before: float) -> None:
    left, right = st.columns(2)
    bits = bits_slider(QATConfig, "quant_qat_bits", left)
    epochs_spec = spec(QATConfig, "epochs")
    epochs = int(right.number_input("Fine-tuning epochs", int(epochs_spec.minimum), int(epochs_spec.maximum), int(epochs_spec.default), key="quant_qat_epochs", help=epochs_spec.help))
    real_int8 = bits == 8
    per_channel, symmetric, activations = scheme_controls("quant_qat", QATConfig, disabled=real_int8)
    if real_int8:
        per_channel, symmetric, activations = True, True, False
        st.caption("At 8 bits QAT uses the x86 backend's scheme (prepare_qat_pt2e: per-channel symmetric int8 weights, uint8 activations) and converts to the real int8 model.")
    else:
        st.caption(f"Below 8 bits no CPU kernel exists: the result stays simulated, and its size is the packed {bits}-bit storage.")
    config = QATConfig(bits=bits, epochs=epochs, per_channel=per_channel, symmetric=symmetric, activations=activations)
    run_button(source, config, f"Fine-tune with fake quantization ({bits} bits)")
    run = last_run(source, "qat", config)
    if run is None:
        return
    result = run.report
    report = result.report
    st.metric(
        f"Post-training at the same setting ({report.config['bits']} bits)",
        f"{report.post_training_accuracy:.1%}",
        delta_or_none(100 * (report.accuracy_after - report.post_training_accuracy), "QAT {:+.1f} points"),
        delta_color="normal",
    )
    show_metrics(result)
    if report.train_history:
        show_figure(learning_curve_figure(report.train_history, "QAT fine-tuning"), key="quant_qat_curve")
    result_tabs(source, result, run, evaluator, accuracy_before, "qat", report.config["per_channel"], report.config["symmetric"], report.config["activations"] and report.config["bits"] < 8)


# ---- the lesson: one scale per tensor against one per channel, after batch-norm folding ------------------

LESSON_BIT_CHOICES = (LESSON_BITS, 6, 4)


def lesson_layer(lesson: GranularityLesson) -> str:
    """The layer picker, starting at the layer where one scale per tensor hurts most (a stale pick from another source is reset)."""
    names = [layer.layer for layer in lesson.layers]
    if st.session_state.get("quant_lesson_layer") not in names:
        st.session_state["quant_lesson_layer"] = lesson.worst_layer
    by_name = {layer.layer: layer for layer in lesson.layers}
    return st.selectbox(
        "Layer",
        names,
        key="quant_lesson_layer",
        format_func=lambda name: f"{name} ({by_name[name].kind}, widest channel {by_name[name].channel_range_ratio:.1f}× the median)",
        help="Starts at the layer whose folded channel ranges differ most: where one scale per tensor hurts most",
    )


def granularity_lesson_section(source: ModelSource, evaluator: QuickEvaluator, accuracy_before: float) -> None:
    # A lazy expander: folding and two accuracy passes run only when someone opens it, not on every slider move.
    section = st.expander("Per-tensor vs per-channel int8: why depthwise networks need a scale per channel", key="quant_lesson_open", on_change="rerun")
    if not section.open:
        return
    with section:
        bits = int(
            st.radio(
                "Weight bits",
                LESSON_BIT_CHOICES,
                key="quant_lesson_bits",
                horizontal=True,
                help="int8 is the lesson; fewer bits show where the per-tensor gap opens first on a small model",
            )
        )
        lesson = cached_granularity_lesson(source_key(source), bits, source, evaluator, accuracy_before)
        columns = st.columns(3)
        columns[0].metric(f"Float weights ({lesson.eval_images:,} test images)", f"{lesson.accuracy_float:.1%}")
        for column, label, accuracy in ((columns[1], "one scale per tensor", lesson.accuracy_per_tensor), (columns[2], "one scale per output channel", lesson.accuracy_per_channel)):
            column.metric(f"int{bits} weights, {label}", f"{accuracy:.1%}", delta_or_none(100 * (accuracy - lesson.accuracy_float), "{:+.1f} points vs float"))
        shown = lesson_layer(lesson)
        st.markdown(lesson_sentences(lesson, shown))
        show_figure(channel_ranges_figure(lesson.layer(shown).ranges, bits), key="quant_lesson_ranges")
        show_figure(zeroed_weights_figure(lesson.layers, bits, highlighted=shown), key="quant_lesson_zeroed")
        folded = f"{len(lesson.folded)} batch norms folded into the convolutions before them" if lesson.folded else "no batch norm to fold in this model"
        st.caption(
            f"Weights only, symmetric, {folded}; activations stay float and biases fp32, so the gap is the weight scales alone. "
            f"Accuracy on the quick evaluator's {lesson.eval_images:,} class-balanced test images." + (f" {lesson.note}." if lesson.note else "")
        )


st.title("🔢 Quantization")
st.markdown(
    "Fewer bits per weight: a smaller model, and with int8 kernels a faster one. **Simulate** shows "
    "the levels and the accuracy they cost; **dynamic** and **static** int8 are real integer models; "
    "**QAT** fine-tunes the model to live with its levels."
)
share.apply_page_link("quantization")  # a share link's settings, before the widgets
show_opened_run()
source = choose_source("quant_source")
evaluator = quick_evaluator(source)
eval_accuracy_before = quick_accuracy(source, evaluator)
chosen_mode = st.radio("Mode", list(MODE_LABELS), key="quant_mode", format_func=MODE_LABELS.get, horizontal=True)
{"simulate": simulate_mode, "dynamic": dynamic_mode, "static": static_mode, "qat": qat_mode}[chosen_mode](source, evaluator, eval_accuracy_before)
granularity_lesson_section(source, evaluator, eval_accuracy_before)
share.write_page_link("quantization")  # the current settings back into the URL

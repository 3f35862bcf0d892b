"""Pruning: masks you can see, channels really removed, sizes that tell the truth.

A slider move prunes a copy of the cached baseline and evaluates it on a 2,000-image test subset
(no training). Fine-tuning, the iterative schedule, the sensitivity scan, the accuracy sweep and
latency are buttons, each with progress.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import streamlit as st

from core.baseline import Baseline
from core.charts.pruning import accuracy_vs_sparsity_figure, sensitivity_figure, size_speed_figure, sparsity_bars_figure, weight_heatmaps_figure, weight_histogram_figure
from core.charts.training import learning_curve_figure
from core.errors import UserError
from core.pruning import (
    EVAL_SUBSET_SIZE,
    LATENCY_BATCH_SIZE,
    PruneConfig,
    PrunedModels,
    PruneReport,
    PruneSnapshot,
    QuickEvaluator,
    ScheduleConfig,
    accuracy_sweep,
    all_weights,
    baseline_layers,
    compare_latency,
    layer_shapes,
    preview_pruning,
    run_pruning,
    sensitivity_scan,
    weight_view,
)
from core.pruning.masks import unstructured_layers
from core.pruning.stats import architecture_rows
from core.training import EpochRecord
from ui.state import format_bytes, progress_reporter, report_error, require_baseline, show_figure, workspace

METHOD_LABELS = {"l1": "L1 magnitude", "ln": "L2 norm (Ln, n = 2)", "random": "random"}
METHODS_FOR = {"unstructured": ["l1", "random"], "channel": ["ln", "l1", "random"]}
HEATMAP_COLUMNS = 400  # wide layers show every k-th column, keeping each redraw light


def baseline_key(baseline: Baseline) -> str:
    return f"{baseline.checkpoint}:{baseline.run_id}"


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_evaluator(key: str, _baseline: Baseline) -> QuickEvaluator:
    return QuickEvaluator(_baseline.dataset, _baseline.device, EVAL_SUBSET_SIZE)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_accuracy(key: str, _baseline: Baseline, _evaluator: QuickEvaluator) -> float:
    return _evaluator.accuracy(_baseline.model)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_layers(key: str, granularity: str, _baseline: Baseline) -> list[str]:
    return baseline_layers(_baseline, granularity)


@st.cache_resource(max_entries=64, show_spinner=False)
def cached_preview(key: str, config_json: str, _baseline: Baseline, _config: PruneConfig, _evaluator: QuickEvaluator) -> tuple[PrunedModels, PruneSnapshot]:
    return preview_pruning(_baseline, _config, _evaluator)


def config_json(config: PruneConfig) -> str:
    return json.dumps(config.as_dict(), sort_keys=True)


def curve_key(config: PruneConfig) -> str:
    """Which accuracy-vs-sparsity curve a setting belongs to: everything but the amounts."""
    return config_json(replace(config, amount=0.0, layer_amounts=()))


def session_dict(name: str) -> dict:
    return st.session_state.setdefault(name, {})


def choose_config(baseline: Baseline) -> PruneConfig:
    left, middle, right = st.columns(3)
    granularity = left.radio("What to prune", ["unstructured", "channel"], key="prune_granularity", format_func={"unstructured": "single weights (unstructured)", "channel": "whole channels (structured)"}.get, horizontal=True)
    method = left.selectbox("Ranking", METHODS_FOR[granularity], key=f"prune_method_{granularity}", format_func=METHOD_LABELS.get, help="Which weights (or channels) go first: the smallest in magnitude, or random ones as a control")
    scope = middle.radio("Scope", ["layer", "global"], key="prune_scope", format_func={"layer": "each layer by the amount", "global": "one threshold across layers"}.get, horizontal=True)
    available = cached_layers(baseline_key(baseline), granularity, baseline)
    layers = middle.multiselect("Layers", available, default=available, key=f"prune_layers_{granularity}")
    amount = right.slider("Amount to prune", 0.0, 0.99, 0.5, 0.01, key="prune_amount", format="%.2f")
    remove = right.checkbox("Physically remove pruned channels", key="prune_remove", help="Cut the pruned channels out (Torch-Pruning's dependency graph shrinks every layer that reads them)") if granularity == "channel" else False
    layer_amounts = session_dict("prune_layer_amounts").get(granularity, {}) if scope == "layer" else {}
    if layer_amounts:
        right.info("Per-layer amounts from the sensitivity scan: " + ", ".join(f"{name} {amount:.0%}" for name, amount in layer_amounts.items()))
        if right.button("Back to one amount for all layers", key="prune_clear_scan_amounts"):
            session_dict("prune_layer_amounts").pop(granularity, None)
            st.rerun()
    selected = None if set(layers) == set(available) else tuple(layers)
    return PruneConfig(method, granularity, float(amount), scope, selected, tuple(sorted(layer_amounts.items())), bool(remove), baseline.config.seed)


def show_metrics(baseline: Baseline, snapshot: PruneSnapshot, eval_accuracy_before: float) -> None:
    columns = st.columns(7)
    columns[0].metric(f"Accuracy ({snapshot.eval_images:,} test images)", f"{snapshot.accuracy:.1%}", f"{100 * (snapshot.accuracy - eval_accuracy_before):+.1f} points")
    columns[1].metric("Zero weights", f"{snapshot.sparsity:.1%}")
    columns[2].metric("Parameters", f"{snapshot.params:,}", f"{snapshot.params - baseline.metrics.params:+,}", delta_color="inverse")
    columns[3].metric("MACs per image", f"{snapshot.macs / 1e6:.2f} M", f"{(snapshot.macs - baseline.metrics.macs) / 1e6:+.2f} M", delta_color="inverse")
    columns[4].metric("Dense file", format_bytes(snapshot.size_bytes_dense), help="fp32 safetensors: a zero costs 4 bytes like any other number")
    columns[5].metric("Sparse encoding", format_bytes(snapshot.size_bytes_sparse), help="each tensor as dense, bitmask + nonzeros, or CSR, whichever is smallest; measured from the tensors")
    columns[6].metric("gzip of the file", format_bytes(snapshot.size_bytes_gzip))


def weights_tab(baseline: Baseline, pruned: PrunedModels) -> None:
    all_layers = unstructured_layers(pruned.masked)
    drawn = st.multiselect("Layers to draw", all_layers, default=all_layers[:6], key="prune_heatmap_layers")
    st.caption("Colour is |weight|; pruned weights are empty (white). A removed filter is an empty row; the next layer loses the matching input columns.")
    if drawn:
        show_figure(weight_heatmaps_figure([weight_view(pruned.masked, layer) for layer in drawn], max_columns=HEATMAP_COLUMNS), key="prune_heatmaps")
    show_figure(weight_histogram_figure(all_weights(baseline.model), all_weights(pruned.masked)), key="prune_histogram")


def size_speed_tab(baseline: Baseline, pruned: PrunedModels, snapshot: PruneSnapshot, config: PruneConfig) -> None:
    latencies = session_dict("prune_latency").get(config_json(config))
    if st.button(f"Measure latency (batch {LATENCY_BATCH_SIZE})", key="prune_measure_latency"):
        models = {"baseline": baseline.model, "masked": pruned.masked}
        if pruned.removed is not None:
            models["physically smaller"] = pruned.removed
        with st.spinner("Timing each model, interleaved…"):
            measured = compare_latency(models, baseline.example_input(), LATENCY_BATCH_SIZE, rounds=2)
        latencies = {name: latency.latency_ms for name, latency in measured.items()}
        session_dict("prune_latency")[config_json(config)] = latencies
    sizes = {
        "dense before": baseline.metrics.size_bytes,
        "dense after": snapshot.size_bytes_dense,
        "bitmask": snapshot.size_bytes_bitmask,
        "CSR": snapshot.size_bytes_csr,
        "sparse (best)": snapshot.size_bytes_sparse,
        "gzip": snapshot.size_bytes_gzip,
    }
    show_figure(size_speed_figure(sizes, latencies, LATENCY_BATCH_SIZE), key="prune_size_speed")
    rows = [{"measure": name, "value": format_bytes(value), "vs dense before": f"{value / baseline.metrics.size_bytes:.0%}"} for name, value in sizes.items()]
    rows += [
        {"measure": "parameters", "value": f"{snapshot.params:,}", "vs dense before": f"{snapshot.params / baseline.metrics.params:.0%}"},
        {"measure": "nonzero parameters", "value": f"{snapshot.nonzero_params:,}", "vs dense before": f"{snapshot.nonzero_params / baseline.metrics.params:.0%}"},
        {"measure": "MACs per image", "value": f"{snapshot.macs:,}", "vs dense before": f"{snapshot.macs / baseline.metrics.macs:.0%}"},
    ]
    for name, milliseconds in (latencies or {}).items():
        rows.append({"measure": f"latency, {name}", "value": f"{milliseconds:.2f} ms", "vs dense before": f"{milliseconds / latencies['baseline']:.0%}"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("A masked zero is still stored and still multiplied: only a sparse encoding shrinks the file, and only physically removed channels cut MACs and time.")


def accuracy_tab(baseline: Baseline, snapshot: PruneSnapshot, config: PruneConfig, evaluator: QuickEvaluator, eval_accuracy_before: float) -> None:
    key = curve_key(config)
    if st.button("Trace the one-shot curve (0–90%)", key="prune_sweep"):
        try:
            session_dict("prune_sweeps")[key] = accuracy_sweep(baseline, config, evaluator, progress=progress_reporter("One-shot sweep"))
        except UserError as error:
            report_error(error)
    oneshot = session_dict("prune_sweeps").get(key, [])
    finetuned = session_dict("prune_finetuned").get(key, [])
    show_figure(accuracy_vs_sparsity_figure(oneshot, finetuned, eval_accuracy_before, current=(snapshot.sparsity, snapshot.accuracy)), key="prune_accuracy_curve")
    if finetuned:
        st.caption("Fine-tuned points are measured on the full test set; the one-shot curve on the 2,000-image subset.")


def sensitivity_tab(baseline: Baseline, config: PruneConfig, evaluator: QuickEvaluator) -> None:
    scans = session_dict("prune_scans")
    scan_key = f"{config.granularity}:{config.method}"
    if st.button("Run the sensitivity scan", key="prune_scan", help="Each layer alone, pruned 0–90% in 10% steps"):
        try:
            scans[scan_key] = sensitivity_scan(baseline, evaluator, config.granularity, config.method, progress=progress_reporter("Sensitivity scan"))
        except UserError as error:
            report_error(error)
    scan = scans.get(scan_key)
    if scan is None:
        st.caption("The scan shows which layers tolerate pruning: flat lines can lose more.")
        return
    show_figure(sensitivity_figure(scan), key="prune_sensitivity")
    tolerance = st.number_input("Allowed accuracy drop per layer (points)", 0.0, 50.0, 1.0, 0.5, key="prune_scan_tolerance")
    chosen = scan.amounts_within(tolerance / 100)
    st.dataframe(pd.DataFrame([{"layer": name, "amount": f"{amount:.0%}"} for name, amount in chosen.items()]), hide_index=True)
    global_scope = config.scope == "global"
    if st.button("Use these per-layer amounts", key="prune_use_scan", disabled=global_scope, help="Needs the scope 'each layer by the amount'" if global_scope else None):
        session_dict("prune_layer_amounts")[config.granularity] = chosen
        st.rerun()


def run_section(baseline: Baseline, config: PruneConfig) -> None:
    st.subheader("Fine-tune and save")
    left, middle, right = st.columns([1, 1, 2])
    epochs = left.number_input("Fine-tuning epochs", 0, 50, 1, key="prune_finetune_epochs", help="Masks stay fixed: pruned weights stay zero")
    steps = middle.number_input("Iterative steps", 1, 10, 1, key="prune_iterative_steps", help="1 = one-shot. N: prune a little, fine-tune, repeat up to the amount")
    right.write("")
    if right.button("Prune, fine-tune and save", key="prune_run", type="primary"):
        try:
            _, report = run_pruning(baseline, config, ScheduleConfig(int(epochs), int(steps)), workspace(), progress=progress_reporter("Pruning run"), latency_rounds=2)
        except UserError as error:
            report_error(error)
            return
        st.session_state["prune_last_report"] = report
        session_dict("prune_finetuned").setdefault(curve_key(config), []).append((report.sparsity, report.accuracy_after))
    report: PruneReport | None = st.session_state.get("prune_last_report")
    if report is not None:
        show_report(report)


def show_report(report: PruneReport) -> None:
    columns = st.columns(5)
    columns[0].metric("Accuracy before", f"{report.accuracy_before:.1%}")
    columns[1].metric("One-shot", f"{report.accuracy_oneshot:.1%}")
    columns[2].metric("After fine-tuning", f"{report.accuracy_after:.1%}", f"{100 * (report.accuracy_after - report.accuracy_before):+.1f} points")
    columns[3].metric("Parameters", f"{report.params:,}", f"{report.params / report.params_before:.0%} of before", delta_color="off")
    columns[4].metric(f"Latency (batch {report.latency_batch_size})", f"{report.latency_ms_after:.2f} ms", f"{report.latency_ms_before / max(report.latency_ms_after, 1e-9):.2f}× vs baseline", delta_color="off")
    st.caption(f"Run {report.run_id} saved to {report.artifact_path} · {report.eval_images:,} test images · masked model {report.latency_ms_masked:.2f} ms")
    if report.finetune_history:
        show_figure(learning_curve_figure([EpochRecord(**record) for record in report.finetune_history], "Fine-tuning"), key="prune_finetune_curve")


st.title("✂️ Pruning")
st.markdown(
    "Zeroing weights does not shrink a dense file, and does not make a dense model faster. "
    "Here you see **where** the zeros go (masks), what they cost **stored sparsely**, and what "
    "**physically removing** whole channels buys in parameters, MACs and measured time."
)
baseline = require_baseline()
evaluator = cached_evaluator(baseline_key(baseline), baseline)
eval_accuracy_before = cached_accuracy(baseline_key(baseline), baseline, evaluator)
config = choose_config(baseline)
try:
    pruned, snapshot = cached_preview(baseline_key(baseline), config_json(config), baseline, config, evaluator)
except UserError as error:
    report_error(error)
    pruned = snapshot = None
TABS = ["Weights", "Per layer", "Size & speed", "Architecture", "Accuracy vs sparsity", "Sensitivity"]
if snapshot is not None:
    show_metrics(baseline, snapshot, eval_accuracy_before)
    # Lazy tabs: only the open one is drawn, so a slider move redraws one tab, not six.
    weights, per_layer, size_speed, architecture, accuracy, sensitivity = st.tabs(TABS, key="prune_tab", on_change="rerun")
    if weights.open:
        with weights:
            weights_tab(baseline, pruned)
    if per_layer.open:
        with per_layer:
            show_figure(sparsity_bars_figure(snapshot.sparsity_per_layer, snapshot.sparsity), key="prune_sparsity_bars")
    if size_speed.open:
        with size_speed:
            size_speed_tab(baseline, pruned, snapshot, config)
    if architecture.open:
        with architecture:
            final = pruned.removed if pruned.removed is not None else pruned.masked
            st.dataframe(pd.DataFrame(architecture_rows(layer_shapes(baseline.model), layer_shapes(final))), hide_index=True, width="stretch")
            if pruned.removed is None:
                st.caption("Masks keep every shape: tick **Physically remove pruned channels** (channel pruning) to see the network shrink.")
    if accuracy.open:
        with accuracy:
            accuracy_tab(baseline, snapshot, config, evaluator, eval_accuracy_before)
    if sensitivity.open:
        with sensitivity:
            sensitivity_tab(baseline, config, evaluator)
    run_section(baseline, config)

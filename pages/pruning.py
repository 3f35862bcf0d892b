"""Pruning: masks you can see, channels really removed, sizes that tell the truth.

The page starts from a model source (the sidebar's baseline, or any floating-point run of the
history). A slider move prunes a copy of it and evaluates it with the quick evaluator (a class-balanced
test subset: 2,000 images, 256 for torchvision's networks; no training, no latency). Fine-tuning, the iterative schedule, the sensitivity scan, the
accuracy sweep and latency are buttons, each with progress; a pruning run is recorded by core.contract.record.
On a classroom server (MEL_CLASSROOM=1) "Prune, fine-tune and save" asks the server's job queue
(core.jobs, kind "prune") and the page shows the recorded run once the job is done.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.charts.pruning import accuracy_vs_sparsity_figure, coupled_groups_figure, sensitivity_figure, size_speed_figure, sparsity_bars_figure, weight_heatmaps_figure, weight_histogram_figure
from core.charts.training import learning_curve_figure
from core.contract.context import RunContext
from core.contract.options import spec
from core.contract.record import record
from core.contract.result import TechniqueResult
from core.contract.source import ModelSource
from core.diff.layers import LayerErrorReport
from core.diff.runs import layer_errors_against_source, pruned_preview_package
from core.foundation.errors import UserError
from core.foundation.measures.latency import LatencyFigures, measure_latencies, throughput_batch_size
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.pruning import METHODS, PruneConfig, PrunedModels, PruneSnapshot, accuracy_sweep, all_weights, layer_shapes, preview_pruning, prune, sensitivity_scan, source_layers, weight_view
from core.pruning.groups import ChannelGroups, coupled_groups
from core.pruning.masks import unstructured_layers
from core.pruning.recorded import PruneRunFigures, recorded_figures, run_figures
from core.pruning.stats import architecture_rows
from ui import share
from ui.diff_view import run_diff, show_layer_errors, show_run_diff
from ui.jobs_view import queued_job, source_config
from ui.latency import figures_caption, protocol_text
from ui.metrics import delta_or_none
from ui.opened_run import show_opened_run
from ui.shared_cache import FIGURE_CACHE_BYTES, PREVIEW_CACHE_BYTES, figure_bytes, shared_cache, tensor_bytes
from ui.source import choose_source, quick_accuracy, quick_evaluator, source_key, source_measures
from ui.state import classroom_mode, format_bytes, progress_reporter, report_error, show_figure, workspace

METHOD_LABELS = {"l1": "L1 magnitude", "ln": "L2 norm (Ln, n = 2)", "random": "random"}
# Ln ranks whole channels only (PruneConfig refuses it for single weights); for channels it is the default.
METHODS_FOR = {"unstructured": [method for method in METHODS if method != "ln"], "channel": sorted(METHODS, key=lambda method: method != "ln")}
HEATMAP_COLUMNS = 400  # wide layers show every k-th column, keeping each redraw light
RUN_LABEL = "Prune, fine-tune and save"


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_layers(key: str, granularity: str, _source: ModelSource) -> list[str]:
    return source_layers(_source, granularity)


@st.cache_resource(max_entries=8, show_spinner="Tracing which layers share channels…")
def cached_groups(key: str, _source: ModelSource) -> ChannelGroups:
    """The source's coupled channel groups: one dependency graph and one traced pass per model, not per slider move."""
    return coupled_groups(_source.model, _source.example_input(), _source.architecture)


# A setting's preview and its weight charts, shared by every session (a class moves the same slider)
# and bounded by the bytes they hold (ui/shared_cache.py).
PREVIEWS = shared_cache("pruning previews", PREVIEW_CACHE_BYTES, sizeof=tensor_bytes)
WEIGHT_FIGURES = shared_cache("pruning weight figures", FIGURE_CACHE_BYTES, sizeof=figure_bytes)


def cached_preview(key: str, config_json: str, source: ModelSource, config: PruneConfig, evaluator: QuickEvaluator) -> tuple[PrunedModels, PruneSnapshot]:
    return PREVIEWS.get_or_make((key, config_json), lambda: preview_pruning(source, config, evaluator))


@st.cache_resource(max_entries=16, show_spinner="Running both models layer by layer…")
def cached_preview_layer_errors(key: str, config_json: str, _source: ModelSource, _pruned: PrunedModels) -> LayerErrorReport:
    return layer_errors_against_source(_source, pruned_preview_package(_source, _pruned), "this setting")


def cached_weight_figures(key: str, config_json: str, layers: tuple[str, ...], source: ModelSource, pruned: PrunedModels) -> tuple[go.Figure | None, go.Figure]:
    """The Weights tab's heatmaps (None when no layer is chosen) and histogram for a setting: made
    once, then shared by every session that shows that setting."""

    def make() -> tuple[go.Figure | None, go.Figure]:
        heatmaps = weight_heatmaps_figure([weight_view(pruned.masked, layer) for layer in layers], max_columns=HEATMAP_COLUMNS) if layers else None
        return heatmaps, weight_histogram_figure(all_weights(source.model), all_weights(pruned.masked))

    return WEIGHT_FIGURES.get_or_make((key, config_json, layers), make)


def config_json(config: PruneConfig) -> str:
    """The masks a setting makes (the recovery schedule left out): a preview's and a measurement's cache key."""
    return json.dumps(config.pruning_only().as_dict(), sort_keys=True)


def curve_key(source: ModelSource, config: PruneConfig) -> str:
    """Which accuracy-vs-sparsity curve a setting belongs to: the source and everything but the amounts."""
    return source_key(source) + config_json(replace(config, amount=0.0, layer_amounts=()))


def choice_index(option_spec, options: list) -> int:
    return options.index(option_spec.default) if option_spec.default in options else 0


def choice_radio(container, label: str, field: str, labels: dict[str, str]) -> str:
    """PruneConfig's choice option `field` as a horizontal radio (key prune_<field>), starting at
    the option's default, each choice shown as labels[choice]."""
    option_spec = spec(PruneConfig, field)
    choices = list(option_spec.choices)
    return container.radio(label, choices, index=choice_index(option_spec, choices), key=f"prune_{field}", format_func=labels.get, horizontal=True)


def session_dict(name: str) -> dict:
    return st.session_state.setdefault(name, {})


def choose_config(source: ModelSource) -> PruneConfig:
    """The masks to preview (fine-tuning is chosen in the run section); every range and default from PruneConfig's options."""
    left, middle, right = st.columns(3)
    granularity = choice_radio(left, "What to prune", "granularity", {"unstructured": "single weights (unstructured)", "channel": "whole channels (structured)"})
    methods = METHODS_FOR[granularity]
    method = left.selectbox(
        "Ranking",
        methods,
        index=choice_index(spec(PruneConfig, "method"), methods) if granularity == "unstructured" else 0,
        key=f"prune_method_{granularity}",
        format_func=METHOD_LABELS.get,
        help="Which weights (or channels) go first: the smallest in magnitude, or random ones as a control",
    )
    scope = choice_radio(middle, "Scope", "scope", {"layer": "each layer by the amount", "global": "one threshold across layers"})
    available = cached_layers(source_key(source), granularity, source)
    layers = middle.multiselect("Layers", available, default=available, key=f"prune_layers_{granularity}")
    amount_spec, step = spec(PruneConfig, "amount"), 0.01
    top = amount_spec.maximum if amount_spec.maximum is not None else round(amount_spec.below - step, 2)  # [0, 1): the largest step below 1
    amount = right.slider("Amount to prune", float(amount_spec.minimum), float(top), float(amount_spec.default), step, key="prune_amount", format="%.2f", help=amount_spec.help)
    remove = (
        right.checkbox("Physically remove pruned channels", key="prune_remove", help="Cut the pruned channels out (Torch-Pruning's dependency graph shrinks every layer that reads them)")
        if granularity == "channel"
        else False
    )
    layer_amounts = session_dict("prune_layer_amounts").get(granularity, {}) if scope == "layer" else {}
    if layer_amounts:
        right.info("Per-layer amounts from the sensitivity scan: " + ", ".join(f"{name} {amount:.0%}" for name, amount in layer_amounts.items()))
        if right.button("Back to one amount for all layers", key="prune_clear_scan_amounts"):
            session_dict("prune_layer_amounts").pop(granularity, None)
            st.rerun()
    selected = None if set(layers) == set(available) else tuple(layers)
    return PruneConfig(
        method=method, granularity=granularity, amount=float(amount), scope=scope, layers=selected, layer_amounts=tuple(sorted(layer_amounts.items())), remove=bool(remove), seed=source.seed
    )


def show_metrics(source: ModelSource, snapshot: PruneSnapshot, eval_accuracy_before: float) -> None:
    before = source_measures(source)
    columns = st.columns(7)
    columns[0].metric(f"Accuracy ({snapshot.eval_images:,} test images)", f"{snapshot.accuracy:.1%}", delta_or_none(100 * (snapshot.accuracy - eval_accuracy_before), "{:+.1f} points"))
    columns[1].metric("Zero weights", f"{snapshot.sparsity:.1%}")
    columns[2].metric("Parameters", f"{snapshot.params:,}", delta_or_none(snapshot.params - before["params"], "{:+,}"), delta_color="inverse")
    columns[3].metric("MACs per image", f"{snapshot.macs / 1e6:.2f} M", delta_or_none((snapshot.macs - before["macs"]) / 1e6, "{:+.2f} M"), delta_color="inverse")
    columns[4].metric("Dense file", format_bytes(snapshot.size_bytes_dense), help="fp32 safetensors: a zero costs 4 bytes like any other number")
    columns[5].metric("Sparse encoding", format_bytes(snapshot.size_bytes_sparse), help="each tensor as dense, bitmask + nonzeros, or CSR, whichever is smallest; measured from the tensors")
    columns[6].metric("gzip of the file", format_bytes(snapshot.size_bytes_gzip))


def weights_tab(source: ModelSource, pruned: PrunedModels, config: PruneConfig) -> None:
    all_layers = unstructured_layers(pruned.masked)
    drawn = st.multiselect("Layers to draw", all_layers, default=all_layers[:6], key="prune_heatmap_layers")
    st.caption("Colour is |weight|; pruned weights are empty (white). A removed filter is an empty row; the next layer loses the matching input columns.")
    heatmaps, histogram = cached_weight_figures(source_key(source), config_json(config), tuple(drawn), source, pruned)
    if heatmaps is not None:
        show_figure(heatmaps, key="prune_heatmaps")
    show_figure(histogram, key="prune_histogram")


def coupled_groups_tab(source: ModelSource, pruned: PrunedModels, config: PruneConfig) -> None:
    """Which layers lose the same channels, and why: the source's groups, with what this setting removes from each."""
    if config.granularity != "channel":
        st.caption("Single weights are pruned one by one, so no layer's pruning ties another's. Choose **whole channels (structured)** to see which layers lose the same channels, and why.")
        return
    groups = cached_groups(source_key(source), source)
    coupled_only = st.checkbox("Only the groups that tie layers together", key="prune_groups_coupled_only", disabled=not groups.coupled)
    figure = WEIGHT_FIGURES.get_or_make((source_key(source), config_json(config), "coupled groups", coupled_only), lambda: coupled_groups_figure(groups.after(pruned.pruned_channels), coupled_only))
    show_figure(figure, key="prune_groups")
    if groups.coupled:
        st.caption(
            "Each column is a group of channels that pruning removes together: blue layers lose the same output channels, orange ones the input channels that read them, and the label says how many went. "
            "A residual add ties the outputs it sums (a column with several blue cells), a depthwise conv ties its input to its output, an attention loses whole heads; hover a cell for the layer that ties it."
        )
    else:
        st.caption(
            f"No layers of {source.architecture} are coupled: each group is one layer's output channels (blue) and the input channels of the layer that reads them (orange). "
            "Networks with residual adds (resnet18) or depthwise convs (MobileNet) tie several layers into one group, which must lose the same channels."
        )


def size_speed_tab(source: ModelSource, pruned: PrunedModels, snapshot: PruneSnapshot, config: PruneConfig) -> None:
    before = source_measures(source)
    setting = source_key(source) + config_json(config)
    measured: tuple[dict[str, LatencyFigures], str] | None = session_dict("prune_latency").get(setting)
    batch = throughput_batch_size(source.dataset.image_size)
    if st.button(f"Measure latency (1 and {batch} images)", key="prune_measure_latency"):
        models = {"source": source.model, "masked": pruned.masked}
        if pruned.removed is not None:
            models["physically smaller"] = pruned.removed
        with st.spinner("Timing each model, interleaved…"):
            measured = measure_latencies(models, source.example_input())
        session_dict("prune_latency")[setting] = measured
    figures = measured[0] if measured else {}
    sizes = {
        "dense before": before["size_bytes"],
        "dense after": snapshot.size_bytes_dense,
        "bitmask": snapshot.size_bytes_bitmask,
        "CSR": snapshot.size_bytes_csr,
        "sparse (best)": snapshot.size_bytes_sparse,
        "gzip": snapshot.size_bytes_gzip,
    }
    show_figure(size_speed_figure(sizes, {name: figure.throughput_ms for name, figure in figures.items()} or None, batch), key="prune_size_speed")
    rows = [{"measure": name, "value": format_bytes(value), "vs dense before": f"{value / before['size_bytes']:.0%}"} for name, value in sizes.items()]
    rows += [
        {"measure": "parameters", "value": f"{snapshot.params:,}", "vs dense before": f"{snapshot.params / before['params']:.0%}"},
        {"measure": "nonzero parameters", "value": f"{snapshot.nonzero_params:,}", "vs dense before": f"{snapshot.nonzero_params / before['params']:.0%}"},
        {"measure": "MACs per image", "value": f"{snapshot.macs:,}", "vs dense before": f"{snapshot.macs / before['macs']:.0%}"},
    ]
    for name, figure in figures.items():
        reference = figures["source"]
        rows.append({"measure": f"latency, {name}, 1 image", "value": f"{figure.single_ms:.3f} ms", "vs dense before": f"{figure.single_ms / reference.single_ms:.0%}"})
        rows.append(
            {"measure": f"latency, {name}, batch {figure.throughput_batch_size}", "value": f"{figure.throughput_ms:.2f} ms", "vs dense before": f"{figure.throughput_ms / reference.throughput_ms:.0%}"}
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if measured:
        st.caption(figures_caption(*measured))
    st.caption("A masked zero is still stored and still multiplied: only a sparse encoding shrinks the file, and only physically removed channels cut MACs and time.")


def accuracy_tab(source: ModelSource, snapshot: PruneSnapshot, config: PruneConfig, evaluator: QuickEvaluator, eval_accuracy_before: float) -> None:
    key = curve_key(source, config)
    if st.button("Trace the one-shot curve (0–90%)", key="prune_sweep"):
        try:
            session_dict("prune_sweeps")[key] = accuracy_sweep(source, config, evaluator, progress=progress_reporter("One-shot sweep"))
        except UserError as error:
            report_error(error)
    oneshot = session_dict("prune_sweeps").get(key, [])
    finetuned = session_dict("prune_finetuned").get(key, [])
    show_figure(accuracy_vs_sparsity_figure(oneshot, finetuned, eval_accuracy_before, current=(snapshot.sparsity, snapshot.accuracy)), key="prune_accuracy_curve")
    if finetuned:
        st.caption(f"Fine-tuned points are measured on the full test set; the one-shot curve on the {evaluator.images:,}-image subset.")


def sensitivity_tab(source: ModelSource, config: PruneConfig, evaluator: QuickEvaluator) -> None:
    scans = session_dict("prune_scans")
    scan_key = f"{source_key(source)}:{config.granularity}:{config.method}"
    if st.button("Run the sensitivity scan", key="prune_scan", help="Each layer alone, pruned 0–90% in 10% steps"):
        try:
            scans[scan_key] = sensitivity_scan(source, evaluator, config.granularity, config.method, progress=progress_reporter("Sensitivity scan"))
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


def what_changed_tab(source: ModelSource, pruned: PrunedModels, config: PruneConfig) -> None:
    """Layer by layer for the slider's setting (no fine-tuning); example by example for the last saved run."""
    st.subheader("This setting, layer by layer (before fine-tuning)")
    try:
        report, reason = cached_preview_layer_errors(source_key(source), config_json(config), source, pruned), ""
    except UserError as error:
        report, reason = None, str(error)
    show_layer_errors(report, reason, key="prune_preview_layers")
    st.subheader("The last saved run, example by example")
    # A run made in this page (TechniqueResult) or one a queued job recorded (PruneRunFigures): both name their run.
    result: TechniqueResult | PruneRunFigures | None = st.session_state.get("prune_last_result")
    if result is None:
        st.caption("Nothing saved yet: press **Prune, fine-tune and save** below to compare the fine-tuned model with its source on the whole test set.")
        return
    comparison = run_diff(result.run_id)
    if comparison is not None:
        show_run_diff(comparison, key="prune_diff")


def number_bounds(name: str) -> dict:
    """min, max and default of an integer PruneConfig option, for st.number_input."""
    option_spec = spec(PruneConfig, name)
    return {"min_value": int(option_spec.minimum), "max_value": int(option_spec.maximum), "value": int(option_spec.default)}


def run_section(source: ModelSource, config: PruneConfig) -> None:
    st.subheader("Fine-tune and save")
    left, middle, right = st.columns([1, 1, 2])
    epochs = left.number_input("Fine-tuning epochs", **number_bounds("finetune_epochs"), key="prune_finetune_epochs", help="Masks stay fixed: pruned weights stay zero (per step when iterative)")
    steps = middle.number_input("Iterative steps", **number_bounds("iterative_steps"), key="prune_iterative_steps", help="1 = one-shot. N: prune a little, fine-tune, repeat up to the amount")
    right.write("")
    run_config = replace(config, finetune_epochs=int(epochs), iterative_steps=int(steps))
    if classroom_mode():
        with right:
            shown = queued_run_button(source, config, run_config)
        if not shown:
            return
    elif right.button(RUN_LABEL, key="prune_run", type="primary"):
        try:
            result = prune(source, run_config, RunContext(workspace(), progress_reporter("Pruning run")))
            record(result, workspace())
        except UserError as error:
            report_error(error)
            return
        st.session_state["prune_last_result"] = result
        remember_point(source, config, run_figures(result))
    last = st.session_state.get("prune_last_result")
    if last is not None:
        show_result(last if isinstance(last, PruneRunFigures) else run_figures(last))


def queued_run_button(source: ModelSource, config: PruneConfig, run_config: PruneConfig) -> bool:
    """A classroom server prunes and fine-tunes in the job queue, once for every student with these
    settings; when the job is done its recorded run is read back from the history and shown as after
    an in-page run. False when the settings cannot run or the run it recorded is gone (one line says so)."""
    try:
        run_config.validate()  # refused here, as the in-page run would be, not after a place in the queue
    except UserError as error:
        report_error(error)
        return False
    job_config = {"source": source_config(source), "prune": run_config.as_dict(), "seed": source.seed}
    result = queued_job("prune", job_config, str(workspace().root), RUN_LABEL, "prune", button_key="prune_run", work="fine-tuning")
    last = st.session_state.get("prune_last_result")
    if result is None or (last is not None and last.run_id == result["run_id"]):
        return True
    try:
        figures = recorded_figures(workspace(), result["run_id"])
    except UserError as error:
        st.warning(str(error))
        return False
    st.session_state["prune_last_result"] = figures
    remember_point(source, config, figures)
    return True


def remember_point(source: ModelSource, config: PruneConfig, figures: PruneRunFigures) -> None:
    """A saved run's (sparsity, accuracy) on the accuracy-vs-sparsity chart, once per run."""
    key = curve_key(source, config)
    seen = session_dict("prune_finetuned_runs").setdefault(key, set())
    if figures.run_id not in seen:
        seen.add(figures.run_id)
        session_dict("prune_finetuned").setdefault(key, []).append((figures.sparsity, figures.headline.accuracy_after))


def show_result(figures: PruneRunFigures) -> None:
    headline = figures.headline
    st.success(f"Saved as run {figures.run_id}: {figures.artifact_path}")
    columns = st.columns(5)
    columns[0].metric("Accuracy before", f"{headline.accuracy_before:.1%}")
    columns[1].metric("One-shot", f"{figures.accuracy_oneshot:.1%}")
    columns[2].metric("After fine-tuning", f"{headline.accuracy_after:.1%}", delta_or_none(headline.accuracy_change_points, "{:+.1f} points"))
    columns[3].metric("Parameters", f"{headline.params_after:,}", f"{headline.params_after / headline.params_before:.0%} of before", delta_color="off")
    columns[4].metric(
        "Latency (1 image)",
        f"{headline.latency_ms_single_after:.3f} ms",
        f"{headline.latency_ms_single_before / max(headline.latency_ms_single_after, 1e-9):.2f}× vs the source",
        delta_color="off",
        help=f"batch {headline.latency_batch_size}: {headline.latency_ms_after:.2f} ms, {headline.speedup:.2f}× vs the source",
    )
    st.caption(
        f"Started from run #{figures.source_run_id} · {headline.eval_images:,} test images · latency at {protocol_text(headline.latency_runtime, headline.latency_threads, headline.latency_batch_size)} · "
        f"masked model {figures.latency_ms_masked:.2f} ms at batch {headline.latency_batch_size}"
    )
    if figures.finetune_history:
        show_figure(learning_curve_figure(figures.finetune_history, "Fine-tuning"), key="prune_finetune_curve")


st.title("✂️ Pruning")
st.markdown(
    "Zeroing weights does not shrink a dense file, and does not make a dense model faster. "
    "Here you see **where** the zeros go (masks), what they cost **stored sparsely**, and what "
    "**physically removing** whole channels buys in parameters, MACs and measured time."
)
share.apply_page_link("pruning", methods=METHODS_FOR)  # a share link's settings, before the widgets
show_opened_run()
source = choose_source("prune_source")
evaluator = quick_evaluator(source)
eval_accuracy_before = quick_accuracy(source, evaluator)
config = choose_config(source)
share.write_page_link("pruning", config)  # the current settings back into the URL
try:
    pruned, snapshot = cached_preview(source_key(source), config_json(config), source, config, evaluator)
except UserError as error:
    report_error(error)
    pruned = snapshot = None
TABS = ["Weights", "Per layer", "Size & speed", "Architecture", "Coupled groups", "Accuracy vs sparsity", "Sensitivity", "What changed"]
if snapshot is not None:
    show_metrics(source, snapshot, eval_accuracy_before)
    # Lazy tabs: only the open one is drawn, so a slider move redraws one tab, not eight.
    weights, per_layer, size_speed, architecture, groups_tab, accuracy, sensitivity, what_changed = st.tabs(TABS, key="prune_tab", on_change="rerun")
    if weights.open:
        with weights:
            weights_tab(source, pruned, config)
    if per_layer.open:
        with per_layer:
            show_figure(sparsity_bars_figure(snapshot.sparsity_per_layer, snapshot.sparsity), key="prune_sparsity_bars")
    if size_speed.open:
        with size_speed:
            size_speed_tab(source, pruned, snapshot, config)
    if architecture.open:
        with architecture:
            final = pruned.removed if pruned.removed is not None else pruned.masked
            st.dataframe(pd.DataFrame(architecture_rows(layer_shapes(source.model), layer_shapes(final))), hide_index=True, width="stretch")
            if pruned.removed is None:
                st.caption("Masks keep every shape: tick **Physically remove pruned channels** (channel pruning) to see the network shrink.")
    if groups_tab.open:
        with groups_tab:
            coupled_groups_tab(source, pruned, config)
    if accuracy.open:
        with accuracy:
            accuracy_tab(source, snapshot, config, evaluator, eval_accuracy_before)
    if sensitivity.open:
        with sensitivity:
            sensitivity_tab(source, config, evaluator)
    run_section(source, config)
    # Filled after the run section, so a run saved on this very rerun is already the one compared.
    if what_changed.open:
        with what_changed:
            what_changed_tab(source, pruned, config)

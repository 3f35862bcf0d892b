"""Compare & report: every recorded run side by side, the Pareto front, lineage, two runs example by example, the combined
pipeline, and the exports for a presentation (HTML report, CSV, model zip, PNG).

The run table reads the SQLite history on each rerun (milliseconds for hundreds of runs); charts
are drawn only in the open tab; heavy exports are built when their download button is clicked.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from core.charts.compare import latency_accuracy_figure, lineage_sunburst_figure, lineage_tree_figure, pipeline_waterfall_figure, size_accuracy_figure
from core.charts.png import figure_png, png_export_status
from core.compare.lineage import lineage_nodes
from core.compare.runs import WaterfallStep, comparison_table, table_records, waterfall_steps
from core.compare.selection import architecture_choices, with_architectures
from core.contract.artifact import evaluate_package, load_model_zip, write_model_zip
from core.contract.context import RunContext
from core.contract.options import OptionSpec, spec
from core.contract.record import record
from core.contract.run_models import package_for_run
from core.contract.run_summary import RunSummary, architecture_label, summarize
from core.distillation import available_teachers
from core.distillation.config import DistillConfig
from core.foundation import history
from core.foundation.errors import UserError
from core.pipeline.config import PRESETS, STEP_ORDER, build_pipeline_config, pipeline_options
from core.pipeline.run import run_pipeline
from core.pruning.config import PruneConfig
from core.quantization.config import MODES, SimulateConfig
from core.report.html import build_report, example_sections, runs_csv, runtime_sections
from ui import share
from ui.deploy_view import deploy_tab
from ui.diff_view import exemplars, run_diff, show_exemplars, show_run_diff
from ui.metrics import delta_or_none
from ui.opened_run import show_opened_run
from ui.source import choose_source
from ui.state import cached_baseline, format_bytes, presentation_mode, progress_reporter, report_error, show_figure, workspace
from ui.uploads import too_large, upload_label, upload_message, upload_name

TABS = ["Runs", "Charts", "Example by example", "Pipeline", "Deploy", "Export & import"]
CUSTOM = "custom"
# Pipeline widgets by option dest (as the CLI's flags name them), each with its session key and the
# technique config option it sets: its default, range and choices are the widget's.
PIPELINE_OPTIONS: dict[str, tuple[str, OptionSpec]] = {
    "teacher": ("compare_teacher", spec(DistillConfig, "teacher")),
    "student": ("compare_student", spec(DistillConfig, "student")),
    "temperature": ("compare_temperature", spec(DistillConfig, "temperature")),
    "alpha": ("compare_alpha", spec(DistillConfig, "alpha")),
    "method": ("compare_method", spec(PruneConfig, "method")),
    "granularity": ("compare_granularity", spec(PruneConfig, "granularity")),
    "amount": ("compare_amount", spec(PruneConfig, "amount")),
    "scope": ("compare_scope", spec(PruneConfig, "scope")),
    "remove": ("compare_remove", spec(PruneConfig, "remove")),
    "finetune_epochs": ("compare_finetune_epochs", spec(PruneConfig, "finetune_epochs")),
    "iterative_steps": ("compare_iterative_steps", spec(PruneConfig, "iterative_steps")),
    "bits": ("compare_bits", spec(SimulateConfig, "bits")),
}
PIPELINE_KEYS = {**{dest: key for dest, (key, _) in PIPELINE_OPTIONS.items()}, "mode": "compare_mode"}
DEFAULT_MODE = "static"  # the quantize step's mode until a preset or the user picks one
AMOUNT_STEP = 0.05


def db():
    return workspace().history_db


# ------------------------------------------------------------------------------------ the table


FILTERS = (("dataset", "Dataset"), ("architecture", "Architecture"), ("technique", "Technique"))
KEPT_FILTERS = "compare_filters_kept"  # each filter's last selection, for when the page comes back after another page


def filtered_runs(all_runs: dict[int, RunSummary]) -> list[RunSummary]:
    """The history through the three filters (an empty filter means any). The Architecture filter
    offers the registry's names the runs recorded, in the registry's order, shown with their group."""
    columns = st.columns(3)
    kept = st.session_state.setdefault(KEPT_FILTERS, {})
    chosen = {}
    for column, (name, label) in zip(columns, FILTERS):
        values = architecture_choices(list(all_runs.values())) if name == "architecture" else sorted({getattr(run, name) for run in all_runs.values()})
        key = f"compare_filter_{name}"
        # A rerun keeps the widget's own state; after a page switch Streamlit has dropped it, so the kept copy comes back.
        current = st.session_state[key] if key in st.session_state else kept.get(name, [])
        st.session_state[key] = [value for value in current if value in values]  # a deleted run's value goes
        format_func = architecture_label if name == "architecture" else str
        chosen[name] = kept[name] = column.multiselect(label, values, key=key, placeholder="any", format_func=format_func)
    runs = [run for run in all_runs.values() if all(not values or getattr(run, name) in values for name, values in chosen.items() if name != "architecture")]
    return with_architectures(runs, chosen["architecture"])


def reference_candidates(all_runs: dict[int, RunSummary]) -> tuple[list[int], int | None]:
    """The runs that can be the reference (pinned first, then the trainings, newest first) and the
    default one: the sidebar's baseline when it is among them. ([], None) when none can."""
    baseline = cached_baseline()
    candidates = [run for run in all_runs.values() if run.technique == "train" or run.pinned]
    ids = [run.run_id for run in sorted(candidates, key=lambda run: (not run.pinned, -run.run_id))]
    if not ids:
        return [], None
    return ids, baseline.run_id if baseline is not None and baseline.run_id in ids else ids[0]


def reference_choice(all_runs: dict[int, RunSummary], ids: list[int], default_id: int | None) -> RunSummary | None:
    """The run everything is compared with, one of `ids` (reference_candidates): `default_id`, the
    sidebar's baseline, unless another is chosen."""
    baseline = cached_baseline()
    if not ids:
        return None
    if st.session_state.get("compare_reference") not in ids:
        st.session_state["compare_reference"] = default_id
    chosen = st.selectbox("Compare with (reference)", ids, key="compare_reference", format_func=lambda run_id: _reference_label(all_runs[run_id], baseline.run_id if baseline else None))
    return all_runs[chosen]


def _reference_label(run: RunSummary, baseline_id: int | None) -> str:
    tags = [tag for tag, on in (("sidebar baseline", run.run_id == baseline_id), ("📌 pinned", run.pinned)) if on]
    accuracy = "" if run.accuracy is None else f", {100 * run.accuracy:.1f}%"
    return f"#{run.run_id} {run.technique} · {run.model} on {run.dataset}{accuracy}" + (f" ({', '.join(tags)})" if tags else "")


def runs_frame(runs: list[RunSummary], reference: RunSummary) -> pd.DataFrame:
    records = table_records(comparison_table(runs, reference))
    for record_, run in zip(records, runs):  # the latency protocol's single image and runtime, beside the batch figure
        record_["latency_ms_single"] = None if run.latency_ms_single is None else round(run.latency_ms_single, 3)
        record_["latency_runtime"] = run.latency_runtime or None
    frame = pd.DataFrame(
        records,
        columns=[
            "run_id",
            "created",
            "technique",
            "dataset",
            "architecture",
            "parent_id",
            "pinned",
            "accuracy_percent",
            "accuracy_change_points",
            "size_bytes",
            "compression_ratio",
            "size_measure",
            "latency_ms_single",
            "latency_ms",
            "latency_batch_size",
            "latency_runtime",
            "speedup",
            "params",
            "nonzero_params",
            "macs",
            "sweep_id",
            "params_json",
        ],
    )
    return frame


TABLE_CONFIG = {
    "run_id": st.column_config.NumberColumn("run", format="#%d"),
    "architecture": st.column_config.TextColumn("architecture", help="the registry name of the run's model and its group (the lab's own, torchvision), as the run recorded it"),
    "parent_id": st.column_config.NumberColumn("parent", format="#%d"),
    "pinned": st.column_config.CheckboxColumn("📌"),
    "accuracy_percent": st.column_config.NumberColumn("accuracy %", format="%.2f"),
    "accuracy_change_points": st.column_config.NumberColumn("Δ points", format="%+.2f"),
    "size_bytes": st.column_config.NumberColumn("size (bytes)", format="%d"),
    "compression_ratio": st.column_config.NumberColumn("× smaller", format="%.1f×"),
    "size_measure": st.column_config.TextColumn("size measure"),
    "latency_ms_single": st.column_config.NumberColumn("1 image ms", format="%.3g", help="one image, one forward pass"),
    "latency_ms": st.column_config.NumberColumn("batch ms", format="%.3g", help="one forward pass over the batch"),
    "latency_batch_size": st.column_config.NumberColumn("batch"),
    "latency_runtime": st.column_config.TextColumn("runtime", help="what the latency was timed in: torch eager, or torch.compile (inductor) for int8 kernels"),
    "speedup": st.column_config.NumberColumn("speedup", format="%.2f×"),
    "sweep_id": st.column_config.TextColumn("sweep", help="the sweep this run was a trial of (the Explore page, python -m core sweep)"),
    "params_json": st.column_config.TextColumn("parameters", width="large"),
}


def runs_tab(runs: list[RunSummary], reference: RunSummary) -> None:
    st.caption(
        "Click a column header to sort. Size is each run's smallest honest artifact (real bytes); × smaller and speedup are against the reference, speedup only where timings are like for like."
    )
    st.dataframe(runs_frame(runs, reference), hide_index=True, width="stretch", column_config=TABLE_CONFIG, key="compare_table")
    selected = st.session_state.get("compare_selected", [])
    left, middle, right = st.columns(3)
    # Callbacks run before the next script run, so the table and the selection redraw already changed.
    left.button("📌 Pin as reference", key="compare_pin", disabled=not selected, on_click=pin_selected, args=(True,), help="Pinned runs are marked on every chart and can be chosen as the reference")
    middle.button("Unpin", key="compare_unpin", disabled=not selected, on_click=pin_selected, args=(False,))
    right.button(
        "🗑️ Delete from history",
        key="compare_delete",
        disabled=not selected,
        on_click=delete_selected,
        help="Removes the rows (their children move up to the deleted run's parent); saved model files stay on disk",
    )


def pin_selected(pinned: bool) -> None:
    for run_id in st.session_state.get("compare_selected", []):
        history.set_pinned(db(), run_id, pinned)


def delete_selected() -> None:
    for run_id in st.session_state.get("compare_selected", []):
        history.delete_run(db(), run_id)
    st.session_state["compare_selected"] = []


# ----------------------------------------------------------------------------------- the charts


def charts_tab(runs: list[RunSummary], reference: RunSummary, all_runs: dict[int, RunSummary]) -> None:
    shown = runs if any(run.run_id == reference.run_id for run in runs) else [reference, *runs]
    # Projected, each chart gets the full width; at a desk they sit side by side.
    left, right = (st.container(), st.container()) if presentation_mode() else st.columns(2)
    with left:
        show_figure(size_accuracy_figure(shown, reference.run_id), key="compare_size_chart")
    with right:
        show_figure(latency_accuracy_figure(shown, reference.run_id), key="compare_latency_chart")
    style = st.radio("Lineage as", ["Tree", "Sunburst"], horizontal=True, key="compare_lineage_style")
    # Lineage shows each chosen run with its ancestors, so a chain is never cut in the middle.
    with_ancestors = {run.run_id: run for run in shown}
    for run in list(with_ancestors.values()):
        parent = run.parent_id
        while parent is not None and parent in all_runs and parent not in with_ancestors:
            with_ancestors[parent] = all_runs[parent]
            parent = all_runs[parent].parent_id
    nodes = lineage_nodes(list(with_ancestors.values()))
    show_figure(lineage_tree_figure(nodes, reference.run_id) if style == "Tree" else lineage_sunburst_figure(nodes), key="compare_lineage_chart")
    pipelines = [run for run in shown if waterfall_steps(run)]
    if pipelines:
        latest = max(pipelines, key=lambda run: run.run_id)
        show_figure(pipeline_waterfall_figure(waterfall_steps(latest), title=f"Pipeline {latest.label}: size after each step"), key="compare_waterfall_history")


# ---------------------------------------------------------------------------- example by example


def default_run_a(all_runs: dict[int, RunSummary], reference: RunSummary) -> int:
    """The first selected run, else the newest run that is not a baseline (else the newest run)."""
    selected = st.session_state.get("compare_selected", [])
    if selected:
        return selected[0]
    compressed = [run_id for run_id, run in all_runs.items() if run.technique != "train" and run_id != reference.run_id]
    return max(compressed or all_runs)


def default_run_b(all_runs: dict[int, RunSummary], run_a: int, reference: RunSummary) -> int:
    """Run A's parent (what it was made from), else the reference."""
    parent = all_runs[run_a].parent_id
    return parent if parent in all_runs else reference.run_id


def reset_run_b(all_runs: dict[int, RunSummary], reference: RunSummary) -> None:
    # A new run A is compared with its own parent until the user picks another B.
    st.session_state["compare_diff_b"] = default_run_b(all_runs, st.session_state["compare_diff_a"], reference)


def examples_tab(all_runs: dict[int, RunSummary], reference: RunSummary) -> None:
    ids = sorted(all_runs, reverse=True)  # newest first
    if st.session_state.get("compare_diff_a") not in all_runs:
        st.session_state["compare_diff_a"] = default_run_a(all_runs, reference)
    if st.session_state.get("compare_diff_b") not in all_runs:
        st.session_state["compare_diff_b"] = default_run_b(all_runs, st.session_state["compare_diff_a"], reference)
    st.caption("Two runs on every test image: how often they agree, who got which image right, which classes lost, and the images whose prediction flipped.")
    left, right = st.columns(2)
    run_a = left.selectbox("Run A (the model under study)", ids, key="compare_diff_a", format_func=lambda run_id: all_runs[run_id].label, on_change=reset_run_b, args=(all_runs, reference))
    run_b = right.selectbox("Run B (compared with; default: A's parent)", ids, key="compare_diff_b", format_func=lambda run_id: all_runs[run_id].label)
    comparison = run_diff(run_a, run_b)
    if comparison is not None:
        show_run_diff(comparison, key="compare_diff")
    exemplars_section(all_runs, reference)


def exemplars_section(all_runs: dict[int, RunSummary], reference: RunSummary) -> None:
    st.subheader("Compression-identified exemplars")
    st.caption("Test images a baseline gets right and most of its compressed descendants get wrong (Hooker et al. 2019): where compression hurts, whatever the technique.")
    baselines = sorted((run_id for run_id, run in all_runs.items() if run.technique == "train"), reverse=True)
    if not baselines:
        st.info("No baseline (train run) in the history yet.")
        return
    if st.session_state.get("compare_exemplar_baseline") not in baselines:
        st.session_state["compare_exemplar_baseline"] = reference.run_id if reference.run_id in baselines else baselines[0]
    baseline_id = st.selectbox("Baseline", baselines, key="compare_exemplar_baseline", format_func=lambda run_id: all_runs[run_id].label)
    report = exemplars(baseline_id)
    if report is not None:
        show_exemplars(report, key="compare_exemplars")


# --------------------------------------------------------------------------------- the pipeline


def option_defaults() -> dict:
    """Each pipeline widget's value before a preset: its config option's default."""
    return {**{dest: option_spec.default for dest, (_, option_spec) in PIPELINE_OPTIONS.items()}, "mode": DEFAULT_MODE}


def apply_preset() -> None:
    """Fill the pipeline widgets with the chosen preset's settings."""
    preset = PRESETS.get(st.session_state["compare_preset"])
    options = {**option_defaults(), **(preset.options if preset else {})}
    if preset:
        st.session_state["compare_steps"] = list(options["steps"])
    for option, key in PIPELINE_KEYS.items():
        value = options.get(option)
        if value is not None:
            st.session_state[key] = value


def init_pipeline_widgets() -> None:
    if "compare_steps" in st.session_state:
        return
    st.session_state["compare_preset"] = "deep-compression"
    apply_preset()
    defaults = option_defaults()
    st.session_state.setdefault("compare_teacher", defaults["teacher"])
    st.session_state.setdefault("compare_student", defaults["student"])


def option_range(dest: str, step: float | None = None) -> dict:
    """min_value and max_value of a numeric widget from its option (an exclusive bound becomes the last step below it)."""
    option_spec = PIPELINE_OPTIONS[dest][1]
    kind = float if step is not None else int
    top = option_spec.maximum if option_spec.maximum is not None else round(option_spec.below - step, 6)
    return {"min_value": kind(option_spec.minimum), "max_value": kind(top)}


def choices(dest: str) -> list:
    return list(PIPELINE_OPTIONS[dest][1].choices)


def pipeline_tab(source) -> None:
    init_pipeline_widgets()
    st.selectbox("Preset", [*PRESETS, CUSTOM], key="compare_preset", on_change=apply_preset, format_func=lambda name: PRESETS[name].title if name in PRESETS else "Custom")
    if st.session_state["compare_preset"] in PRESETS:
        st.caption(PRESETS[st.session_state["compare_preset"]].description)
    steps = st.multiselect("Steps (they run in this order)", list(STEP_ORDER), key="compare_steps")
    steps = [step for step in STEP_ORDER if step in steps]
    columns = st.columns(3)
    with columns[0].container(border=True):
        st.markdown("**Distill**" + ("" if "distill" in steps else " (off)"))
        teachers = available_teachers()
        if st.session_state.get("compare_teacher") not in teachers:
            st.session_state["compare_teacher"] = teachers[0]
        st.selectbox("Teacher", teachers, key="compare_teacher", disabled="distill" not in steps)
        st.selectbox("Student", choices("student"), key="compare_student", disabled="distill" not in steps)
        st.slider("Temperature T", **option_range("temperature", 0.05), step=0.05, key="compare_temperature", disabled="distill" not in steps)
        st.slider("Weight of the teacher (alpha)", **option_range("alpha", 0.05), step=0.05, key="compare_alpha", disabled="distill" not in steps)
    with columns[1].container(border=True):
        st.markdown("**Prune**" + ("" if "prune" in steps else " (off)"))
        st.selectbox("Granularity", choices("granularity"), key="compare_granularity", disabled="prune" not in steps)
        st.selectbox("Method", choices("method"), key="compare_method", disabled="prune" not in steps)
        st.slider("Amount", **option_range("amount", AMOUNT_STEP), step=AMOUNT_STEP, key="compare_amount", disabled="prune" not in steps)
        st.selectbox("Scope", choices("scope"), key="compare_scope", disabled="prune" not in steps)
        st.checkbox("Physically remove pruned channels", key="compare_remove", disabled="prune" not in steps)
        st.number_input("Fine-tuning epochs", **option_range("finetune_epochs"), key="compare_finetune_epochs", disabled="prune" not in steps)
        st.number_input("Iterative steps", **option_range("iterative_steps"), key="compare_iterative_steps", disabled="prune" not in steps)
    with columns[2].container(border=True):
        st.markdown("**Quantize**" + ("" if "quantize" in steps else " (off)"))
        st.selectbox("Mode", list(MODES), key="compare_mode", disabled="quantize" not in steps)
        bits = option_range("bits")
        st.number_input(f"Bits (simulate/qat: {bits['min_value']}-{bits['max_value']}; dynamic/static: 8)", **bits, key="compare_bits", disabled="quantize" not in steps)
        st.caption("Then the compressed encoding: int8 codes and bitmasks in safetensors, entropy-coded in the model zip.")
    if st.button("▶️ Run the pipeline", key="compare_run_pipeline", type="primary", disabled=not steps):
        given = {**{dest: st.session_state[key] for dest, key in PIPELINE_KEYS.items()}, "steps": steps}
        preset = st.session_state["compare_preset"]
        try:
            config = build_pipeline_config(pipeline_options(preset if preset in PRESETS else None, given), source.architecture, source.seed, source.device)
            result = run_pipeline(source, config, RunContext(workspace(), progress_reporter("Pipeline")))
            record(result, workspace())
            st.session_state["compare_last_pipeline"] = result.summary()
        except UserError as error:
            report_error(error)
    last = st.session_state.get("compare_last_pipeline")
    if last:
        show_pipeline_result(last)


def show_pipeline_result(summary: dict) -> None:
    columns = st.columns(4)
    columns[0].metric("Model zip", format_bytes(summary["size_bytes_after"]), f"{summary['compression_ratio']:.1f}× smaller than the fp32 file", delta_color="off")
    columns[1].metric("Accuracy (rebuilt from the zip)", f"{summary['accuracy_after']:.1%}", delta_or_none(summary["accuracy_change_points"], "{:+.2f} points"))
    if summary.get("speedup"):
        columns[2].metric(
            f"Latency (batch {summary['latency_batch_size']})",
            f"{summary['latency_ms_after']:.2f} ms",
            f"{summary['speedup']:.2f}× vs baseline {summary['latency_ms_before']:.2f} ms",
            delta_color="off",
            help=summary["latency_runtime"],
        )
    else:
        columns[2].metric("Latency", "—", help=summary["latency_runtime"])
    columns[3].metric("Run", f"#{summary['run_id']}", help=summary["artifact_path"])
    steps = [WaterfallStep(step["step"], step["size_bytes"], step["accuracy"], step["size_measure"]) for step in summary["steps"]]
    show_figure(pipeline_waterfall_figure(steps), key="compare_waterfall")


# ------------------------------------------------------------------------------- export, import


def export_tab(runs: list[RunSummary], reference: RunSummary) -> None:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    chosen_ids = [run.run_id for run in runs]
    st.markdown(f"**Report and table** of the {len(runs)} run(s) shown (select runs in the Runs tab to narrow it down).")
    left, right = st.columns(2)
    # Built on click (in a worker thread), so a large report never slows the page down.
    left.download_button(
        "⬇️ HTML report",
        data=lambda: report_html(chosen_ids, reference.run_id),
        file_name=f"model-efficiency-report-{stamp}.html",
        mime="text/html",
        key="compare_download_report",
        help="One self-contained file: plotly.js embedded once, images inline, opens offline; includes each run against the reference, example by example and layer by layer",
    )
    right.download_button("⬇️ CSV of the run table", data=runs_csv(comparison_table(runs, reference)), file_name=f"runs-{stamp}.csv", mime="text/csv", key="compare_download_csv")

    st.markdown("**Model zip** (safetensors + JSON metadata, the honest compressed artifact)")
    exportable = [run for run in runs if run.artifact_path and run.technique != "quantize"]
    if exportable:
        run_id = st.selectbox("Run", [run.run_id for run in exportable], key="compare_export_run", format_func=lambda rid: next(r.label for r in exportable if r.run_id == rid))
        st.download_button("⬇️ Model zip", data=lambda: model_zip(run_id), file_name=f"model-run-{run_id}.zip", mime="application/zip", key="compare_download_zip")
    st.caption("Quantize runs export through the pipeline (steps: quantize), whose zip records each layer's input quantization.")

    status = png_export_status()
    if status.available:
        chart = st.selectbox("PNG of a chart", ["Size vs accuracy", "Latency vs accuracy"], key="compare_png_chart")
        st.download_button(
            "⬇️ PNG", data=lambda: chart_png(chosen_ids, reference.run_id, chart), file_name=f"{chart.replace(' ', '-').lower()}-{stamp}.png", mime="image/png", key="compare_download_png"
        )
    else:
        st.info(status.reason, icon="🖼️")

    st.markdown("**Load a model zip**")
    upload = st.file_uploader(
        upload_label("Model zip exported by this app"),
        key="compare_upload",
        help="Read in memory and never saved: only its safetensors and JSON are read; anything pickled, or a member path outside the zip, is refused",
    )
    if upload is not None:
        show_uploaded(upload.getvalue(), upload.name)


def report_html(run_ids: list[int], reference_id: int) -> str:
    runs = [summarize(run) for run in history.list_runs(db(), run_ids=run_ids)]
    reference = summarize(history.get_run(db(), reference_id))
    # The same sections as `python -m core report`: each run against the reference, image by image and layer by layer,
    # and the saved runtime measurements of each run and its source (read, never measured here).
    return build_report(runs, reference, examples=example_sections(workspace(), runs, reference), runtimes=runtime_sections(workspace(), runs, reference))


def model_zip(run_id: int) -> bytes:
    run = history.get_run(db(), run_id)
    baseline = cached_baseline()
    dataset = baseline.dataset if baseline is not None and baseline.dataset.name == run.dataset else None
    return write_model_zip(package_for_run(run, workspace(), dataset))[0]


def chart_png(run_ids: list[int], reference_id: int, chart: str) -> bytes:
    runs = [summarize(run) for run in history.list_runs(db(), run_ids=run_ids)]
    builder = size_accuracy_figure if chart == "Size vs accuracy" else latency_accuracy_figure
    return figure_png(builder(runs, reference_id))


def show_uploaded(data: bytes, name: str) -> None:
    """An uploaded model zip, read in memory (nothing is written), named by its last path part as plain text."""
    refusal = too_large(len(data))
    if refusal:
        st.error(upload_message(refusal), icon="⚠️")
        return
    try:
        model, package = load_model_zip(data, upload_name(name))
    except UserError as error:
        st.error(upload_message(str(error)), icon="⚠️")
        return
    info = package.info
    columns = st.columns(3)
    columns[0].metric("Architecture", package.architecture, f"{sum(t.numel() for t in model.state_dict().values()):,} numbers", delta_color="off")
    recorded = info.get("accuracy")
    columns[1].metric("Accuracy recorded at export", "—" if recorded is None else f"{recorded:.2%}")
    baseline = cached_baseline()
    if baseline is None:
        columns[2].metric("Accuracy now", "—", help="train a baseline for this dataset in the sidebar to evaluate the model")
        return
    try:
        evaluation = evaluate_package(model, package, baseline.dataset)
    except UserError as error:  # may quote the zip's own metadata (its dataset's name)
        st.error(upload_message(str(error)), icon="⚠️")
        return
    delta = None if recorded is None else delta_or_none(100 * (evaluation.accuracy - recorded), "{:+.2f} points vs recorded")
    columns[2].metric(f"Accuracy now ({info.get('dataset')})", f"{evaluation.accuracy:.2%}", delta, delta_color="off")


# ------------------------------------------------------------------------------------ the page


st.title("Compare & report")
st.markdown("Every run you made, side by side: what it cost in **accuracy** for what it saved in **size** and **time**.")
show_opened_run()
try:
    recorded_runs = history.list_runs(db())
except UserError as error:  # e.g. runs.sqlite of a half-copied workspace
    report_error(error)
    st.stop()
all_runs = {run.id: summarize(run) for run in recorded_runs}
if not all_runs:
    st.info("No runs recorded yet. Train a baseline in the sidebar, then prune, quantize or distill it; every finished run appears here.")
    st.stop()

references, default_reference = reference_candidates(all_runs)
share.apply_page_link(
    "compare", references=references, recorded=list(all_runs), default_reference=default_reference, architectures=architecture_choices(list(all_runs.values()))
)  # a share link's reference, runs and architectures
controls = st.expander("Controls (filters, selection, reference)", expanded=False) if presentation_mode() else st.container()
with controls:
    runs = filtered_runs(all_runs)
    reference = reference_choice(all_runs, references, default_reference)
    shown_ids = {run.run_id for run in runs}
    st.session_state["compare_selected"] = [run_id for run_id in st.session_state.get("compare_selected", []) if run_id in shown_ids]
    st.multiselect(
        "Selected runs (for the buttons, the charts and the exports; none = all shown)", [run.run_id for run in runs], key="compare_selected", format_func=lambda run_id: all_runs[run_id].label
    )
selected = [run for run in runs if run.run_id in st.session_state.get("compare_selected", [])]
chosen = selected or runs
if reference is None:
    st.warning("No baseline (train run) in the history to compare with; train one in the sidebar.")
    st.stop()
share.write_page_link(
    "compare",
    reference=reference.run_id,
    selected=[run.run_id for run in selected],
    default_reference=default_reference,
    architectures=list(st.session_state.get("compare_filter_architecture", [])),
)
if not runs:
    st.info("No runs match these filters.")

runs_tab_, charts_tab_, examples_tab_, pipeline_tab_, deploy_tab_, export_tab_ = st.tabs(TABS, key="compare_tab", on_change="rerun", default="Charts" if presentation_mode() else None)
if runs_tab_.open:
    with runs_tab_:
        runs_tab(runs, reference)
if charts_tab_.open:
    with charts_tab_:
        charts_tab(chosen, reference, all_runs)
if examples_tab_.open:
    with examples_tab_:
        examples_tab(all_runs, reference)
if pipeline_tab_.open:
    with pipeline_tab_:
        if cached_baseline() is None:
            st.info("The pipeline starts from the sidebar's baseline (or a run made from one); press **Train baseline** in the sidebar first.")
        else:
            pipeline_tab(choose_source("compare_source"))
if deploy_tab_.open:
    with deploy_tab_:
        deploy_tab(all_runs, chosen, default_run_a(all_runs, reference))  # the runtimes of one run and its source; an ONNX file per shown run
if export_tab_.open:
    with export_tab_:
        export_tab(chosen, reference)

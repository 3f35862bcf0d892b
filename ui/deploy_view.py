"""The Compare page's Deploy tab: the same models timed in every runtime people deploy with, and each
shown run as a checked ONNX file to download. Pages lay out, core computes: the measurement, the
table rows, the chart and the export all come from core.deploy and core.charts.deploy."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.charts.deploy import runtime_latency_figure
from core.contract.run_summary import RunSummary
from core.deploy.export import cached_export, deploy_form, file_name, onnx_for_run
from core.deploy.runtimes import RUNTIMES, RuntimeReport, cached_runtime_report, default_runs, measure_runtimes, table_rows
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.measures.latency import ROUNDS, SINGLE_BATCH_SIZE, THROUGHPUT_BATCH_SIZE
from ui.state import progress_reporter, report_error, show_figure, workspace

MAX_DOWNLOADS = 20  # ONNX buttons drawn at most; the rest of a long history is one sentence away
EXPORTS_KEY = "compare_deploy_exports"  # run id -> the export's summary dict, or its one-line error

RUNTIME_COLUMNS = {
    "model": st.column_config.TextColumn("model"),
    "runtime": st.column_config.TextColumn("runtime"),
    "precision": st.column_config.TextColumn("precision"),
    "batch_size": st.column_config.NumberColumn("batch"),
    "latency_ms": st.column_config.NumberColumn("ms per call", format="%.3g ms", help="one forward pass over the batch, best round's median"),
    "per_image_ms": st.column_config.NumberColumn("ms per image", format="%.3g ms"),
    "speedup_vs_fp32_eager": st.column_config.NumberColumn("× vs fp32 torch eager", format="%.2f×", help="per image, against the first model's fp32 in torch eager; above 1 is faster"),
    "int8_speedup_same_runtime": st.column_config.NumberColumn("int8 × in this runtime", format="%.2f×", help="the same model's fp32 latency over its int8 latency in this runtime"),
    "accuracy": st.column_config.NumberColumn("accuracy", format="percent", help="on the whole test set, in this runtime"),
    "status": st.column_config.TextColumn("status", width="large"),
}


def deploy_tab(all_runs: dict[int, RunSummary], shown: list[RunSummary], default_run: int) -> None:
    st.caption(
        "Each model timed in torch eager, torch.compile, ONNX Runtime and OpenVINO, fp32 and int8, at batch 1 and 256, "
        "one thread count for all; then any shown run as a checked ONNX file. Headless: `python -m core runtimes --run N`, `python -m core export --run N --format onnx --out PATH`."
    )
    runtimes_section(all_runs, default_run)
    downloads_section(shown)


# --------------------------------------------------------------------------------- the runtimes


def runtimes_section(all_runs: dict[int, RunSummary], default_run: int) -> None:
    ids = sorted(all_runs, reverse=True)  # newest first, as the Example by example tab lists them
    if st.session_state.get("compare_deploy_run") not in all_runs:
        st.session_state["compare_deploy_run"] = default_run
    left, right = st.columns([2, 3])
    run_id = left.selectbox("Run (timed with its source)", ids, key="compare_deploy_run", format_func=lambda rid: all_runs[rid].label)
    st.session_state.setdefault("compare_deploy_runtimes", list(RUNTIMES))
    chosen = right.multiselect("Runtimes", list(RUNTIMES), key="compare_deploy_runtimes", help="torch.compile is the slow one to measure (it compiles each graph first)")
    rounds = left.number_input("Interleaved rounds", min_value=1, max_value=10, value=ROUNDS, key="compare_deploy_rounds", help="each runner keeps its best round's median")
    ws = workspace()
    try:
        run_ids = default_runs(ws, run_id)
    except UserError as error:
        report_error(error)
        return
    st.caption("Timed together: " + ", ".join(all_runs[rid].label if rid in all_runs else f"#{rid}" for rid in run_ids) + (" (the run and the model it was made from)" if len(run_ids) > 1 else ""))
    report = None
    if right.button("Measure runtimes", key="compare_deploy_measure", type="primary", disabled=not chosen):
        try:
            report = measure_runtimes(ws, run_ids, rounds=int(rounds), runtimes=tuple(r for r in RUNTIMES if r in chosen), progress=progress_reporter("Measuring runtimes"))
        except UserError as error:
            report_error(error)
            return
    else:
        report = cached_runtime_report(ws, run_ids)
        if report is None:
            st.info("Not measured yet for these runs: press **Measure runtimes** (tens of seconds; longer with torch.compile).")
            return
    show_runtime_report(report)


def show_runtime_report(report: RuntimeReport) -> None:
    machine = report.machine
    cores = f", {machine['cores']} cores" if machine.get("cores") else ""
    st.caption(
        f"{'Saved measurement' if report.from_cache else 'Measured'} {report.measured_at} on {machine.get('cpu_model') or 'an unknown CPU'}{cores}; "
        f"{report.threads} thread{'s' if report.threads != 1 else ''} for every runtime, best of {report.rounds} interleaved round{'s' if report.rounds != 1 else ''}, "
        f"accuracy on {report.test_images} test images. " + ", ".join(f"{name} {version}" for name, version in report.versions.items()) + "."
    )
    st.markdown("**int8 models.** " + " ".join(f"{model}: {source}." for model, source in report.int8_sources.items()))
    measured_sizes = sorted({row["batch_size"] for row in table_rows(report)}, reverse=True) or [THROUGHPUT_BATCH_SIZE, SINGLE_BATCH_SIZE]  # the throughput batch first
    batch = st.radio("Batch size", measured_sizes, horizontal=True, key="compare_deploy_batch", format_func=lambda size: f"{size} image{'s' if size != 1 else ''}")
    show_figure(runtime_latency_figure(report, batch), key="compare_deploy_chart")
    rows = [row for row in table_rows(report) if row["batch_size"] == batch]
    st.dataframe(pd.DataFrame(rows, columns=list(RUNTIME_COLUMNS)), hide_index=True, width="stretch", column_config=RUNTIME_COLUMNS, key="compare_deploy_table")
    sentence = unavailable_sentence(report)
    if sentence:
        st.info(sentence, icon="ℹ️")


def unavailable_sentence(report: RuntimeReport) -> str:
    """One sentence naming each runtime that could not run a model here, with its reason."""
    reasons: dict[tuple[str, str], list[str]] = {}  # (runtime, reason) -> precisions
    for figure in report.figures:
        if not figure.available:
            precisions = reasons.setdefault((figure.runtime, figure.reason), [])
            if figure.precision not in precisions:
                precisions.append(figure.precision)
    if not reasons:
        return ""
    parts = [f"{runtime} {' and '.join(precisions)}: {_plain(reason)}" for (runtime, reason), precisions in reasons.items()]
    return "Not available here: " + "; ".join(parts) + "."


def _plain(text: str) -> str:
    """A reason shown as text, not as Markdown."""
    for character in "\\`*_[]<>#|$~":
        text = text.replace(character, "\\" + character)
    return text


# --------------------------------------------------------------------------------- the ONNX files


def downloads_section(shown: list[RunSummary]) -> None:
    st.subheader("ONNX files")
    if not shown:
        st.info("No runs shown: clear the filters above.")
        return
    listed = sorted(shown, key=lambda run: -run.run_id)[:MAX_DOWNLOADS]  # newest first
    st.caption(
        "Each file passes onnx.checker and is compared with torch on the whole test set before it is offered (fp32: ≥ 99.9% agreement; int8: within 1 point of torch's accuracy). "
        + (f"The newest {MAX_DOWNLOADS} of the {len(shown)} runs shown; select runs above to choose others." if len(shown) > MAX_DOWNLOADS else "")
    )
    ws = workspace()
    results = st.session_state.setdefault(EXPORTS_KEY, {})
    for summary in listed:
        run = history.get_run(ws.history_db, summary.run_id)
        if run is None:  # deleted since the table was read
            continue
        with st.container(border=True):
            left, right = st.columns([3, 1])
            try:
                form = deploy_form(ws, run)
            except UserError as error:
                left.markdown(f"**{summary.label}**")
                left.caption(f"Cannot be exported: {error}")
                continue
            left.markdown(f"**{summary.label}** · {form.kind}")
            left.caption(form.note)
            result = results.get(run.id)
            if result is None:  # exported before (another session, the CLI): offered straight away
                cached = cached_export(ws, run.id)
                result = cached.summary() if cached is not None else None
            if result is None:
                if right.button("Export to ONNX", key=f"compare_deploy_export_{run.id}", help="exported, checked against torch and cached (seconds for a small model)"):
                    results[run.id] = export_summary(run.id)
                    result = results[run.id]
            if isinstance(result, str):
                left.error(result, icon="⚠️")
            elif result is not None:
                right.download_button(
                    "⬇️ ONNX file",
                    data=lambda run_id=run.id: onnx_for_run(workspace(), run_id).onnx_bytes,
                    file_name=file_name(run),
                    mime="application/octet-stream",
                    key=f"compare_deploy_download_{run.id}",
                    on_click="ignore",
                )
                left.markdown(check_sentence(result))


def export_summary(run_id: int) -> dict | str:
    """The export's summary (exported now, or from the cache), or its one-line reason."""
    try:
        with st.spinner(f"Exporting run #{run_id} and checking it against torch…"):
            return onnx_for_run(workspace(), run_id).summary()
    except UserError as error:
        return str(error)


def check_sentence(summary: dict) -> str:
    agreement = "" if summary["agreement"] is None else f", agrees with torch on {summary['agreement']:.2%} of them"
    return (
        f"✅ {summary['bytes']:,} bytes, opset {summary['opset']}. In ONNX Runtime {summary['accuracy']:.2%} on {summary['test_images']} test images "
        f"(torch: {summary['torch_accuracy']:.2%}){agreement}."
    )

"""The "What changed" views every page shares: two models compared example by example (sentence,
2x2 table, per-class change, confidence shift, gallery of flipped images) and layer by layer.
Core computes (core.diff); these functions only lay out."""

from __future__ import annotations

import streamlit as st

from core.charts.diff import agreement_table_figure, class_change_figure, confidence_shift_figure, layer_error_figure
from core.diff.exemplars import ExemplarReport, exemplars_for_baseline
from core.diff.gallery import DEFAULT_GALLERY_SIZE, exemplar_caption, flipped_caption, image_array
from core.diff.layers import LayerErrorReport
from core.diff.runs import RunDiff, diff_runs
from core.foundation import history
from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from ui.state import report_error, show_figure, workspace

GALLERY_COLUMNS = 6


def _artifact_stamps(run_ids: tuple[int, ...]) -> tuple:
    """What invalidates a cached comparison: each run's artifact path and modification time."""
    store = workspace()
    stamps = []
    for run_id in run_ids:
        run = history.get_run(store.history_db, run_id)
        path = store.resolve_artifact(run.artifact_path) if run is not None else None
        stamps.append((run_id, str(path), path.stat().st_mtime if path is not None and path.exists() else None))
    return tuple(stamps)


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_diff(workspace_root: str, run_a: int, run_b: int | None, stamps_key: str) -> RunDiff:
    return diff_runs(workspace(), run_a, run_b)


def run_diff(run_a: int, run_b: int | None = None) -> RunDiff | None:
    """Run A against run B (default: A's parent), cached per artifact state; None after one error line."""
    try:
        ids = (run_a,) if run_b is None else (run_a, run_b)
        stamps = _artifact_stamps(ids)
        with st.spinner("Comparing predictions on the whole test set…"):
            return _cached_diff(str(workspace().root), run_a, run_b, repr(stamps))
    except UserError as error:
        report_error(error)
        return None


@st.cache_resource(max_entries=8, show_spinner=False)
def _cached_exemplars(workspace_root: str, baseline_run_id: int, descendants_key: str) -> ExemplarReport:
    return exemplars_for_baseline(workspace(), baseline_run_id)


def exemplars(baseline_run_id: int) -> ExemplarReport | None:
    """Exemplars of a baseline, recomputed when its set of descendants changes."""
    try:
        descendants = history.descendants(workspace().history_db, baseline_run_id)
        with st.spinner("Reading every descendant's predictions…"):
            return _cached_exemplars(str(workspace().root), baseline_run_id, repr(_artifact_stamps(tuple(run.id for run in descendants))))
    except UserError as error:
        report_error(error)
        return None


def show_gallery(dataset: Dataset, entries: list[tuple[int, str]], key: str) -> None:
    """Test images in a grid, each with its caption."""
    for start in range(0, len(entries), GALLERY_COLUMNS):
        columns = st.columns(GALLERY_COLUMNS)
        for column, (index, caption) in zip(columns, entries[start : start + GALLERY_COLUMNS]):
            column.image(image_array(dataset, index), caption=caption, width="stretch")


def show_run_diff(comparison: RunDiff, key: str, gallery_size: int = DEFAULT_GALLERY_SIZE) -> None:
    """Everything the comparison holds, top to bottom: sentence, numbers, charts, gallery, layers."""
    diff = comparison.predictions
    st.markdown(f"**{diff.sentence()}**")
    columns = st.columns(4)
    columns[0].metric("Top-1 agreement", f"{diff.agreement:.1%}")
    columns[1].metric(f"Accuracy {diff.label_a}", f"{diff.accuracy_a:.1%}")
    columns[2].metric(f"Accuracy {diff.label_b}", f"{diff.accuracy_b:.1%}")
    columns[3].metric("Predictions changed", f"{len(diff.flipped):,}")
    left, right = st.columns(2)
    with left:
        show_figure(agreement_table_figure(diff), key=f"{key}_table")
    with right:
        show_figure(class_change_figure(diff), key=f"{key}_classes")
    show_figure(confidence_shift_figure(diff), key=f"{key}_confidence")
    st.markdown(f"**Flipped predictions, worst first** ({len(diff.flipped):,} images; the first {min(gallery_size, len(diff.flipped))} shown)")
    if diff.flipped:
        entries = [(image.index, flipped_caption(image, diff.class_names, diff.label_a, diff.label_b)) for image in diff.flipped[:gallery_size]]
        show_gallery(comparison.dataset, entries, key=f"{key}_gallery")
    else:
        st.caption("No test image changed its top-1 prediction.")
    show_layer_errors(comparison.layers, comparison.layers_reason, key=f"{key}_layers")
    cached = " and ".join(side.upper() for side, hit in comparison.from_cache.items() if hit)
    st.caption(f"Computed in {comparison.seconds:.2f} s; " + (f"predictions of {cached} read from the workspace cache." if cached else "predictions computed now and cached for next time."))


def show_layer_errors(report: LayerErrorReport | None, reason: str, key: str) -> None:
    st.markdown("**Where the error enters, layer by layer**")
    if report is None:
        st.caption(reason)
        return
    metric = st.radio("Layer error as", ["SQNR (dB)", "relative error"], horizontal=True, key=f"{key}_metric")
    show_figure(layer_error_figure(report, "sqnr_db" if metric == "SQNR (dB)" else "relative_error"), key=f"{key}_chart")
    st.caption(report.note)


def show_exemplars(report: ExemplarReport, key: str, gallery_size: int = DEFAULT_GALLERY_SIZE) -> None:
    st.markdown(f"**{report.sentence()}**")
    if report.exemplars:
        entries = [(exemplar.index, exemplar_caption(exemplar, report.class_names)) for exemplar in report.exemplars[:gallery_size]]
        show_gallery(report.dataset, entries, key=f"{key}_gallery")

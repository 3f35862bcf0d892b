"""Which model a technique page starts from: the sidebar's baseline, or any run in the history.

    source = choose_source("prune_source")        # a selectbox "Start from", then a caption with source.label
    evaluator = quick_evaluator(source)           # the one quick evaluator, per source, shared by every session

Run sources are read back from their artifacts once per server (st.cache_resource, keyed by the
workspace, the run id and the artifact's mtime), so every session shares one read-only copy;
techniques change only fresh copies of a source's model.
"""

from __future__ import annotations

import json

import streamlit as st

from core.contract.run_summary import summarize
from core.contract.source import ModelSource, source_candidates
from core.foundation.baseline.trained import Baseline
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.training.quick_evaluation import QuickEvaluator, preview_subset_size
from core.foundation.workspace import META_FILE, Workspace
from ui.state import report_error, require_baseline, workspace

BASELINE_CHOICE = 0  # the selectbox's value for "the sidebar's baseline" (run ids start at 1)


def compressible_runs(baseline: Baseline) -> list[RunRecord]:
    """Runs on the sidebar's dataset that a technique can start from (core.contract.source decides which)."""
    try:
        return source_candidates(workspace().history_db, baseline.config.dataset, exclude_run_id=baseline.run_id)
    except UserError:
        return []  # a damaged history is reported in the sidebar; the baseline still works


def run_choice_label(run: RunRecord) -> str:
    accuracy = summarize(run).accuracy
    shown = "" if accuracy is None else f" · {accuracy:.1%}"
    return f"run #{run.id} {run.technique} · {run.model}{shown}"


def artifact_mtime(store: Workspace, run: RunRecord) -> float:
    path = store.resolve_artifact(run.artifact_path)
    if path is None or not path.exists():
        return 0.0
    meta = path / META_FILE
    return (meta if meta.is_file() else path).stat().st_mtime


@st.cache_resource(max_entries=8, show_spinner="Loading the run's model…")
def _run_source_shared(workspace_root: str, run_id: int, artifact_mtime: float, device: str, dataset_key: str, _baseline: Baseline) -> ModelSource:
    return ModelSource.from_run(Workspace.open(workspace_root), run_id, device=device, dataset=_baseline.dataset)


def run_source(baseline: Baseline, run: RunRecord) -> ModelSource:
    """A recorded run as a model source, on the sidebar's dataset and device; loaded once per server."""
    store = workspace()
    dataset_key = json.dumps(baseline.config.dataset.as_dict(), sort_keys=True)
    return _run_source_shared(str(store.root), run.id, artifact_mtime(store, run), baseline.config.device, dataset_key, baseline)


def choose_source(key: str, container=None) -> ModelSource:
    """ "Start from": the sidebar's baseline (the default) or a compressible run of the history.
    A run that cannot be a source is said in one line, and the page goes on from the baseline."""
    target = container if container is not None else st
    baseline = require_baseline()
    runs = {run.id: run for run in compressible_runs(baseline)}
    options = [BASELINE_CHOICE, *runs]
    if st.session_state.get(key) not in options:
        st.session_state[key] = BASELINE_CHOICE  # a deleted run, or a run of another dataset
    chosen = target.selectbox(
        "Start from",
        options,
        key=key,
        format_func=lambda run_id: f"the sidebar's baseline (run #{baseline.run_id})" if run_id == BASELINE_CHOICE else run_choice_label(runs[run_id]),
        help="Any run of this dataset whose model is still floating point: prune a distilled student, quantize a pruned model, ...",
    )
    source = ModelSource.from_baseline(baseline)
    if chosen != BASELINE_CHOICE:
        try:
            source = run_source(baseline, runs[chosen])
        except UserError as error:
            report_error(error)
    target.caption(f"Starting from {source.label}.")
    return source


def source_key(source: ModelSource) -> str:
    """What identifies a source in a cache key: its run, its weights' location and its dataset."""
    return f"{source.run_id}:{source.checkpoint}:{source.dataset.name}:{len(source.dataset.test)}"


@st.cache_resource(max_entries=4, show_spinner=False)
def _quick_evaluator_shared(key: str, _source: ModelSource) -> QuickEvaluator:
    return QuickEvaluator(_source.dataset, _source.torch_device, size=preview_subset_size(_source.architecture))


def quick_evaluator(source: ModelSource) -> QuickEvaluator:
    """The one quick evaluator (core.foundation.training.quick_evaluation) for this source's dataset,
    device and architecture (a torchvision network previews on fewer images), built once per server."""
    return _quick_evaluator_shared(source_key(source), source)


@st.cache_resource(max_entries=8, show_spinner=False)
def _quick_accuracy_shared(key: str, _source: ModelSource, _evaluator: QuickEvaluator) -> float:
    return _evaluator.accuracy(_source.model)


def quick_accuracy(source: ModelSource, evaluator: QuickEvaluator) -> float:
    """The source's accuracy on the evaluator's subset (what a preview's "after" is compared with)."""
    return _quick_accuracy_shared(source_key(source), source, evaluator)


@st.cache_resource(max_entries=8, show_spinner=False)
def _source_measures_shared(key: str, _source: ModelSource) -> dict[str, int]:
    return {"params": _source.params(), "macs": _source.macs(), "size_bytes": _source.size_bytes()}


def source_measures(source: ModelSource) -> dict[str, int]:
    """The source's parameters, MACs per image and fp32 file bytes, counted once per server."""
    return _source_measures_shared(source_key(source), source)

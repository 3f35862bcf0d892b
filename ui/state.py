"""What every page needs from the session: the workspace, the chosen baseline, progress, errors.

The sidebar (app.py) stores the chosen BaselineConfig in st.session_state; pages read it through
these helpers. Loaded datasets and baselines are shared read-only across browser sessions through
st.cache_resource; anything a page changes is a copy.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

import plotly.graph_objects as go
import streamlit as st

from core.baseline import Baseline, BaselineConfig, checkpoint_folder, load_cached_baseline, recipe_for
from core.charts.style import scale_for_presentation
from core.datasets import Dataset, DatasetSpec, load_dataset
from core.errors import UserError
from core.progress import Progress, ProgressCallback
from core.workspace import META_FILE, Workspace

THREADS_ENV = "MEL_TORCH_THREADS"
CONFIG_KEY = "baseline_config"
PRESENTATION_KEY = "presentation_mode"
TRAINING_STOP_KEY = "training_stop_requested"  # set by the Stop training button shown while the baseline trains


def cap_torch_threads() -> int:
    """Every browser session shares this server's cores. Torch work runs with at most cores - 1
    threads (MEL_TORCH_THREADS overrides), so one session training leaves a core for the others
    and for the server itself."""
    import torch

    threads = int(os.environ.get(THREADS_ENV) or max(1, (os.cpu_count() or 2) - 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


class SessionStopFlag:
    """A StopFlag (core.progress) kept in st.session_state[key], so a button's on_click can set it
    for the session's training run to read between batches."""

    def __init__(self, key: str):
        self.key = key

    def is_set(self) -> bool:
        return bool(st.session_state.get(self.key, False))

    def set(self) -> None:
        st.session_state[self.key] = True


def ensure_navigation_mode() -> None:
    """Streamlit serves the very first script run of a fresh server through its old pages/-folder
    mode (it only learns that app.py uses st.navigation by running it), which resets the sidebar's
    widgets once and can run a deep-linked page without app.py. Switch the flag and rerun at once."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def workspace() -> Workspace:
    return Workspace.open()


@st.cache_resource(show_spinner="Loading dataset…", max_entries=8)
def _load_dataset_shared(spec_json: str, workspace_root: str) -> Dataset:
    return load_dataset(DatasetSpec(**json.loads(spec_json)), Workspace.open(workspace_root), allow_download=False)


def dataset_for(spec: DatasetSpec) -> Dataset:
    """The dataset (no download), decoded once per server and shared by every session."""
    return _load_dataset_shared(json.dumps(spec.as_dict(), sort_keys=True), str(workspace().root))


@st.cache_resource(show_spinner="Loading the cached baseline…", max_entries=16)
def _load_baseline_shared(config_json: str, workspace_root: str, checkpoint_mtime: float) -> Baseline | None:
    config_dict = json.loads(config_json)
    config = BaselineConfig(DatasetSpec(**config_dict.pop("dataset")), **config_dict)
    return load_cached_baseline(config, Workspace.open(workspace_root), dataset_for(config.dataset))


def baseline_config() -> BaselineConfig:
    return st.session_state.get(CONFIG_KEY, BaselineConfig())


def cached_baseline(config: BaselineConfig | None = None) -> Baseline | None:
    """The trained baseline for `config` (default: the sidebar's), or None if it is not trained yet."""
    config = config or baseline_config()
    dataset = dataset_for(config.dataset)
    meta = checkpoint_folder(config, recipe_for(config, dataset), workspace()) / META_FILE
    if not meta.is_file():
        return None
    # The meta file's mtime is part of the key, so a retrained checkpoint is never served stale.
    return _load_baseline_shared(json.dumps(asdict(config), sort_keys=True), str(workspace().root), meta.stat().st_mtime)


def require_baseline() -> Baseline:
    """The sidebar's baseline; stops the page with a pointer to "Train baseline" when it is missing."""
    ensure_navigation_mode()
    try:
        baseline = cached_baseline()
    except UserError as error:
        report_error(error)
        st.stop()
    if baseline is None:
        st.info("No baseline is trained for these settings yet. Press **Train baseline** in the sidebar (digits takes a few seconds).")
        st.stop()
    return baseline


def progress_reporter(label: str, container=None) -> ProgressCallback:
    """A progress bar with a status line; redraws at most a few times a second."""
    target = container if container is not None else st
    bar = target.progress(0.0, text=label)
    last_drawn = [0.0]

    def report(progress: Progress) -> None:
        now = time.perf_counter()
        if now - last_drawn[0] < 0.2 and progress.done < progress.total:
            return
        last_drawn[0] = now
        details = []
        for name, value in progress.metrics.items():
            if name == "eta_seconds":
                details.append(f"ETA {value:.0f} s")
            elif isinstance(value, float):
                details.append(f"{name.replace('_', ' ')} {value:.3g}")
        bar.progress(progress.fraction, text=f"{label}: {progress.message} {' · '.join(details)}".strip())

    return report


def presentation_mode() -> bool:
    return bool(st.session_state.get(PRESENTATION_KEY, False))


def show_figure(figure: go.Figure, key: str | None = None) -> None:
    st.plotly_chart(scale_for_presentation(figure, presentation_mode()), width="stretch", key=key, config={"displaylogo": False})


def report_error(error: Exception) -> None:
    st.error(str(error), icon="⚠️")


def format_bytes(size_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size_bytes) < 1000 or unit == "GB":
            return f"{size_bytes:,.0f} {unit}" if unit == "B" else f"{size_bytes:,.1f} {unit}"
        size_bytes /= 1000
    return f"{size_bytes:,.1f} GB"

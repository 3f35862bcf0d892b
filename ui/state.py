"""What every page needs from the session: the workspace, the chosen baseline, progress, errors.

The sidebar (app.py) stores the chosen BaselineConfig in st.session_state; pages read it through
these helpers. Loaded datasets and baselines are shared read-only across browser sessions through
st.cache_resource; anything a page changes is a copy.

Importing this module does not import torch: the sidebar and the Overview draw from a baseline's
card (core.foundation.baseline.card) while torch loads in the background (start_torch_warmup); the helpers
that hand out tensors import it when first called.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, TypeVar

import plotly.graph_objects as go
import streamlit as st

from core.charts.style import scale_for_presentation
from core.foundation.baseline.card import BaselineCard, find_baseline_card
from core.foundation.baseline.config import BaselineConfig
from core.foundation.data.names import FOLDER_PREFIX, DatasetSpec
from core.foundation.errors import UserError
from core.foundation.progress import Progress, ProgressCallback
from core.foundation.workspace import META_FILE, Workspace

if TYPE_CHECKING:
    from core.foundation.baseline.trained import Baseline
    from core.foundation.data.datasets import Dataset

T = TypeVar("T")

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


WARMUP_ENV = "MEL_TORCH_WARMUP"  # "0": no background import (the first-render test checks the Overview alone)
# What the other pages need first, imported while the first page is read. torch alone is ~3 s of a
# cold start on two cores; the page modules' own imports follow it.
WARMUP_MODULES = ("torch", "core.foundation.baseline.trained", "core.pruning.run", "core.quantization.run")

# A classroom server (MEL_CLASSROOM=1) runs long work in the job queue, once for every student who asks.
CLASSROOM_ENV = "MEL_CLASSROOM"


def classroom_mode() -> bool:
    return os.environ.get(CLASSROOM_ENV, "").strip().lower() in ("1", "true", "yes", "on")


_warmup_done = threading.Event()


def torch_ready() -> bool:
    """Whether torch can be asked without waiting: the warmup finished, or (warmup off) torch was
    imported already. A page that needs torch imports it anyway; `import` waits for the warmup."""
    return _warmup_done.is_set() or (os.environ.get(WARMUP_ENV, "1") == "0" and "torch" in sys.modules)


@st.cache_resource(show_spinner=False)
def start_torch_warmup() -> threading.Thread | None:
    """Once per server: import torch and the pages' ML modules in a daemon thread, so the first
    switch to another page finds them loaded (a page that gets there first simply waits for the
    import lock). Called after the first script run has drawn its page."""
    if os.environ.get(WARMUP_ENV, "1") == "0":
        return None

    def warm() -> None:
        import importlib

        for name in WARMUP_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:  # a missing optional module fails later, on the page that needs it
                pass
        cap_torch_threads()
        _warmup_done.set()
        warm_job_cluster()

    thread = threading.Thread(target=warm, name="torch-warmup", daemon=True)
    thread.start()
    return thread


def warm_job_cluster() -> None:
    """On a classroom server, the job queue's Ray cluster and one worker, started before the class
    arrives (core.jobs.queue.warm_cluster). A cluster that cannot start is said once in the log;
    the queue reports it again, as one line, when a student asks for a job."""
    if not classroom_mode():
        return
    from core.jobs.queue import warm_cluster

    try:
        warm_cluster()
    except Exception as error:  # noqa: BLE001 (any failure: the server keeps serving)
        print(f"The job queue's Ray cluster did not start at server start: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr, flush=True)


class SessionStopFlag:
    """A StopFlag (core.foundation.progress) kept in st.session_state[key], so a button's on_click can set it
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
    from core.foundation.data.datasets import load_dataset

    return load_dataset(DatasetSpec(**json.loads(spec_json)), Workspace.open(workspace_root), allow_download=False)


def dataset_for(spec: DatasetSpec) -> Dataset:
    """The dataset (no download), decoded once per server and shared by every session."""
    return _load_dataset_shared(json.dumps(spec.as_dict(), sort_keys=True), str(workspace().root))


@st.cache_resource(show_spinner="Loading the cached baseline…", max_entries=16)
def _load_baseline_shared(config_json: str, workspace_root: str, checkpoint_mtime: float) -> Baseline | None:
    from core.foundation.baseline.trained import load_cached_baseline

    config_dict = json.loads(config_json)
    config = BaselineConfig(DatasetSpec(**config_dict.pop("dataset")), **config_dict)
    return load_cached_baseline(config, Workspace.open(workspace_root), dataset_for(config.dataset))


def baseline_config() -> BaselineConfig:
    return st.session_state.get(CONFIG_KEY, BaselineConfig())


def cached_baseline(config: BaselineConfig | None = None) -> Baseline | None:
    """The trained baseline for `config` (default: the sidebar's), or None if it is not trained yet."""
    from core.foundation.baseline.trained import checkpoint_folder, recipe_for

    cap_torch_threads()
    config = config or baseline_config()
    dataset = dataset_for(config.dataset)
    meta = checkpoint_folder(config, recipe_for(config, dataset), workspace()) / META_FILE
    if not meta.is_file():
        return None
    # The meta file's mtime is part of the key, so a retrained checkpoint is never served stale.
    return _load_baseline_shared(json.dumps(asdict(config), sort_keys=True), str(workspace().root), meta.stat().st_mtime)


def baseline_card(config: BaselineConfig | None = None) -> BaselineCard | None:
    """The card of the baseline for `config` (default: the sidebar's), read without torch; None
    when there is none or it cannot be vouched for from its meta alone (then load the baseline).
    A folder dataset always goes through loading: its skipped files are said in the sidebar."""
    config = config or baseline_config()
    if config.dataset.name.startswith(FOLDER_PREFIX):
        return None
    return find_baseline_card(config, workspace())


def _read_or_stop(read: Callable[[], T]) -> T:
    """What a require_ helper reads for its page (after ensure_navigation_mode): read()'s value,
    or, on a UserError (a damaged checkpoint, an unreadable history), the error shown and the page stopped."""
    ensure_navigation_mode()
    try:
        return read()
    except UserError as error:
        report_error(error)
        st.stop()


def require_baseline_card() -> BaselineCard:
    """What the Overview shows: the baseline's card, from its meta when that vouches for it, else
    from the loaded baseline (an older checkpoint); stops the page like require_baseline."""
    card = _read_or_stop(baseline_card)
    if card is not None:
        return card
    from core.foundation.baseline.trained import card_of

    return card_of(require_baseline())


def require_baseline() -> Baseline:
    """The sidebar's baseline; stops the page with a pointer to "Train baseline" when it is missing."""
    baseline = _read_or_stop(cached_baseline)
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

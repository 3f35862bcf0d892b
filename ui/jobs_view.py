"""Queued work on a classroom server (MEL_CLASSROOM=1): the sidebar's "Train baseline", the
Distillation page's "Train teacher" (both baseline trainings, one job kind), the Pruning page's
fine-tuning run, the Quantization page's QAT run, the Distillation page's race and the Explore
page's sweep ask the server's one job queue, and the page follows the job (place, progress, ETA)
until it is done.

The job is found by its configuration, so a session that reloads the page, or another student who
picks the same settings, sees the same job instead of starting another.
"""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from core.jobs.queue import JobQueue
from core.jobs.store import ACTIVE_STATES, DONE, job_id_for
from ui.state import baseline_config, cached_baseline

JOB_KIND = "baseline"
REFRESH_SECONDS = 1.0


@st.cache_resource(show_spinner=False)
def job_queue(workspace_root: str) -> JobQueue:
    """One queue per server process and workspace, shared by every session."""
    from core.foundation.workspace import Workspace

    return JobQueue(Workspace.open(workspace_root))


def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return context.session_id if context is not None else "no-session"


def queued_baseline_training(config, workspace_root: str) -> None:
    """The sidebar's "Train baseline" and, while a job for these settings exists, its status."""
    with st.sidebar:
        queued_training(config, workspace_root, "Train baseline", "sidebar")


def queued_training(config, workspace_root: str, label: str, key_prefix: str) -> None:
    """A button that queues the training of the baseline `config` (a core.foundation.baseline.trained.BaselineConfig)
    and, while a job for it exists, its status, where the caller draws it; keys start with `key_prefix`."""
    queued_job(JOB_KIND, asdict(config), workspace_root, label, key_prefix)


def queued_job(kind: str, job_config: dict, workspace_root: str, label: str, key_prefix: str, button_key: str | None = None, work: str = "training") -> dict | None:
    """A button that queues the job `kind` with `job_config` (a core.jobs.kinds kind) and, while a
    job for it exists, its status, where the caller draws it. Returns the finished job's result
    (its run id, ...) once it is done, else None: the caller shows it as after an in-process run.
    Keys start with `key_prefix`; the button's is `button_key` (default KEY_PREFIX_train)."""
    queue = job_queue(workspace_root)
    job_id = job_id_for(kind, job_config)
    status = queue.status(job_id)
    if status is None or status.state not in ACTIVE_STATES:
        if status is not None and status.state != DONE:
            st.warning(f"Last {work} for these settings: {status.line()}")
        if st.button(label, key=button_key or f"{key_prefix}_train", type="primary", help="Queued on the server: at most one job per spare core at once; identical settings run once"):
            queue.submit(kind, job_config, session_id())
            st.rerun()
        return status.record.result if status is not None and status.state == DONE else None
    _follow_job(workspace_root, job_id, key_prefix, work)
    return None


@st.fragment(run_every=REFRESH_SECONDS)
def _follow_job(workspace_root: str, job_id: str, key_prefix: str, work: str = "training") -> None:
    queue = job_queue(workspace_root)
    status = queue.status(job_id)
    if status is None or status.state not in ACTIVE_STATES:
        st.rerun(scope="app")  # done (the model is cached or recorded), failed or cancelled: the whole page redraws
    asked = len(status.record.asked_by)
    st.progress(status.fraction, text=status.line())
    st.caption(f"Job {job_id} · asked by {asked} session{'s' if asked != 1 else ''} · at most {queue.max_running} at once")
    # A student can cancel only a job nobody else asked for; the instructor cancels any job with
    # `python -m core jobs --cancel ID` on the server.
    if status.record.asked_by == [session_id()] and st.button(f"Cancel this {work}", key=f"{key_prefix}_cancel_job"):
        queue.cancel(job_id)


def source_config(source) -> dict:
    """A page's model source (core.contract.source.ModelSource) as a job's JSON: the sidebar's baseline by its
    configuration (the worker loads it as the page does, from_baseline), any other run by its id."""
    baseline = cached_baseline()
    if baseline is not None and source.run_id == baseline.run_id and source.technique == "train":
        return {"baseline": asdict(baseline_config())}
    return {"run_id": source.run_id, "device": source.device}

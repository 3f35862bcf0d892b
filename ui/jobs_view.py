"""Queued work on a classroom server (MEL_CLASSROOM=1): the sidebar's "Train baseline", the
Distillation page's "Train teacher" (both baseline trainings, one job kind), the Pruning page's
fine-tuning run, the Quantization page's QAT run, the Distillation page's race and the Explore
page's sweep ask the server's one job queue, and the page follows the job (place, progress, ETA)
until it is done.

The job is found by its configuration, so a session that reloads the page, or another student who
picks the same settings, sees the same job instead of starting another. A job the queue refuses
(the session's share used, a job over the size limits) is one line where its button is.

The instructor (pages/instructor.py) unlocks the queue's controls for one browser session with the
secret set on the server: $MEL_INSTRUCTOR_SECRET, else `instructor_secret` in .streamlit/secrets.toml.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import asdict

import streamlit as st

from core.foundation.errors import UserError
from core.jobs.queue import JobQueue
from core.jobs.store import ACTIVE_STATES, DONE, JobRecord, job_id_for
from ui.state import baseline_config, cached_baseline, report_error

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
            try:
                queue.submit(kind, job_config, session_id())
            except UserError as error:  # this session's share of the queue, or a job over the limits: one line, nothing queued
                report_error(error)
                return None
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
    # A student can cancel only a job nobody else asked for; the instructor cancels any job (the
    # Instructor page, or `python -m core jobs --cancel ID` on the server).
    if (status.record.asked_by == [session_id()] or is_instructor()) and st.button(f"Cancel this {work}", key=f"{key_prefix}_cancel_job"):
        queue.cancel(job_id)


def source_config(source) -> dict:
    """A page's model source (core.contract.source.ModelSource) as a job's JSON: the sidebar's baseline by its
    configuration (the worker loads it as the page does, from_baseline), any other run by its id."""
    baseline = cached_baseline()
    if baseline is not None and source.run_id == baseline.run_id and source.technique == "train":
        return {"baseline": asdict(baseline_config())}
    return {"run_id": source.run_id, "device": source.device}


def own_jobs(queue: JobQueue) -> list[JobRecord]:
    """The jobs this browser session asked for (started or joined), oldest first."""
    me = session_id()
    return [record for record in queue.jobs() if me in record.asked_by]


def may_cancel(record: JobRecord) -> bool:
    """A student cancels only an active job nobody else asked for; the instructor any active job."""
    return record.state in ACTIVE_STATES and (record.asked_by == [session_id()] or is_instructor())


# The instructor's secret -------------------------------------------------------------------------

SECRET_ENV = "MEL_INSTRUCTOR_SECRET"
SECRET_NAME = "instructor_secret"  # its name in .streamlit/secrets.toml
UNLOCKED_KEY = "instructor_unlocked"  # st.session_state: the sha256 of the secret this session entered


def instructor_secret() -> str | None:
    """The secret the instructor set: $MEL_INSTRUCTOR_SECRET, else st.secrets["instructor_secret"];
    None when neither is set (or is blank). Never shown, never in a link."""
    value = os.environ.get(SECRET_ENV, "")
    if value.strip():
        return value.strip()
    try:
        value = st.secrets.get(SECRET_NAME)
    except Exception:  # noqa: BLE001 - no secrets.toml at all (Streamlit raises), or one that does not parse
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def unlock(entered: str) -> bool:
    """Compare `entered` with the secret in constant time (hmac.compare_digest); a match unlocks the
    instructor's controls for this browser session only."""
    secret = instructor_secret()
    if secret is None or not entered or not hmac.compare_digest(entered.strip().encode(), secret.encode()):
        return False
    st.session_state[UNLOCKED_KEY] = _fingerprint(secret)
    return True


def lock() -> None:
    st.session_state.pop(UNLOCKED_KEY, None)


def is_instructor() -> bool:
    """Whether this session entered the secret that is set now (a changed or removed secret locks every session again)."""
    secret, held = instructor_secret(), st.session_state.get(UNLOCKED_KEY)
    return secret is not None and isinstance(held, str) and hmac.compare_digest(held, _fingerprint(secret))

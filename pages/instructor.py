"""Instructor: the class's job queue, on a classroom server (MEL_CLASSROOM=1; app.py lists the page only there).

With no secret set on the server the page says how to set one and shows nothing else. With one set,
a session that has not entered it sees the password field, its own jobs and the class's results
board; one that has entered it (compared with hmac.compare_digest, ui/jobs_view.py) also sees every
job with the session that started it, its place, progress and ETA, and may cancel one or all,
pause and resume the queue, clear the ended jobs and set the per-session limit and the size limits.
Every action is a call on the server's one JobQueue (core/jobs/queue.py); the board is
core/jobs/board.py's, read from the history.
"""

from __future__ import annotations

import streamlit as st

from core.foundation.errors import UserError
from core.foundation.training.records import MAX_EPOCHS
from core.jobs.board import results_board
from core.jobs.queue import JobQueue, JobStatus
from core.jobs.store import ACTIVE_STATES, MAX_PER_SESSION_CEILING
from ui.jobs_view import SECRET_ENV, SECRET_NAME, instructor_secret, is_instructor, job_queue, lock, may_cancel, own_jobs, session_id, unlock
from ui.state import CLASSROOM_ENV, classroom_mode, ensure_navigation_mode, report_error, workspace

REFRESH_SECONDS = 2.0
SECRET_INPUT_KEY = "instructor_secret_input"
REFUSED_KEY = "instructor_refused"  # the last unlock's one line, shown once
NOTICE_KEY = "instructor_notice"  # what the last action did, shown once
SHOWN_ENDED = 50  # the newest ended jobs listed


def short_session(session: str) -> str:
    return "you" if session == session_id() else session[:8]


def try_secret() -> None:
    """The Unlock button's callback: the field is emptied whatever was typed, so the secret never stays in the session's widget state."""
    entered = str(st.session_state.get(SECRET_INPUT_KEY) or "")
    st.session_state[SECRET_INPUT_KEY] = ""
    if not unlock(entered):
        st.session_state[REFUSED_KEY] = "That is not the instructor's secret; nothing was unlocked."


def act(action, done: str) -> None:
    """Run an instructor action (only reached from a widget drawn after is_instructor()), its outcome as one line."""
    if not is_instructor():
        st.session_state[NOTICE_KEY] = "Refused: this session has not entered the instructor's secret."
        return
    try:
        outcome = action()
    except UserError as error:
        st.session_state[NOTICE_KEY] = f"Refused: {error}"
        return
    st.session_state[NOTICE_KEY] = done.format(outcome=outcome)


def show_results_board(queue: JobQueue) -> None:
    st.subheader("The class's results")
    rows = results_board(workspace(), queue.jobs())
    if not rows:
        st.caption("No finished runs yet in this server's history.")
        return
    st.dataframe(rows, hide_index=True, width="stretch", key="instructor_board")
    st.caption(f"The newest {len(rows)} runs of the server's history, shared by every session (the Compare & report page compares them).")


def show_own_jobs(queue: JobQueue) -> None:
    st.subheader("Your jobs")
    mine = own_jobs(queue)
    if not mine:
        st.caption("This browser session has asked for no job yet.")
        return
    for record in mine:
        status = queue.status(record.job_id)
        if status is None:
            continue
        left, right = st.columns([5, 1])
        left.write(f"`{record.job_id}` · {status.line()}")
        if may_cancel(record) and right.button("Cancel", key=f"own_cancel_{record.job_id}"):
            queue.cancel(record.job_id)
            st.rerun()


def locked_view(queue: JobQueue) -> None:
    st.text_input("Instructor's secret", type="password", key=SECRET_INPUT_KEY, autocomplete="off")
    st.button("Unlock", key="instructor_unlock", on_click=try_secret)
    refused = st.session_state.pop(REFUSED_KEY, None)
    if refused:
        st.error(refused, icon="⚠️")
    st.caption("Only the instructor cancels other students' jobs or changes the queue. Students: your own jobs and the class's results are below.")
    show_own_jobs(queue)
    show_results_board(queue)


def limits_form(queue: JobQueue) -> None:
    settings = queue.settings()
    with st.form("instructor_limits", border=True):
        st.write("**Fair share**")
        left, middle, right = st.columns(3)
        per_session = left.number_input("Jobs per session (queued or running)", min_value=1, max_value=MAX_PER_SESSION_CEILING, value=settings.max_per_session, step=1)
        epochs = middle.number_input("Most epochs a training (empty: the lab's own limit)", min_value=1, max_value=MAX_EPOCHS, value=settings.max_epochs, step=1, placeholder=f"{MAX_EPOCHS}")
        trials = right.number_input("Most trials a sweep (empty: the lab's own limit)", min_value=1, value=settings.max_trials, step=1, placeholder="10000")
        if st.form_submit_button("Apply the limits"):
            act(
                lambda: queue.update_settings(max_per_session=int(per_session), max_epochs=None if epochs is None else int(epochs), max_trials=None if trials is None else int(trials)),
                "Limits applied: {outcome.max_per_session} jobs per session; a larger job is refused before it is queued.",
            )
            st.rerun()
    st.caption("A request identical to a queued job joins it and never counts against the session. A limit applies to jobs asked for from now on.")


def status_cells(status: JobStatus) -> tuple[str, str]:
    if status.state == "queued":
        return f"queued · place {status.place}", "paused" if status.paused else ("" if status.eta_seconds is None else f"{status.eta_seconds:.0f} s")
    return f"running · {status.fraction:.0%}", "" if status.eta_seconds is None else f"{status.eta_seconds:.0f} s"


@st.fragment(run_every=REFRESH_SECONDS)
def queue_table() -> None:
    """Every queued and running job, redrawn every REFRESH_SECONDS, each with its Cancel button; the ended ones below."""
    queue = job_queue(str(workspace().root))
    if not is_instructor():
        st.rerun(scope="app")  # the secret changed under this session: the whole page locks
    statuses = queue.statuses()
    active = [status for status in statuses if status.state in ACTIVE_STATES]
    ended = [status for status in statuses if status.state not in ACTIVE_STATES]
    settings = queue.settings()
    st.write(f"**{len(active)} queued or running** · at most {queue.max_running} at once · {settings.max_per_session} per session" + (" · **paused**" if settings.paused else ""))
    if active:
        header = st.columns([3, 2, 2, 2, 1, 1.3])
        for column, title in zip(header, ("Job", "Started by", "State", "Progress", "ETA", "")):
            column.caption(title)
    for status in active:
        record = status.record
        job, owner, state, progress, eta, cancel = st.columns([3, 2, 2, 2, 1, 1.3])
        job.write(f"`{record.job_id}`")
        joined = len(record.asked_by) - 1
        owner.write(short_session(record.asked_by[0]) + (f" (+{joined} joined)" if joined > 0 else ""))
        state_text, eta_text = status_cells(status)
        state.write(state_text)
        progress.progress(status.fraction, text=status.message[:60] or None)
        eta.write(eta_text)
        if cancel.button("Cancel", key=f"instructor_cancel_{record.job_id}"):
            act(lambda job_id=record.job_id: queue.cancel(job_id), f"Cancelled {record.job_id} for every session that asked for it.")
            st.rerun(scope="app")
    if ended:
        st.caption(f"Ended: {len(ended)} (the newest {min(len(ended), SHOWN_ENDED)} listed)")
        rows = [
            {
                "job": status.record.job_id,
                "started by": short_session(status.record.asked_by[0]) if status.record.asked_by else "",
                "asked by": len(status.record.asked_by),
                "state": status.state,
                "run": (status.record.result or {}).get("run_id"),
                "seconds": None if status.record.duration_seconds is None else round(status.record.duration_seconds, 1),
                "note": status.record.error or "",
            }
            for status in reversed(ended[-SHOWN_ENDED:])
        ]
        st.dataframe(rows, hide_index=True, width="stretch", key="instructor_ended")


def instructor_view(queue: JobQueue) -> None:
    settings = queue.settings()
    top = st.columns([2, 2, 2, 1])
    if settings.paused:
        if top[0].button("Resume the queue", key="instructor_pause", type="primary", help="Hand the waiting jobs to Ray again, oldest first"):
            act(queue.resume, "The queue is running again.")
            st.rerun()
    elif top[0].button("Pause the queue", key="instructor_pause", help="Running jobs go on; queued and new jobs wait until you resume"):
        act(queue.pause, "The queue is paused: running jobs go on, the others wait.")
        st.rerun()
    if top[1].button("Cancel all jobs", key="instructor_cancel_all", help="Every queued and running job, for every session"):
        act(queue.cancel_all, "Cancelled {outcome} jobs.")
        st.rerun()
    if top[2].button("Clear finished jobs", key="instructor_clear_finished", help="Removes the ended jobs' records; the runs they recorded stay in the history"):
        act(queue.clear_finished, "Cleared {outcome} ended jobs; their runs stay in the history.")
        st.rerun()
    if top[3].button("Lock", key="instructor_lock"):
        lock()
        st.rerun()
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        (st.warning if notice.startswith("Refused") else st.success)(notice)
    queue_table()
    limits_form(queue)
    show_results_board(queue)


ensure_navigation_mode()  # a fresh server's first run may reach a page without app.py: through app.py first
st.title("Instructor")
if not classroom_mode():  # app.py lists the page only on a classroom server; reached anyway, it shows nothing
    st.info(f"This page is for a classroom server, whose job queue it runs: start the lab with `{CLASSROOM_ENV}=1 make run`.")
    st.stop()
queue = job_queue(str(workspace().root))
if instructor_secret() is None:
    st.info(
        f"No instructor secret is set on this server, so this page shows nothing. Set one before the class, either as the environment "
        f'variable `{SECRET_ENV}` when starting the server (`{SECRET_ENV}=… MEL_CLASSROOM=1 make run`) or as `{SECRET_NAME} = "…"` in '
        f"`.streamlit/secrets.toml` (read again when it changes; the variable needs a restart). Choose a long random one: `python -c 'import secrets; print(secrets.token_urlsafe(16))'`."
    )
    st.stop()
if not is_instructor():
    locked_view(queue)
    st.stop()
try:
    instructor_view(queue)
except UserError as error:
    report_error(error)

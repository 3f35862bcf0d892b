"""The queue: one per server process, shared by every browser session.

    queue = JobQueue(workspace)                     # at most cores - 1 jobs at once (MEL_MAX_JOBS)
    job = queue.submit("baseline", config, session_id)
    queue.status(job.job_id)                        # state, place in the queue, progress, ETA, result

Ray runs the jobs (a local cluster by default, a cluster by address or $RAY_ADDRESS), each asking
for one CPU, on a local cluster of `max_running` CPUs: Ray decides what runs when. The queue keeps
the records (store.py), answers "where is my job", and joins identical requests into one job.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass

from core.foundation.errors import UserError
from core.foundation.workspace import Workspace
from core.jobs.kinds import CANCELLED_LINE, CANCELLED_LINES, JOB_KINDS
from core.jobs.store import ACTIVE_STATES, CANCELLED, DONE, FAILED, INTERRUPTED, INTERRUPTED_REASON, QUEUED, RUNNING, JobRecord, JobStore, job_id_for

MAX_JOBS_ENV = "MEL_MAX_JOBS"
POLL_SECONDS = 0.5


def default_max_running() -> int:
    """cores - 1 (at least 1): one core stays with the server, so sliders answer while jobs run."""
    return int(os.environ.get(MAX_JOBS_ENV) or max(1, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class JobStatus:
    record: JobRecord
    place: int | None  # 1 = next to start; None once running or ended
    fraction: float  # 0..1 of the work done
    message: str
    eta_seconds: float | None  # until the job is done; None when nothing yet says how long jobs take

    @property
    def state(self) -> str:
        return self.record.state

    def line(self) -> str:
        """One line a page shows: where the job is, or how it ended."""
        state = self.record.state
        eta = "" if self.eta_seconds is None else f" · ETA {self.eta_seconds:.0f} s"
        if state == QUEUED:
            return f"Queued: place {self.place}{eta}"
        if state == RUNNING:
            return f"Running: {self.fraction:.0%} {self.message}{eta}".rstrip()
        if state == DONE:
            return "Done"
        return f"{state.capitalize()}: {self.record.error}"


def warm_cluster(address: str | None = None, max_running: int | None = None, timeout_seconds: float = 120.0) -> int:
    """Start (or reach) the cluster the queue uses and warm one worker, so a class's first job
    starts at once: Ray's local cluster takes ~15 s of both cores to come up, and on a server that
    starts it at the first Train press every slider waits behind it. Returns the worker's pid."""
    import ray

    from core.jobs.worker import warm_worker
    from core.sweep import engine

    engine.connect(address, local_cpus=max_running or default_max_running())
    return int(ray.get(ray.remote(warm_worker).options(num_cpus=1, max_retries=0).remote(), timeout=timeout_seconds))


class JobQueue:
    def __init__(self, workspace: Workspace, max_running: int | None = None, address: str | None = None):
        self.workspace = workspace
        self.store = JobStore(workspace.root / "jobs")
        self.max_running = max_running or default_max_running()
        self.address = address
        self._references: dict[str, object] = {}  # job id -> Ray ObjectRef, for the jobs this process submitted
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self._closed = threading.Event()
        self._recover_after_restart()

    # ------------------------------------------------------------------ what sessions call
    def submit(self, kind: str, config: dict, session_id: str) -> JobRecord:
        if kind not in JOB_KINDS:
            raise UserError(f"unknown job kind '{kind}'; choose one of {', '.join(JOB_KINDS)}")
        job_id = job_id_for(kind, config)
        with self._lock:
            record = self.store.load(job_id)
            if record is not None and record.state in ACTIVE_STATES and job_id in self._references:
                if session_id not in record.asked_by:
                    record.asked_by.append(session_id)
                    self.store.save(record)
                return record
            record = JobRecord(job_id, kind, config, asked_by=[session_id])
            self.store.clear_run_files(job_id)
            self.store.save(record)
            self._references[job_id] = self._submit_to_ray(record)
            self._ensure_monitor()
            return record

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            record = self.store.load(job_id)
            if record is None:
                return None
            progress = self.store.progress(job_id) if record.state == RUNNING else None
            fraction = 1.0 if record.state == DONE else float(progress["fraction"]) if progress else 0.0
            message = progress["message"] if progress else ""
            if record.state != QUEUED:
                return JobStatus(record, None, fraction, message, self._eta_seconds(record, progress, []))
            others = self.store.all()  # once per status: a queued job's place and ETA both read the whole queue
            return JobStatus(record, self._place(record, others), fraction, message, self._eta_seconds(record, progress, others))

    def cancel(self, job_id: str) -> None:
        """Stop a job for everyone who asked (the instructor's button): a queued job never starts, a
        running one stops at its next batch and saves nothing."""
        import ray

        with self._lock:
            record = self.store.load(job_id)
            if record is None or record.state not in ACTIVE_STATES:
                return
            self.store.cancel_path(job_id).touch()
            if record.state == QUEUED and job_id in self._references:
                ray.cancel(self._references[job_id], force=False)

    def jobs(self) -> list[JobRecord]:
        return self.store.all()

    def close(self) -> None:
        self._closed.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    # ------------------------------------------------------------------ inside
    def _recover_after_restart(self) -> None:
        """Jobs a previous server left queued or running died with it (their Ray workers too)."""
        for record in self.store.all():
            if record.state in ACTIVE_STATES:
                record.state, record.error, record.finished_at = INTERRUPTED, INTERRUPTED_REASON, time.time()
                self.store.save(record)
                self.store.clear_run_files(record.job_id)

    def _submit_to_ray(self, record: JobRecord):
        import ray

        from core.jobs.worker import run_job
        from core.sweep import engine

        engine.connect(self.address, local_cpus=self.max_running)
        remote = ray.remote(run_job).options(num_cpus=1, max_retries=0)
        return remote.remote(record.kind, record.config, str(self.workspace.root), record.job_id, 1)

    def _ensure_monitor(self) -> None:
        if self._monitor is None or not self._monitor.is_alive():
            self._monitor = threading.Thread(target=self._watch, name="job-queue-monitor", daemon=True)
            self._monitor.start()

    def _watch(self) -> None:
        import ray

        while not self._closed.is_set():
            with self._lock:
                references = dict(self._references)
            if not references:
                time.sleep(POLL_SECONDS)
                continue
            done, _ = ray.wait(list(references.values()), num_returns=len(references), timeout=POLL_SECONDS)
            finished = {job_id for job_id, reference in references.items() if reference in done}
            with self._lock:
                for job_id in references:
                    if job_id in finished:
                        self._finish(job_id, references[job_id])
                    else:
                        self._mark_started(job_id)

    def _mark_started(self, job_id: str) -> None:
        record = self.store.load(job_id)
        progress = self.store.progress(job_id)
        if record is not None and record.state == QUEUED and progress is not None:
            record.state, record.started_at = RUNNING, float(progress["started_at"])
            self.store.save(record)

    def _finish(self, job_id: str, reference) -> None:
        import ray

        from core.sweep.engine import failure_reason

        record = self.store.load(job_id)
        self._references.pop(job_id, None)
        if record is None:
            return
        self._mark_started(job_id)
        record = self.store.load(job_id)
        cancelled = self.store.cancel_path(job_id).exists()
        try:
            record.result, record.state = ray.get(reference), DONE
        except ray.exceptions.TaskCancelledError:
            record.state, record.error = CANCELLED, "cancelled before it started"
        except Exception as error:  # the job's own one line (a UserError's message), for every session waiting
            record.state = CANCELLED if cancelled else FAILED
            record.error = CANCELLED_LINES.get(record.kind, CANCELLED_LINE) if cancelled else failure_reason(error)
        record.finished_at = time.time()
        record.started_at = record.started_at or record.finished_at
        self.store.save(record)
        self.store.clear_run_files(job_id)

    def _place(self, record: JobRecord, others: list[JobRecord]) -> int | None:
        if record.state != QUEUED:
            return None
        return 1 + sum(other.state == QUEUED and other.submitted_at < record.submitted_at for other in others)

    @staticmethod
    def _typical_seconds(kind: str, others: list[JobRecord]) -> float | None:
        durations = [other.duration_seconds for other in others if other.kind == kind and other.state == DONE and other.duration_seconds]
        return statistics.median(durations) if durations else None

    def _eta_seconds(self, record: JobRecord, progress: dict | None, others: list[JobRecord]) -> float | None:
        """Seconds left: a running job's own estimate; a queued one's from the jobs ahead of it and
        the median duration of this kind's finished jobs (`others`: every job of the store)."""
        if record.state == RUNNING:
            eta = (progress or {}).get("metrics", {}).get("eta_seconds")
            return None if eta is None else float(eta)
        if record.state != QUEUED:
            return None
        typical = self._typical_seconds(record.kind, others)
        if typical is None:
            return None
        running_left = sum(float((self.store.progress(other.job_id) or {}).get("metrics", {}).get("eta_seconds", typical)) for other in others if other.state == RUNNING)
        ahead = sum(1 for other in others if other.state == QUEUED and other.submitted_at < record.submitted_at)
        return (running_left + ahead * typical) / self.max_running + typical

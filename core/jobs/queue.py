"""The queue: one per server process, shared by every browser session.

    queue = JobQueue(workspace)                     # at most cores - 1 jobs at once (MEL_MAX_JOBS)
    job = queue.submit("baseline", config, session_id)
    queue.status(job.job_id)                        # state, place in the queue, progress, ETA, result
    queue.cancel(job_id); queue.cancel_all(); queue.pause(); queue.resume(); queue.clear_finished()   # the instructor's

Ray runs the jobs (a local cluster by default, a cluster by address or $RAY_ADDRESS), each asking
for one CPU. The queue hands them to Ray in the order they were asked, at most `max_running` at
once (a local cluster of that many CPUs; an existing cluster's CPUs unless MEL_MAX_JOBS says), and
none while the instructor has paused it. It keeps the records (store.py), answers "where is my
job", joins identical requests into one job, and refuses a new job, in one line, when its session
already has its share of the queue or the job is larger than the limits (before it is queued).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import time
from dataclasses import dataclass

from core.foundation.errors import UserError
from core.foundation.workspace import Workspace
from core.jobs.kinds import CANCELLED_LINE, CANCELLED_LINES, JOB_KINDS, JobSize, job_size
from core.jobs.store import ACTIVE_STATES, CANCELLED, DONE, FAILED, INTERRUPTED, INTERRUPTED_REASON, QUEUED, RUNNING, JobRecord, JobStore, QueueSettings, job_id_for

MAX_JOBS_ENV = "MEL_MAX_JOBS"
POLL_SECONDS = 0.5
NOT_STARTED_LINE = "cancelled before it started"
PAUSED_NOTE = "the instructor has paused the queue"


def default_max_running() -> int:
    """cores - 1 (at least 1): one core stays with the server, so sliders answer while jobs run."""
    return int(os.environ.get(MAX_JOBS_ENV) or max(1, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class JobStatus:
    record: JobRecord
    place: int | None  # 1 = next to start; None once running or ended
    fraction: float  # 0..1 of the work done
    message: str
    eta_seconds: float | None  # until the job is done; None when nothing yet says how long jobs take (or the queue is paused)
    paused: bool = False  # the queue is paused: a queued job waits for the instructor

    @property
    def state(self) -> str:
        return self.record.state

    def line(self) -> str:
        """One line a page shows: where the job is, or how it ended."""
        state = self.record.state
        eta = "" if self.eta_seconds is None else f" · ETA {self.eta_seconds:.0f} s"
        if state == QUEUED:
            return f"Queued: place {self.place} · {PAUSED_NOTE}" if self.paused else f"Queued: place {self.place}{eta}"
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


def check_size(kind: str, size: JobSize, settings: QueueSettings) -> None:
    """The instructor's size limits (the configs' own ranges were checked by job_size): one line naming the limit."""
    if settings.max_epochs is not None and size.epochs is not None and size.epochs > settings.max_epochs:
        raise UserError(f"this {kind} job trains for {size.epochs} epochs; the limit on this server is {settings.max_epochs} epochs a training")
    if settings.max_trials is not None and size.trials > settings.max_trials:
        raise UserError(f"this sweep runs up to {size.trials} trials; the limit on this server is {settings.max_trials} trials a sweep")


class JobQueue:
    def __init__(self, workspace: Workspace, max_running: int | None = None, address: str | None = None):
        self.workspace = workspace
        self.store = JobStore(workspace.root / "jobs")
        self._max_running_given = max_running is not None or bool(os.environ.get(MAX_JOBS_ENV))
        self.max_running = max_running or default_max_running()
        self.address = address
        self._references: dict[str, object] = {}  # job id -> Ray ObjectRef, for the jobs this process handed to Ray and that have not ended
        self._pending: list[str] = []  # job ids accepted and not handed to Ray yet, oldest first
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self._closed = threading.Event()
        self._recover_after_restart()

    # ------------------------------------------------------------------ what sessions call
    def submit(self, kind: str, config: dict, session_id: str) -> JobRecord:
        """Queue the job `kind` with `config` for `session_id`, or join the identical job already
        queued or running. A new job is refused (a one-line UserError) when it is larger than the
        limits or its session already has `max_per_session` jobs queued or running; joining adds no
        work, so it is never refused and never counts as the session's."""
        if kind not in JOB_KINDS:
            raise UserError(f"unknown job kind '{kind}'; choose one of {', '.join(JOB_KINDS)}")
        job_id = job_id_for(kind, config)
        with self._lock:
            record = self.store.load(job_id)
            if record is not None and record.state in ACTIVE_STATES and self._tracked(job_id):
                if session_id not in record.asked_by:
                    record.asked_by.append(session_id)
                    self.store.save(record)
                return record
            settings = self.store.settings()
            check_size(kind, job_size(kind, config), settings)
            started = self.session_jobs(session_id)
            if len(started) >= settings.max_per_session:
                raise UserError(
                    f"this session already has {len(started)} job{'s' if len(started) != 1 else ''} queued or running, the most one session may have at once "
                    f"({settings.max_per_session}); wait for one to finish or cancel one"
                )
            record = JobRecord(job_id, kind, config, asked_by=[session_id])
            self.store.clear_run_files(job_id)
            self.store.save(record)
            self._pending.append(job_id)
            self._ensure_monitor()
            try:
                self._dispatch()
            except UserError:
                pass  # a job that cannot reach Ray ends failed, its record holding the cluster's one line, which the page shows
            return self.store.load(job_id) or record

    def session_jobs(self, session_id: str) -> list[JobRecord]:
        """The queued or running jobs `session_id` started (asked for first): its share of the queue."""
        return [record for record in self.store.all() if record.state in ACTIVE_STATES and record.asked_by[:1] == [session_id] and self._tracked(record.job_id)]

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            record = self.store.load(job_id)
            if record is None:
                return None
            paused = self.store.settings().paused
            if record.state != QUEUED:
                return self._status_of(record, [], paused)
            return self._status_of(record, self.store.all(), paused)  # a queued job's place and ETA both read the whole queue

    def statuses(self) -> list[JobStatus]:
        """Every job's status, oldest first, from one reading of the store (the instructor's table)."""
        with self._lock:
            records, paused = self.store.all(), self.store.settings().paused
            return [self._status_of(record, records, paused) for record in records]

    def cancel(self, job_id: str) -> bool:
        """Stop a job for everyone who asked (the instructor's button): a queued job never starts, a
        running one stops at its next batch and saves nothing. False when it had already ended."""
        with self._lock:
            record = self.store.load(job_id)
            if record is None or record.state not in ACTIVE_STATES:
                return False
            self.store.cancel_path(job_id).touch()
            if job_id in self._pending:
                self._pending.remove(job_id)
                self._end_unstarted(record)
            elif record.state == QUEUED and job_id in self._references:
                import ray

                ray.cancel(self._references[job_id], force=False)
            return True

    def cancel_all(self) -> int:
        """Cancel every queued and running job; returns how many."""
        with self._lock:
            return sum(self.cancel(record.job_id) for record in self.store.all() if record.state in ACTIVE_STATES)

    def settings(self) -> QueueSettings:
        return self.store.settings()

    def update_settings(self, **changes) -> QueueSettings:
        """The instructor's settings (QueueSettings' fields), saved for every session; a resume hands the waiting jobs to Ray."""
        with self._lock:
            settings = dataclasses.replace(self.store.settings(), **changes)
            self.store.save_settings(settings)
            if not settings.paused:
                self._ensure_monitor()
            return settings

    def pause(self) -> QueueSettings:
        """Running jobs go on; queued ones, and those asked for meanwhile, wait until resume()."""
        return self.update_settings(paused=True)

    def resume(self) -> QueueSettings:
        return self.update_settings(paused=False)

    def clear_finished(self) -> int:
        """Remove the records of the jobs that have ended (done, failed, cancelled, interrupted): never
        a queued or running one, and never a run they recorded (the history keeps every run). Returns how many."""
        with self._lock:
            ended = [record for record in self.store.all() if record.state not in ACTIVE_STATES and not self._tracked(record.job_id)]
            for record in ended:
                self.store.remove(record.job_id)
            return len(ended)

    def jobs(self) -> list[JobRecord]:
        return self.store.all()

    def close(self) -> None:
        self._closed.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    # ------------------------------------------------------------------ inside
    def _tracked(self, job_id: str) -> bool:
        """Whether this process is running the job or holds it for Ray (a record left by an earlier server is not)."""
        return job_id in self._references or job_id in self._pending

    def _status_of(self, record: JobRecord, others: list[JobRecord], paused: bool) -> JobStatus:
        progress = self.store.progress(record.job_id) if record.state == RUNNING else None
        fraction = 1.0 if record.state == DONE else float(progress["fraction"]) if progress else 0.0
        message = progress["message"] if progress else ""
        waiting = paused and record.state == QUEUED
        eta = None if waiting else self._eta_seconds(record, progress, others)
        return JobStatus(record, self._place(record, others), fraction, message, eta, waiting)

    def _recover_after_restart(self) -> None:
        """Jobs a previous server left queued or running died with it (their Ray workers too)."""
        for record in self.store.all():
            if record.state in ACTIVE_STATES:
                record.state, record.error, record.finished_at = INTERRUPTED, INTERRUPTED_REASON, time.time()
                self.store.save(record)
                self.store.clear_run_files(record.job_id)

    def _end_unstarted(self, record: JobRecord, state: str = CANCELLED, error: str = NOT_STARTED_LINE) -> None:
        record.state, record.error = state, error
        record.finished_at = record.started_at = time.time()
        self.store.save(record)
        self.store.clear_run_files(record.job_id)

    def _dispatch(self) -> None:
        """Hand the waiting jobs to Ray, oldest first, while fewer than max_running are there and the
        queue is not paused (under the lock). A job cancelled while it waited (its cancel file, also
        the CLI's) ends here; one that cannot reach Ray fails with the cluster's one line, raised."""
        for job_id in [job_id for job_id in self._pending if self.store.cancel_path(job_id).exists()]:  # even while paused
            self._pending.remove(job_id)
            record = self.store.load(job_id)
            if record is not None and record.state == QUEUED:
                self._end_unstarted(record)
        if not self._pending or self.store.settings().paused:
            return
        while self._pending and len(self._references) < self.max_running:
            job_id = self._pending.pop(0)
            record = self.store.load(job_id)
            if record is None or record.state != QUEUED:
                continue
            try:
                self._references[job_id] = self._submit_to_ray(record)
            except UserError as error:
                self._end_unstarted(record, FAILED, str(error))
                raise

    def _submit_to_ray(self, record: JobRecord):
        import ray

        from core.jobs.worker import run_job
        from core.sweep import engine

        cluster = engine.connect(self.address, local_cpus=self.max_running)
        if not cluster.local and not self._max_running_given and cluster.cpus:
            self.max_running = cluster.cpus  # an existing cluster: its CPUs bound the jobs, as they bound its trials
        remote = ray.remote(run_job).options(num_cpus=1, max_retries=0)
        return remote.remote(record.kind, record.config, str(self.workspace.root), record.job_id, 1)

    def _ensure_monitor(self) -> None:
        if self._monitor is None or not self._monitor.is_alive():
            self._monitor = threading.Thread(target=self._watch, name="job-queue-monitor", daemon=True)
            self._monitor.start()

    def _watch(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                try:
                    self._dispatch()
                except UserError:
                    pass  # the job's record holds the one line; the next one is tried on the next round
                references = dict(self._references)
            if not references:
                self._closed.wait(POLL_SECONDS)
                continue
            import ray

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
            record.state, record.error = CANCELLED, NOT_STARTED_LINE
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

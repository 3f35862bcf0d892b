"""One JSON file per job in WORKSPACE/jobs/: what was asked, by whom, and how it ended.

The server (the queue) is the only writer of a job's record; the worker running it writes only its
progress file and reads only its cancel file, so neither ever sees the other's half-written file.
The queue's settings (the instructor's: the per-session limit, pause, the size limits) are one more
file, `_settings.json`, which every session of the server and `python -m core jobs` read.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.foundation.errors import UserError
from core.foundation.workspace import atomic_write_json, config_key

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
ACTIVE_STATES = (QUEUED, RUNNING)
INTERRUPTED_REASON = "the server stopped before this job finished; ask for it again"
SETTINGS_FILE = "_settings.json"  # a job id never starts with "_" (it is KIND-HASH)

DEFAULT_MAX_PER_SESSION = 2  # queued or running jobs one browser session may have started at once
MAX_PER_SESSION_CEILING = 100  # the most the instructor may allow


@dataclass(frozen=True)
class QueueSettings:
    """What the instructor sets for the whole queue. None for a size limit: the lab's own (the configs' ranges)."""

    max_per_session: int = DEFAULT_MAX_PER_SESSION
    paused: bool = False  # accepted jobs wait; none is handed to Ray until the queue is resumed
    max_epochs: int | None = None  # the most epochs one training of a job may take
    max_trials: int | None = None  # the most trials one sweep may run

    def validate(self) -> None:
        if isinstance(self.max_per_session, bool) or not isinstance(self.max_per_session, int) or not 1 <= self.max_per_session <= MAX_PER_SESSION_CEILING:
            raise UserError(f"jobs per session must be a whole number from 1 to {MAX_PER_SESSION_CEILING}, got {self.max_per_session!r}")
        if not isinstance(self.paused, bool):
            raise UserError(f"paused must be true or false, got {self.paused!r}")
        for name in ("max_epochs", "max_trials"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"{name.replace('_', ' ')} must be a whole number of at least 1 (or none: the lab's own limit), got {value!r}")


@dataclass
class JobRecord:
    job_id: str
    kind: str  # what runs it: a name in core.jobs.kinds.JOB_KINDS
    config: dict  # the job's whole configuration: identical configurations are one job
    state: str = QUEUED
    asked_by: list[str] = field(default_factory=list)  # session ids, in the order they asked
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None  # one line, for a failed, cancelled or interrupted job
    result: dict | None = None  # what the job returned (small: run id, accuracy, paths)

    @property
    def duration_seconds(self) -> float | None:
        return None if self.started_at is None or self.finished_at is None else self.finished_at - self.started_at


def job_id_for(kind: str, config: dict) -> str:
    return f"{kind}-{config_key({'kind': kind, 'config': config})}"


class JobStore:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def record_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def progress_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.progress.json"

    def cancel_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.cancel"

    def save(self, record: JobRecord) -> None:
        atomic_write_json(self.record_path(record.job_id), asdict(record))

    def load(self, job_id: str) -> JobRecord | None:
        return self._read(self.record_path(job_id))

    def all(self) -> list[JobRecord]:
        records = (self._read(path) for path in sorted(self.root.glob("*.json")) if not path.name.endswith(".progress.json") and not path.name.startswith("_"))
        return sorted((record for record in records if record is not None), key=lambda record: record.submitted_at)

    def remove(self, job_id: str) -> None:
        """An ended job's record and run files (the queue's bookkeeping only: the runs it recorded stay in the history)."""
        self.clear_run_files(job_id)
        self.record_path(job_id).unlink(missing_ok=True)

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    def settings(self) -> QueueSettings:
        """The instructor's settings; the defaults when none were saved. A damaged file gives the
        defaults too (the fair ones: DEFAULT_MAX_PER_SESSION, not paused), never a crash."""
        try:
            settings = QueueSettings(**json.loads(self.settings_path.read_text()))
            settings.validate()
            return settings
        except (OSError, json.JSONDecodeError, TypeError, UserError):
            return QueueSettings()

    def save_settings(self, settings: QueueSettings) -> None:
        settings.validate()
        atomic_write_json(self.settings_path, asdict(settings))

    def progress(self, job_id: str) -> dict | None:
        try:
            return json.loads(self.progress_path(job_id).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def clear_run_files(self, job_id: str) -> None:
        for path in (self.progress_path(job_id), self.cancel_path(job_id)):
            path.unlink(missing_ok=True)

    @staticmethod
    def _read(path: Path) -> JobRecord | None:
        try:
            return JobRecord(**json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError):
            return None  # a damaged record is skipped, never a crash: the job can be asked again

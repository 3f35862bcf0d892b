"""One JSON file per job in WORKSPACE/jobs/: what was asked, by whom, and how it ended.

The server (the queue) is the only writer of a job's record; the worker running it writes only its
progress file and reads only its cancel file, so neither ever sees the other's half-written file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.foundation.workspace import atomic_write_json, config_key

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
ACTIVE_STATES = (QUEUED, RUNNING)
INTERRUPTED_REASON = "the server stopped before this job finished; ask for it again"


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
        records = (self._read(path) for path in sorted(self.root.glob("*.json")) if not path.name.endswith(".progress.json"))
        return sorted((record for record in records if record is not None), key=lambda record: record.submitted_at)

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

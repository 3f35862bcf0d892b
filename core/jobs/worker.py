"""The Ray task that runs one job: progress into the job's progress file, stop when its cancel file
appears. Both are files in the workspace, so the job reports the same way on a cluster that shares it."""

from __future__ import annotations

import time
from pathlib import Path

from core.foundation.errors import UserError
from core.foundation.progress import Progress

PROGRESS_EVERY_SECONDS = 0.5


class CancelFileFlag:
    """A StopFlag: set when the queue has written the job's cancel file."""

    def __init__(self, path: Path):
        self.path = path

    def is_set(self) -> bool:
        return self.path.exists()


def warm_worker() -> int:
    """Import what every job needs (torch, the job kinds' modules) in a Ray worker, which Ray then
    keeps for the first job: a classroom server does this at start (core.jobs.queue.warm_cluster),
    so the first Train press does not wait for the cluster and a worker's torch import."""
    import importlib
    import os

    for name in ("torch", "core.jobs.kinds", "core.foundation.baseline.trained", "core.foundation.training.loop"):
        importlib.import_module(name)
    return os.getpid()


def run_job(kind: str, config: dict, workspace_root: str, job_id: str, threads: int) -> dict:
    import torch

    from core.foundation.workspace import Workspace, atomic_write_json
    from core.jobs.kinds import JOB_KINDS
    from core.jobs.store import JobStore

    torch.set_num_threads(max(1, threads))
    workspace = Workspace.open(workspace_root)
    store = JobStore(workspace.root / "jobs")
    started_at = time.time()
    last_written = [0.0]

    def report(progress: Progress) -> None:
        now = time.time()
        if now - last_written[0] < PROGRESS_EVERY_SECONDS and progress.done < progress.total:
            return
        last_written[0] = now
        numbers = {name: value for name, value in progress.metrics.items() if isinstance(value, (int, float))}
        atomic_write_json(store.progress_path(job_id), {"started_at": started_at, "stage": progress.stage, "fraction": progress.fraction, "message": progress.message, "metrics": numbers})

    stop = CancelFileFlag(store.cancel_path(job_id))
    if stop.is_set():  # cancelled while it waited (e.g. from the CLI, which cannot reach Ray's queue)
        raise UserError("cancelled before it started")
    report(Progress("start", 0, 1, "starting"))
    return JOB_KINDS[kind](config, workspace, report, stop)

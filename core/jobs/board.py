"""The class's results board: every finished run of the server's history, newest first, with the
queued job that recorded it (its kind and how many sessions asked for it). The history is the
server's, so every session sees the same board; clearing the queue's ended jobs never touches it.

    rows = results_board(workspace, queue.jobs())
"""

from __future__ import annotations

import datetime as dt

from core.contract.run_summary import summarize
from core.foundation import history
from core.foundation.workspace import Workspace
from core.jobs.store import DONE, JobRecord

BOARD_ROWS = 200  # the newest runs; a sweep records one row per trial


def results_board(workspace: Workspace, records: list[JobRecord], limit: int = BOARD_ROWS) -> list[dict]:
    """One plain row per run (the newest `limit`): its id, when it finished, technique, dataset and
    model, accuracy, size and latency as the history recorded them, and the job that ran it."""
    jobs_by_run = {int(record.result["run_id"]): record for record in records if record.state == DONE and isinstance(record.result, dict) and isinstance(record.result.get("run_id"), int)}
    rows = []
    for run in history.list_runs(workspace.history_db, newest_first=True, limit=limit):
        summary = summarize(run)
        job = jobs_by_run.get(run.id)
        rows.append(
            {
                "run": run.id,
                "finished": dt.datetime.fromtimestamp(run.finished_at).strftime("%H:%M:%S"),
                "technique": summary.technique,
                "dataset": summary.dataset,
                "model": summary.model,
                "accuracy %": None if summary.accuracy is None else round(100 * summary.accuracy, 2),
                "size KB": None if summary.size_bytes is None else round(summary.size_bytes / 1000, 1),
                "latency ms/image": None if summary.latency_ms_per_image is None else round(summary.latency_ms_per_image, 3),
                "queued as": job.kind if job is not None else "",
                "asked by": len(job.asked_by) if job is not None else None,
            }
        )
    return rows

"""Where a sweep's trials are kept: in the run history, so a stopped or killed sweep loses nothing.

A finished trial is a run like any other, with `params["sweep"] = {"id", "trial", "point"}`, written
by core.contract.record (artifact first, row last). A failed trial made no model; its one-line reason is a
row of `sweep_failures`. Both are written by the driver only, as each trial ends.
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path

from core.foundation import history
from core.foundation.history import RunRecord


def register_sweep(db_path: Path, sweep_id: str, spec: dict) -> None:
    """Remember the sweep's settings (the first time it runs) so it can be listed and resumed."""
    with closing(history.connect(db_path)) as connection, history.transaction(connection):
        connection.execute("INSERT OR IGNORE INTO sweeps (id, created_at, spec_json) VALUES (?, ?, ?)", (sweep_id, time.time(), json.dumps(spec, sort_keys=True, default=str)))


def list_sweeps(db_path: Path) -> list[dict]:
    """Every sweep, newest first: id, created_at, spec."""
    if not Path(db_path).exists():
        return []
    with closing(history.connect(db_path)) as connection:
        rows = connection.execute("SELECT id, created_at, spec_json FROM sweeps ORDER BY created_at DESC").fetchall()
    return [{"id": row[0], "created_at": row[1], "spec": json.loads(row[2])} for row in rows]


def finished_trials(db_path: Path, sweep_id: str) -> dict[str, RunRecord]:
    """The sweep's recorded trials by trial key (the newest run when a key was recorded twice)."""
    if not Path(db_path).exists():
        return {}
    with closing(history.connect(db_path)) as connection:
        ids = [row[0] for row in connection.execute("SELECT id FROM runs WHERE json_extract(params_json, '$.sweep.id') = ? ORDER BY id", (sweep_id,)).fetchall()]
    runs = history.list_runs(db_path, run_ids=ids) if ids else []
    return {run.params["sweep"]["trial"]: run for run in runs}


def failed_trials(db_path: Path, sweep_id: str) -> dict[str, tuple[dict, str]]:
    """The sweep's failed trials by key: (point, one-line reason)."""
    if not Path(db_path).exists():
        return {}
    with closing(history.connect(db_path)) as connection:
        rows = connection.execute("SELECT trial_key, point_json, error FROM sweep_failures WHERE sweep_id = ?", (sweep_id,)).fetchall()
    return {row[0]: (json.loads(row[1]), row[2]) for row in rows}


def record_failure(db_path: Path, sweep_id: str, trial_key: str, point: dict, error: str) -> None:
    with closing(history.connect(db_path)) as connection, history.transaction(connection):
        connection.execute(
            "INSERT OR REPLACE INTO sweep_failures (sweep_id, trial_key, point_json, error, finished_at) VALUES (?, ?, ?, ?, ?)",
            (sweep_id, trial_key, json.dumps(point, sort_keys=True), error, time.time()),
        )

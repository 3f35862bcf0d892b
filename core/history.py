"""The run history: every completed run, from any page or the CLI, as one row in SQLite.

WAL mode lets several browser sessions and CLI processes read while one writes; each insert is a
single transaction, so a crash mid-run leaves no half-written row.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    technique TEXT NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    params_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    artifact_path TEXT,
    pinned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_dataset ON runs(dataset, model, technique);
"""


@dataclass
class RunRecord:
    id: int
    created_at: float
    finished_at: float
    technique: str
    dataset: str
    model: str
    parent_id: int | None
    params: dict
    metrics: dict
    artifact_path: str | None
    pinned: bool


def connect(db_path: Path) -> sqlite3.Connection:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(db_path, timeout=30.0, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.executescript(SCHEMA)
    return connection


def record_run(db_path: Path, technique: str, dataset: str, model: str, params: dict, metrics: dict, parent_id: int | None = None, artifact_path: str | Path | None = None, started_at: float | None = None) -> int:
    """Insert one finished run and return its id."""
    now = time.time()
    with closing(connect(db_path)) as connection:
        cursor = connection.execute(
            "INSERT INTO runs (created_at, finished_at, technique, dataset, model, parent_id, params_json, metrics_json, artifact_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (started_at or now, now, technique, dataset, model, parent_id, json.dumps(params, sort_keys=True, default=str), json.dumps(metrics, sort_keys=True, default=_json_default), str(artifact_path) if artifact_path else None),
        )
        return int(cursor.lastrowid)


def list_runs(db_path: Path) -> list[RunRecord]:
    if not db_path.exists():
        return []
    with closing(connect(db_path)) as connection:
        rows = connection.execute("SELECT id, created_at, finished_at, technique, dataset, model, parent_id, params_json, metrics_json, artifact_path, pinned FROM runs ORDER BY id").fetchall()
    return [RunRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), json.loads(r[8]), r[9], bool(r[10])) for r in rows]


def get_run(db_path: Path, run_id: int) -> RunRecord | None:
    return next((run for run in list_runs(db_path) if run.id == run_id), None)


def delete_run(db_path: Path, run_id: int) -> None:
    with closing(connect(db_path)) as connection:
        connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))


def set_pinned(db_path: Path, run_id: int, pinned: bool) -> None:
    with closing(connect(db_path)) as connection:
        connection.execute("UPDATE runs SET pinned = ? WHERE id = ?", (int(pinned), run_id))


def _json_default(value):
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)

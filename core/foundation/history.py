"""The run history: every completed run, from any page or the CLI, as one row in SQLite.

WAL mode lets several browser sessions and CLI processes read while one writes. A run is written
once, when it has finished, by a single INSERT inside one transaction (its JSON is serialised
before the transaction opens), so a crash mid-run leaves no row at all, never a half-written one.
Writers take the write lock up front (BEGIN IMMEDIATE) and wait for each other through SQLite's
busy timeout, so concurrent writers queue instead of failing.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.foundation.errors import UserError

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
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs(parent_id);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    spec_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_failures (
    sweep_id TEXT NOT NULL,
    trial_key TEXT NOT NULL,
    point_json TEXT NOT NULL,
    error TEXT NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (sweep_id, trial_key)
);
"""
# A sweep's finished trials are runs (params "sweep": {"id", "trial", "point"}); its failed trials,
# which made no model, are rows of sweep_failures (core.sweep.store). Workspaces made before sweeps
# get both tables on first open (CREATE ... IF NOT EXISTS).
COLUMNS = "id, created_at, finished_at, technique, dataset, model, parent_id, params_json, metrics_json, artifact_path, pinned"
BUSY_TIMEOUT_SECONDS = 30.0
FILTER_COLUMNS = ("dataset", "model", "technique")

# Schema creation needs the write lock; doing it once per database per process keeps readers lock-free.
_initialised: set[str] = set()
_initialise_lock = threading.Lock()


# The headline's keys (core.contract.result) a row carries; rows recorded before the technique
# contract (version 1) are read by core.contract.legacy_runs.
HEADLINE_VERSION = 2


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

    @property
    def duration_seconds(self) -> float:
        return self.finished_at - self.created_at


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, foreign keys on."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    existed = db_path.exists()
    connection = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        connection.execute("PRAGMA foreign_keys=ON")
        # Reads the file's header, and only reads: a file that is not a database fails here, unchanged.
        # (Never open the file outside SQLite: closing another descriptor drops this process's locks.)
        connection.execute("PRAGMA schema_version").fetchone()
        key = str(db_path.resolve())
        if key not in _initialised or not existed:
            with _initialise_lock:
                if key not in _initialised or not existed:
                    _initialise(connection)
                    _initialised.add(key)
    except sqlite3.DatabaseError as error:
        connection.close()
        if type(error) is not sqlite3.DatabaseError:  # locked, read-only, ...: not a damaged file
            raise
        remedy = "move it aside or restore it from a backup, then retry"
        if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise UserError(f"{db_path} is not a SQLite database (a half-copied workspace?); {remedy}") from error
        raise UserError(f"{db_path} is a damaged SQLite database ({error}); {remedy}") from error
    return connection


def _initialise(connection: sqlite3.Connection) -> None:
    # Switching to WAL can answer "locked" without waiting while another process creates the file.
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            with transaction(connection):
                for statement in filter(None, (part.strip() for part in SCHEMA.split(";"))):
                    connection.execute(statement)
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: all of it is written, or none."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def record_run(
    db_path: Path, technique: str, dataset: str, model: str, params: dict, metrics: dict, parent_id: int | None = None, artifact_path: str | Path | None = None, started_at: float | None = None
) -> int:
    """Insert one finished run and return its id."""
    now = time.time()
    # Serialised first: a value JSON cannot hold fails here, before the database is touched.
    params_json = json.dumps(finite_for_json(params), sort_keys=True, default=_json_default)
    metrics_json = json.dumps(finite_for_json(metrics), sort_keys=True, default=_json_default)
    row = (started_at if started_at is not None else now, now, technique, dataset, model, parent_id, params_json, metrics_json, str(artifact_path) if artifact_path else None)
    with closing(connect(db_path)) as connection, transaction(connection):
        if parent_id is not None and connection.execute("SELECT 1 FROM runs WHERE id = ?", (parent_id,)).fetchone() is None:
            row = (*row[:5], None, *row[6:])  # the parent was deleted meanwhile: keep the run, drop the dangling link
        cursor = connection.execute(
            "INSERT INTO runs (created_at, finished_at, technique, dataset, model, parent_id, params_json, metrics_json, artifact_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        return int(cursor.lastrowid)


def list_runs(
    db_path: Path,
    dataset: str | None = None,
    model: str | None = None,
    technique: str | None = None,
    run_ids: list[int] | None = None,
    pinned_only: bool = False,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[RunRecord]:
    """Runs matching every given filter (None: any), oldest first unless `newest_first`."""
    if not Path(db_path).exists():
        return []
    clauses, values = [], []
    for column, value in (("dataset", dataset), ("model", model), ("technique", technique)):
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    if run_ids is not None:
        if not run_ids:
            return []
        clauses.append(f"id IN ({','.join('?' * len(run_ids))})")
        values.extend(int(run_id) for run_id in run_ids)
    if pinned_only:
        clauses.append("pinned = 1")
    query = f"SELECT {COLUMNS} FROM runs"
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    query += " ORDER BY id DESC" if newest_first else " ORDER BY id"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    with closing(connect(db_path)) as connection:
        return [_record(row) for row in connection.execute(query, values).fetchall()]


def get_run(db_path: Path, run_id: int) -> RunRecord | None:
    if not Path(db_path).exists():
        return None
    with closing(connect(db_path)) as connection:
        row = connection.execute(f"SELECT {COLUMNS} FROM runs WHERE id = ?", (int(run_id),)).fetchone()
    return _record(row) if row else None


def count_runs(db_path: Path) -> int:
    if not Path(db_path).exists():
        return 0
    with closing(connect(db_path)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def distinct_values(db_path: Path, column: str) -> list[str]:
    """The values a filter can take (datasets, models or techniques present in the history)."""
    if column not in FILTER_COLUMNS:
        raise ValueError(f"cannot filter on {column!r}")
    if not Path(db_path).exists():
        return []
    with closing(connect(db_path)) as connection:
        return [row[0] for row in connection.execute(f"SELECT DISTINCT {column} FROM runs ORDER BY {column}").fetchall()]


def lineage(db_path: Path, run_id: int) -> list[RunRecord]:
    """The run and every run it derives from, root first (baseline -> ... -> run)."""
    if not Path(db_path).exists():
        return []
    query = f"""
        WITH RECURSIVE chain(id, depth) AS (
            SELECT id, 0 FROM runs WHERE id = ?
            UNION ALL
            SELECT runs.parent_id, chain.depth + 1 FROM runs JOIN chain ON runs.id = chain.id
            WHERE runs.parent_id IS NOT NULL AND chain.depth < 1000
        )
        SELECT {", ".join("runs." + c.strip() for c in COLUMNS.split(","))} FROM chain JOIN runs ON runs.id = chain.id ORDER BY chain.depth DESC
    """
    with closing(connect(db_path)) as connection:
        return [_record(row) for row in connection.execute(query, (int(run_id),)).fetchall()]


def descendants(db_path: Path, run_id: int) -> list[RunRecord]:
    """Every run derived, directly or not, from `run_id` (not including it), oldest first."""
    if not Path(db_path).exists():
        return []
    query = f"""
        WITH RECURSIVE below(id) AS (
            SELECT id FROM runs WHERE parent_id = ?
            UNION
            SELECT runs.id FROM runs JOIN below ON runs.parent_id = below.id
        )
        SELECT {", ".join("runs." + c.strip() for c in COLUMNS.split(","))} FROM below JOIN runs ON runs.id = below.id ORDER BY runs.id
    """
    with closing(connect(db_path)) as connection:
        return [_record(row) for row in connection.execute(query, (int(run_id),)).fetchall()]


def delete_run(db_path: Path, run_id: int) -> None:
    """Delete one run; its children move up to its parent, so the lineage stays connected."""
    with closing(connect(db_path)) as connection, transaction(connection):
        row = connection.execute("SELECT parent_id FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            return
        connection.execute("UPDATE runs SET parent_id = ? WHERE parent_id = ?", (row[0], int(run_id)))
        connection.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))


def set_pinned(db_path: Path, run_id: int, pinned: bool) -> None:
    with closing(connect(db_path)) as connection, transaction(connection):
        connection.execute("UPDATE runs SET pinned = ? WHERE id = ?", (int(pinned), int(run_id)))


def set_parent(db_path: Path, run_id: int, parent_id: int | None) -> None:
    """Re-link a run (e.g. a pipeline's distilled student to the baseline it replaces); refuses cycles."""
    with closing(connect(db_path)) as connection, transaction(connection):
        if parent_id is not None:
            ancestor = int(parent_id)
            for _ in range(10_000):
                if ancestor == int(run_id):
                    raise ValueError(f"run {parent_id} derives from run {run_id}; linking them would make a cycle")
                row = connection.execute("SELECT parent_id FROM runs WHERE id = ?", (ancestor,)).fetchone()
                if row is None or row[0] is None:
                    break
                ancestor = row[0]
        connection.execute("UPDATE runs SET parent_id = ? WHERE id = ?", (parent_id, int(run_id)))


def _record(row: tuple) -> RunRecord:
    return RunRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]), json.loads(row[8]), row[9], bool(row[10]))


def finite_for_json(value):
    """`value` with every NaN and infinity (in nested dicts, lists and tuples too) as None, so the
    JSON written from it stays standard (null) and readable by any tool: the stored history and
    the CLI's result line both go through it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_for_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_for_json(item) for item in value]
    return value


def _json_default(value):
    if hasattr(value, "item"):
        item = value.item()
        return None if isinstance(item, float) and not math.isfinite(item) else item
    return str(value)

"""The run history: filters, lineage, delete and pin, concurrent writers, crash safety."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.foundation import history

REPO_ROOT = Path(__file__).resolve().parent.parent


def record(db: Path, technique: str = "prune", parent_id: int | None = None, dataset: str = "digits", model: str = "simple_cnn", **metrics) -> int:
    return history.record_run(db, technique=technique, dataset=dataset, model=model, params={"amount": 0.5}, metrics={"accuracy": 0.9, **metrics}, parent_id=parent_id)


def test_record_and_read_back_every_field(tmp_path):
    db = tmp_path / "runs.sqlite"
    base = record(db, "train", size_bytes=1000, latency_ms=2.5)
    child = history.record_run(
        db,
        technique="prune",
        dataset="digits",
        model="simple_cnn",
        params={"amount": 0.9, "layers": ["conv1"]},
        metrics={"accuracy": 0.8, "gain": float("nan")},
        parent_id=base,
        artifact_path=tmp_path / "art",
        started_at=123.0,
    )
    run = history.get_run(db, child)
    assert (run.technique, run.dataset, run.model, run.parent_id) == ("prune", "digits", "simple_cnn", base)
    assert run.params == {"amount": 0.9, "layers": ["conv1"]}
    assert run.metrics["accuracy"] == 0.8 and run.metrics["gain"] is None  # NaN stored as standard JSON null
    assert run.artifact_path == str(tmp_path / "art") and run.created_at == 123.0 and run.finished_at >= run.created_at
    assert not run.pinned
    assert history.get_run(db, 999) is None
    assert history.list_runs(tmp_path / "absent.sqlite") == []


def test_filters_combine(tmp_path):
    db = tmp_path / "runs.sqlite"
    ids = {
        "a": record(db, "train", dataset="digits"),
        "b": record(db, "prune", dataset="digits"),
        "c": record(db, "prune", dataset="cifar10"),
        "d": record(db, "quantize", dataset="cifar10", model="simple_cnn_narrow"),
    }
    assert [r.id for r in history.list_runs(db, dataset="cifar10")] == [ids["c"], ids["d"]]
    assert [r.id for r in history.list_runs(db, technique="prune")] == [ids["b"], ids["c"]]
    assert [r.id for r in history.list_runs(db, dataset="cifar10", technique="prune")] == [ids["c"]]
    assert [r.id for r in history.list_runs(db, model="simple_cnn_narrow")] == [ids["d"]]
    assert [r.id for r in history.list_runs(db, run_ids=[ids["d"], ids["a"]])] == [ids["a"], ids["d"]]
    assert history.list_runs(db, run_ids=[]) == []
    assert [r.id for r in history.list_runs(db, newest_first=True, limit=2)] == [ids["d"], ids["c"]]
    history.set_pinned(db, ids["b"], True)
    assert [r.id for r in history.list_runs(db, pinned_only=True)] == [ids["b"]]
    history.set_pinned(db, ids["b"], False)
    assert history.list_runs(db, pinned_only=True) == []
    assert history.distinct_values(db, "dataset") == ["cifar10", "digits"]
    assert history.distinct_values(db, "technique") == ["prune", "quantize", "train"]
    with pytest.raises(ValueError):
        history.distinct_values(db, "params_json; DROP TABLE runs")


def test_lineage_and_descendants(tmp_path):
    db = tmp_path / "runs.sqlite"
    base = record(db, "train")
    distilled = record(db, "distill", base)
    pruned = record(db, "prune", distilled)
    quantized = record(db, "quantize", pruned)
    other = record(db, "prune", base)
    assert [r.id for r in history.lineage(db, quantized)] == [base, distilled, pruned, quantized]
    assert [r.id for r in history.lineage(db, base)] == [base]
    assert [r.id for r in history.descendants(db, distilled)] == [pruned, quantized]
    assert [r.id for r in history.descendants(db, base)] == [distilled, pruned, quantized, other]


def test_delete_moves_children_up_to_the_parent(tmp_path):
    db = tmp_path / "runs.sqlite"
    base = record(db, "train")
    middle = record(db, "prune", base)
    leaf = record(db, "quantize", middle)
    history.delete_run(db, middle)
    assert history.get_run(db, middle) is None
    assert history.get_run(db, leaf).parent_id == base
    history.delete_run(db, 12345)  # absent: nothing happens
    assert history.count_runs(db) == 2


def test_set_parent_refuses_a_cycle(tmp_path):
    db = tmp_path / "runs.sqlite"
    base = record(db, "train")
    child = record(db, "prune", base)
    other = record(db, "train")
    history.set_parent(db, child, other)
    assert history.get_run(db, child).parent_id == other
    with pytest.raises(ValueError, match="cycle"):
        history.set_parent(db, other, child)


def test_a_run_whose_parent_was_deleted_meanwhile_is_still_recorded(tmp_path):
    db = tmp_path / "runs.sqlite"
    base = record(db, "train")
    history.delete_run(db, base)
    run_id = record(db, "prune", base)
    assert history.get_run(db, run_id).parent_id is None


def test_a_value_json_cannot_hold_fails_before_anything_is_written(tmp_path):
    db = tmp_path / "runs.sqlite"
    record(db, "train")
    with pytest.raises(TypeError):  # JSON object keys must be strings
        history.record_run(db, "prune", "digits", "simple_cnn", params={}, metrics={("conv1", "conv2"): 0.5})
    assert history.count_runs(db) == 1


def test_journal_is_wal(tmp_path):
    db = tmp_path / "runs.sqlite"
    record(db, "train")
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


WRITER = """
import sys
from pathlib import Path
from core.foundation import history
db, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(count):
    history.record_run(db, technique="prune", dataset="digits", model="simple_cnn", params={"writer": tag, "i": i}, metrics={"accuracy": i / count})
"""


def test_concurrent_threads_and_processes_lose_no_rows(tmp_path):
    db = tmp_path / "runs.sqlite"
    per_writer, threads, processes = 30, 6, 4
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    # The processes start first and create the database themselves, racing each other for it.
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"process-{n}", str(per_writer)], env=env) for n in range(processes)]
    errors: list[BaseException] = []

    def write(tag: str) -> None:
        try:
            for i in range(per_writer):
                history.record_run(db, technique="quantize", dataset="digits", model="simple_cnn", params={"writer": tag, "i": i}, metrics={"accuracy": 0.5})
                history.list_runs(db, technique="quantize", limit=5)  # readers interleaved with writers
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    workers = [threading.Thread(target=write, args=(f"thread-{n}",)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(child.wait(timeout=120) == 0 for child in children)
    assert not errors, errors
    runs = history.list_runs(db)
    assert len(runs) == per_writer * (threads + processes)
    assert len({r.id for r in runs}) == len(runs)
    written = {(r.params["writer"], r.params["i"]) for r in runs}
    assert len(written) == len(runs)  # every (writer, i) exactly once


CRASHER = """
import os, sys
from pathlib import Path
from core.foundation import history
connection = history.connect(Path(sys.argv[1]))
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO runs (created_at, finished_at, technique, dataset, model, params_json, metrics_json) VALUES (0, 0, 'crash', 'digits', 'simple_cnn', '{}', '{}')")
os._exit(1)  # killed mid-write: no COMMIT
"""


def test_a_crash_mid_write_leaves_no_row_and_no_lock(tmp_path):
    db = tmp_path / "runs.sqlite"
    record(db, "train")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    assert subprocess.run([sys.executable, "-c", CRASHER, str(db)], env=env, timeout=60).returncode == 1
    assert [r.technique for r in history.list_runs(db)] == ["train"]
    record(db, "prune")  # the database is writable again at once
    assert history.count_runs(db) == 2


def test_finite_json_keeps_numbers(tmp_path):
    db = tmp_path / "runs.sqlite"
    import numpy as np

    run_id = history.record_run(db, "train", "digits", "simple_cnn", params={}, metrics={"a": np.float32(0.25), "b": [1.0, math.inf], "c": np.float64("nan")})
    assert history.get_run(db, run_id).metrics == {"a": 0.25, "b": [1.0, None], "c": None}

"""The job queue (core/jobs) on a real local Ray cluster of one CPU: joined identical jobs,
place and ETA, cancellation, failures seen by every waiting session, a server killed mid-queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline, load_cached_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.training.records import MAX_EPOCHS
from core.foundation.workspace import Workspace
from core.jobs.queue import JobQueue
from core.jobs.store import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, JobRecord, JobStore
from core.sweep import engine
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
WAIT_SECONDS = 300  # generous: CI may share its cores; nothing here measures speed


def tiny_config(seed: int = 0, epochs: int = 1, dataset: str = "digits") -> dict:
    return asdict(BaselineConfig(DatasetSpec(dataset, train_size=200), "simple_cnn", epochs, seed, "cpu"))


def wait_for(queue: JobQueue, job_id: str, states: tuple[str, ...]):
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline:
        status = queue.status(job_id)
        if status.state in states:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {states}; last {queue.status(job_id)}")


@pytest.fixture(scope="module")
def one_cpu_cluster():
    """A local cluster of exactly one CPU, so one job runs at a time; shut down afterwards so later
    tests (the sweeps) start their own."""
    engine.shutdown()
    engine.connect(None, local_cpus=1)
    yield
    engine.shutdown()


@pytest.fixture()
def queue(one_cpu_cluster, workspace):
    job_queue = JobQueue(workspace, max_running=1)
    yield job_queue
    job_queue.close()


def train_rows(workspace: Workspace) -> int:
    return sum(1 for run in history.list_runs(workspace.history_db) if run.technique == "train")


def test_two_sessions_asking_the_same_training_start_one_job_and_both_get_its_result(queue, workspace):
    first = queue.submit("baseline", tiny_config(), "session-a")
    second = queue.submit("baseline", tiny_config(), "session-b")
    assert first.job_id == second.job_id
    done = wait_for(queue, first.job_id, (DONE, FAILED))
    assert done.state == DONE, done.record.error
    assert done.record.asked_by == ["session-a", "session-b"]
    assert train_rows(workspace) == 1  # trained once
    config = tiny_config()
    baseline = load_cached_baseline(BaselineConfig(DatasetSpec(**config.pop("dataset")), **config), workspace)
    assert baseline is not None and baseline.run_id == done.record.result["run_id"]
    assert done.line() == "Done"


def test_a_closed_session_does_not_cancel_the_job_another_session_waits_for(queue, workspace):
    # 100 epochs (about 10 s on a fast 2-core machine): still running when the second request comes,
    # a moment after the job is seen running, so it joins the job.
    job = queue.submit("baseline", tiny_config(seed=3, epochs=100), "leaves")
    wait_for(queue, job.job_id, (RUNNING,))
    queue.submit("baseline", tiny_config(seed=3, epochs=100), "stays")  # the first session is gone; nothing is called for it
    done = wait_for(queue, job.job_id, (DONE, FAILED, CANCELLED))
    assert done.state == DONE and done.record.asked_by == ["leaves", "stays"]


def test_place_and_eta_come_from_the_records_ahead(workspace):
    store = JobStore(workspace.root / "jobs")
    now = time.time()
    store.save(JobRecord("baseline-done", "baseline", {}, state=DONE, submitted_at=now - 100, started_at=now - 90, finished_at=now - 60))  # took 30 s
    store.save(JobRecord("baseline-first", "baseline", {"seed": 1}, state=QUEUED, submitted_at=now - 5))
    store.save(JobRecord("baseline-second", "baseline", {"seed": 2}, state=QUEUED, submitted_at=now - 1))
    queue = JobQueue.__new__(JobQueue)  # the records alone, without recovering them as a restarted server would
    queue.store, queue.max_running, queue._lock = store, 1, __import__("threading").RLock()
    first, second = queue.status("baseline-first"), queue.status("baseline-second")
    assert (first.place, second.place) == (1, 2)
    assert first.eta_seconds == pytest.approx(30) and second.eta_seconds == pytest.approx(60)
    assert second.line() == "Queued: place 2 · ETA 60 s"


def test_cancel_stops_a_running_job_and_a_queued_one_saving_nothing(queue, workspace):
    # The most epochs a run may take: however fast the machine, the job is still training when the
    # cancel comes (it stops at its next batch, so the test stays short).
    running = queue.submit("baseline", tiny_config(seed=5, epochs=MAX_EPOCHS), "a")
    waiting = queue.submit("baseline", tiny_config(seed=6, epochs=MAX_EPOCHS), "b")
    wait_for(queue, running.job_id, (RUNNING,))
    assert queue.status(waiting.job_id).state == QUEUED  # one CPU: it cannot start while the other runs
    queue.cancel(waiting.job_id)
    queue.cancel(running.job_id)
    for job in (running, waiting):
        ended = wait_for(queue, job.job_id, (CANCELLED, DONE, FAILED))
        assert ended.state == CANCELLED, ended.record
        assert ended.line().startswith("Cancelled: ")
    assert train_rows(workspace) == 0
    assert not list(workspace.checkpoint_dir.glob("simple_cnn-*"))


def test_a_failing_job_reports_its_one_line_to_every_waiting_session(queue, tmp_path):
    config = tiny_config(dataset=f"folder:{tmp_path / 'no-such-folder'}")
    job = queue.submit("baseline", config, "a")
    queue.submit("baseline", config, "b")
    failed = wait_for(queue, job.job_id, (FAILED, DONE))
    assert failed.state == FAILED
    assert "no-such-folder" in failed.record.error and "\n" not in failed.record.error
    assert failed.record.asked_by == ["a", "b"] and failed.line() == f"Failed: {failed.record.error}"


def test_a_cancelled_sweep_stops_between_trials_and_keeps_the_finished_ones(queue, workspace):
    config = tiny_config()
    get_baseline(BaselineConfig(DatasetSpec(**config.pop("dataset")), **config), workspace)  # the sweep's source
    # 98 trials: however fast the machine, the sweep is still running when the cancel comes.
    sweep = {"grid": ["prune.amount=0.01:0.98:0.01"], "search": "grid", "objective": "size", "budget_points": 1.0, "seed": 0}
    job = queue.submit("sweep", {"source": {"baseline": tiny_config()}, "sweep": sweep, "cpus_per_trial": 1, "seed": 0}, "a")
    wait_for(queue, job.job_id, (RUNNING,))
    queue.cancel(job.job_id)
    ended = wait_for(queue, job.job_id, (CANCELLED, DONE, FAILED))
    assert ended.state == CANCELLED and ended.line() == "Cancelled: cancelled; the trials that had finished stay in the history"
    swept = [run for run in history.list_runs(workspace.history_db) if "sweep" in run.params]
    assert len(swept) < 98  # stopped between trials; whatever had finished is recorded


# A server process with two jobs in its queue, killed with SIGKILL. Its Ray side is left out: a
# cluster whose driver is SIGKILLed leaves workers that abort 60 s later and take the test run with
# them. What a restart must handle is what the kill leaves on disk, the records.
KILLED_SERVER = """
import sys, time
from core.jobs.queue import JobQueue
from core.foundation.training.records import MAX_EPOCHS
from core.foundation.workspace import Workspace
JobQueue._submit_to_ray = lambda self, record: object()
JobQueue._ensure_monitor = lambda self: None
queue = JobQueue(Workspace.open(sys.argv[1]), max_running=1)
configs = [{"dataset": {"name": "digits", "train_size": 200, "test_size": None, "subset_seed": 0}, "model": "simple_cnn", "epochs": 40, "seed": seed, "device": "cpu"} for seed in (7, 8)]
jobs = [queue.submit("baseline", config, "s") for config in configs]
print("queued", flush=True)
time.sleep(600)
"""


def test_a_server_killed_with_jobs_queued_restarts_with_the_workspace_intact(workspace):
    server = subprocess.Popen(
        [sys.executable, "-c", KILLED_SERVER, str(workspace.root)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, start_new_session=True
    )
    try:
        assert server.stdout.readline().strip() == "queued"
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)
    records = JobStore(workspace.root / "jobs").all()
    assert [record.state for record in records] == [QUEUED, QUEUED]
    restarted = JobQueue(workspace, max_running=1)  # what the next server start does
    for record in restarted.jobs():
        assert record.state == INTERRUPTED and "ask for it again" in record.error
    history.count_runs(workspace.history_db)  # the history still opens
    assert train_rows(workspace) == 0 and not list(workspace.checkpoint_dir.glob("simple_cnn-*/*.safetensors"))
    assert json.loads(restarted.store.record_path(records[0].job_id).read_text())["state"] == INTERRUPTED

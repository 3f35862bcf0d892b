"""Fair share on the job queue (issue 28): at most N queued or running jobs per browser session, the
limit set by the instructor and kept in the workspace's jobs folder; a job's size checked before it
is queued, refused in one line naming the limit; pause, cancel all and clear finished.

Most of these run on a paused queue, which hands nothing to Ray, so they need no cluster; the last
one resumes a queue on the one-CPU local cluster of tests/test_jobs.py and is marked slow."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest

from core.foundation import history
from core.foundation.baseline.config import BaselineConfig
from core.foundation.data.names import DatasetSpec
from core.foundation.errors import UserError
from core.foundation.training.records import MAX_EPOCHS
from core.jobs.queue import JobQueue
from core.jobs.store import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobStore, QueueSettings, job_id_for
from core.sweep import engine
from tests.conftest import cli_in_process
from tests.test_jobs import wait_for  # the queue tests' own wait for a state

WAIT_SECONDS = 300  # generous: nothing here measures speed


def tiny(seed: int, epochs: int | None = 1, train_size: int | None = 200) -> dict:
    return asdict(BaselineConfig(DatasetSpec("digits", train_size), "simple_cnn", epochs, seed, "cpu"))


def technique(kind: str, seed: int = 0, **fields) -> dict:
    """A page's job configuration of `kind`, from the sidebar's baseline, with `fields` in its technique's part."""
    from core.pruning.config import PruneConfig
    from core.quantization.config import QATConfig

    part, defaults = {"prune": ("prune", PruneConfig), "quantize": ("quantization", QATConfig)}[kind]
    return {"source": {"baseline": tiny(0)}, part: {**defaults().as_dict(), **fields}, "seed": seed}


def sweep_config(grid: list[str], search: str = "grid") -> dict:
    return {"source": {"baseline": tiny(0)}, "sweep": {"grid": grid, "search": search, "objective": "size", "budget_points": 1.0, "seed": 0}, "cpus_per_trial": 1, "seed": 0}


@pytest.fixture()
def paused(workspace):
    """A queue the instructor has paused: jobs are accepted and recorded, none goes to Ray."""
    queue = JobQueue(workspace, max_running=1)
    queue.pause()
    yield queue
    queue.close()


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert text and "\n" not in text
    return text


def test_a_session_has_at_most_two_jobs_and_joining_anothers_job_does_not_count(paused, workspace):
    first, second = paused.submit("baseline", tiny(1), "a"), paused.submit("baseline", tiny(2), "a")
    with pytest.raises(UserError) as refused:
        paused.submit("baseline", tiny(3), "a")
    assert one_line(refused) == "this session already has 2 jobs queued or running, the most one session may have at once (2); wait for one to finish or cancel one"
    assert not JobStore(workspace.root / "jobs").record_path(job_id_for("baseline", tiny(3))).exists()  # nothing queued
    # Session b joins both of a's jobs (no new work), then still starts two of its own.
    assert paused.submit("baseline", tiny(1), "b").job_id == first.job_id and paused.submit("baseline", tiny(2), "b").job_id == second.job_id
    paused.submit("baseline", tiny(4), "b")
    paused.submit("baseline", tiny(5), "b")
    with pytest.raises(UserError):
        paused.submit("baseline", tiny(6), "b")
    assert [len(record.asked_by) for record in paused.jobs()] == [2, 2, 1, 1]
    # A session's ended job frees its place.
    assert paused.cancel(first.job_id)
    paused.submit("baseline", tiny(3), "a")
    assert [record.job_id for record in paused.session_jobs("a")] == [second.job_id, job_id_for("baseline", tiny(3))]


def test_the_instructors_limit_is_kept_in_the_jobs_folder_for_every_session_and_the_cli(paused, workspace, capsys):
    assert cli_in_process(capsys, "jobs", "--max-per-session", "1", "--workspace", str(workspace.root)).returncode == 0
    assert JobQueue(workspace, max_running=1).settings() == QueueSettings(max_per_session=1, paused=True)  # what another server process reads
    paused.submit("baseline", tiny(1), "a")
    with pytest.raises(UserError) as refused:
        paused.submit("baseline", tiny(2), "a")
    assert "(1)" in one_line(refused)
    refused_cli = cli_in_process(capsys, "jobs", "--max-per-session", "0", "--workspace", str(workspace.root))
    assert refused_cli.returncode == 2 and "from 1 to 100, got 0" in refused_cli.stderr and paused.settings().max_per_session == 1
    (workspace.root / "jobs" / "_settings.json").write_text("{not json")
    assert paused.settings() == QueueSettings()  # a damaged file: the fair defaults, never a crash


@pytest.mark.parametrize(
    ("kind", "config", "line"),
    [
        ("baseline", tiny(1, epochs=MAX_EPOCHS + 1), f"--epochs must be between 0 and {MAX_EPOCHS}, got {MAX_EPOCHS + 1}"),
        ("baseline", tiny(1, train_size=10**12), "--train-size must be at most 1000000000, got 1000000000000"),
        ("prune", technique("prune", finetune_epochs=51), "finetune"),
        ("quantize", technique("quantize", epochs=21), "qat-epochs"),
        ("sweep", sweep_config(["prune.amount=0.01:0.99:0.01", "prune.finetune_epochs=0:50:1", "prune.iterative_steps=1:10:1"]), "the grid makes 50490 trials, more than 10000"),
        ("baseline", {"dataset": "digits"}, "this baseline job's configuration is not one the lab makes"),
    ],
)
def test_a_job_over_the_labs_limits_is_refused_in_one_line_before_it_is_queued(paused, workspace, kind, config, line):
    with pytest.raises(UserError) as refused:
        paused.submit(kind, config, "a")
    assert line in one_line(refused)
    assert paused.jobs() == []


def test_the_instructors_size_limits_refuse_larger_jobs_naming_the_limit(paused):
    paused.update_settings(max_epochs=5, max_trials=3)
    with pytest.raises(UserError) as epochs:
        paused.submit("baseline", tiny(1, epochs=6), "a")
    assert one_line(epochs) == "this baseline job trains for 6 epochs; the limit on this server is 5 epochs a training"
    with pytest.raises(UserError) as finetune:
        paused.submit("prune", technique("prune", finetune_epochs=8), "a")
    assert "8 epochs" in one_line(finetune)
    with pytest.raises(UserError) as trials:
        paused.submit("sweep", sweep_config(["prune.amount=0.1:0.4:0.1"]), "a")
    assert one_line(trials) == "this sweep runs up to 4 trials; the limit on this server is 3 trials a sweep"
    paused.submit("sweep", sweep_config(["prune.amount=0.1:0.4:0.1"], "random:3"), "a")  # 3 of the 4 points: allowed
    paused.submit("baseline", tiny(1, epochs=5), "a")
    assert len(paused.jobs()) == 2


def test_pause_cancel_all_and_clear_finished_keep_the_history(paused, workspace, capsys):
    run_id = history.record_run(workspace.history_db, "train", "digits", "simple_cnn", {}, {"accuracy": 0.9})
    jobs = [paused.submit("baseline", tiny(seed), f"s{seed}") for seed in range(3)]
    assert [paused.status(job.job_id).line() for job in jobs] == [f"Queued: place {place} · the instructor has paused the queue" for place in (1, 2, 3)]
    # The CLI's cancel of a waiting job (a file in the jobs folder) ends it even while the queue is paused.
    assert cli_in_process(capsys, "jobs", "--cancel", jobs[0].job_id, "--workspace", str(workspace.root)).returncode == 0
    deadline = time.time() + WAIT_SECONDS
    while paused.status(jobs[0].job_id).state == QUEUED and time.time() < deadline:
        time.sleep(0.1)
    assert paused.status(jobs[0].job_id).line() == "Cancelled: cancelled before it started"
    assert paused.status(jobs[1].job_id).place == 1
    assert paused.clear_finished() == 1 and [job.job_id for job in paused.jobs()] == [jobs[1].job_id, jobs[2].job_id]  # only the ended one
    assert paused.cancel_all() == 2 and {job.state for job in paused.jobs()} == {CANCELLED}
    assert paused.clear_finished() == 2 and paused.jobs() == []
    assert [run.id for run in history.list_runs(workspace.history_db)] == [run_id]  # the history is never touched


def test_a_job_that_cannot_reach_ray_fails_in_its_record_with_the_clusters_one_line(workspace):
    from tests.browser.conftest import free_port

    queue = JobQueue(workspace, max_running=1, address=f"127.0.0.1:{free_port()}")  # nothing listens there
    try:
        record = queue.submit("baseline", tiny(1), "a")
        assert record.state == FAILED and record.error.startswith("cannot reach the Ray cluster at 127.0.0.1:") and "\n" not in record.error
        assert queue.session_jobs("a") == []  # a failed job leaves the session's share
    finally:
        queue.close()


@pytest.fixture(scope="module")
def one_cpu_cluster():
    engine.shutdown()
    engine.connect(None, local_cpus=1)
    yield
    engine.shutdown()


@pytest.mark.slow
def test_a_resumed_queue_runs_what_waited_and_clearing_never_removes_a_running_job(one_cpu_cluster, workspace):
    queue = JobQueue(workspace, max_running=1)
    try:
        queue.pause()
        waiting = queue.submit("baseline", tiny(1), "a")
        # The most epochs a training may take: however fast the machine, it is still running when cleared.
        long = queue.submit("baseline", tiny(2, epochs=MAX_EPOCHS), "b")
        assert queue._references == {}  # paused: nothing was handed to Ray
        queue.resume()
        done = wait_for(queue, waiting.job_id, (DONE, FAILED))  # the oldest first
        assert done.state == DONE, done.record.error
        wait_for(queue, long.job_id, (RUNNING,))
        assert queue.clear_finished() == 1 and [job.job_id for job in queue.jobs()] == [long.job_id]
        assert [run.id for run in history.list_runs(workspace.history_db)] == [done.record.result["run_id"]]  # its run stays
        assert queue.cancel_all() == 1
        assert wait_for(queue, long.job_id, (CANCELLED, DONE, FAILED)).state == CANCELLED
    finally:
        queue.close()

"""AppTest of a classroom server's sidebar (MEL_CLASSROOM=1): "Train baseline" queues a job on the
server's queue, the sidebar follows it, and a second session with the same settings joins it."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.foundation import history
from core.jobs.store import JobStore
from core.sweep import engine
from tests.conftest import REPO_ROOT
from ui.jobs_view import job_queue
from ui.state import CLASSROOM_ENV

pytestmark = pytest.mark.slow
WAIT_SECONDS = 300


def student(train_size: int = 200, epochs: int = 1) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    at.number_input(key="sidebar_train_size").set_value(train_size)
    at.number_input(key="sidebar_epochs").set_value(epochs).run()
    assert not at.exception
    return at


def sidebar_text(at: AppTest) -> str:
    parts = [element.value for kind in (at.sidebar.success, at.sidebar.info, at.sidebar.warning, at.sidebar.error, at.sidebar.caption) for element in kind]
    return " | ".join(map(str, parts))


@pytest.fixture()
def classroom(workspace, monkeypatch):
    monkeypatch.setenv(CLASSROOM_ENV, "1")
    engine.shutdown()
    job_queue.clear()
    yield workspace
    job_queue.clear()
    engine.shutdown()


def test_a_queued_training_is_joined_by_a_second_session_and_both_see_the_baseline(classroom):
    first, second = student(), student()
    first.button(key="sidebar_train").click().run()
    assert not first.exception
    records = JobStore(classroom.root / "jobs").all()
    assert len(records) == 1 and records[0].state in ("queued", "running", "done")
    second.run()  # the same settings: the second student sees the job, not a Train button of its own
    assert "sidebar_train" not in [button.key for button in second.button] or records[0].state == "done"
    assert "Job " in sidebar_text(second) or "Baseline cached" in sidebar_text(second)

    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline and "Baseline cached" not in sidebar_text(first):
        time.sleep(0.5)
        first.run()
    second.run()
    assert "Baseline cached" in sidebar_text(first) and "Baseline cached" in sidebar_text(second)
    assert len(JobStore(classroom.root / "jobs").all()) == 1
    assert sum(1 for run in history.list_runs(classroom.history_db) if run.technique == "train") == 1


def test_a_failed_job_is_one_line_in_the_sidebar_and_the_button_comes_back(classroom, monkeypatch):
    first = student()
    queue = job_queue(str(classroom.root))
    # Break the job the way a real failure would arrive: the kind raises the user's one line in the worker.
    record = queue.submit(
        "baseline", {"dataset": {"name": "folder:/no/such/folder", "train_size": 200, "test_size": None, "subset_seed": 0}, "model": "simple_cnn", "epochs": 1, "seed": 0, "device": "cpu"}, "other"
    )
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline and queue.status(record.job_id).state not in ("failed", "done"):
        time.sleep(0.5)
    assert queue.status(record.job_id).state == "failed"
    first.run()
    assert not first.exception and "sidebar_train" in [button.key for button in first.button]  # other settings: unaffected


def test_the_distillation_teacher_trains_in_the_queue_and_the_page_shows_it_when_done(classroom):
    from core.foundation.baseline.trained import BaselineConfig, get_baseline
    from core.foundation.data.datasets import DatasetSpec

    get_baseline(BaselineConfig(DatasetSpec("digits", 200), epochs=1), classroom)  # the student's baseline, the page's source
    at = student()
    at.switch_page("pages/distillation.py").run()
    at.number_input(key="distill_teacher_epochs").set_value(1).run()
    assert not at.exception and "distill_train_teacher" not in [button.key for button in at.button]  # no in-page training here
    at.button(key="distill_teacher_train").click().run()
    assert not at.exception
    records = JobStore(classroom.root / "jobs").all()
    assert len(records) == 1 and records[0].kind == "baseline" and records[0].config["model"] == "teacher" and records[0].config["epochs"] == 1
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline and not any(metric.label == "Teacher accuracy" for metric in at.metric):
        time.sleep(0.5)
        at.run()
    assert not at.exception and any(metric.label == "Teacher accuracy" for metric in at.metric)
    assert JobStore(classroom.root / "jobs").all()[0].state == "done"

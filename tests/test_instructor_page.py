"""AppTest of the Instructor page on a classroom server (issue 28): without the instructor's secret
nothing of the queue is shown and no instructor action exists; with it, every job with the session
that started it, cancel one or all, pause and resume, clear finished jobs, the per-session limit;
a student's job over their share or over the size limits is one line in the sidebar.

The queue is paused throughout (nothing is handed to Ray), so no cluster starts."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from streamlit.testing.v1 import AppTest

from core.foundation import history
from core.foundation.baseline.config import BaselineConfig
from core.foundation.data.names import DatasetSpec
from core.jobs.store import CANCELLED, QUEUED, JobStore
from tests.conftest import REPO_ROOT
from ui.jobs_view import SECRET_ENV, job_queue
from ui.state import CLASSROOM_ENV

SECRET = "correct-horse-battery-staple-42"
INSTRUCTOR_BUTTONS = {"instructor_pause", "instructor_cancel_all", "instructor_clear_finished", "instructor_lock"}


def tiny(seed: int) -> dict:
    return asdict(BaselineConfig(DatasetSpec("digits", 200), "simple_cnn", 1, seed, "cpu"))


@pytest.fixture()
def classroom(workspace, monkeypatch):
    """A classroom server's process (no torch warmup, so no Ray cluster at first render) whose queue is paused."""
    monkeypatch.setenv(CLASSROOM_ENV, "1")
    monkeypatch.setenv("MEL_TORCH_WARMUP", "0")
    monkeypatch.delenv(SECRET_ENV, raising=False)
    job_queue.clear()
    queue = job_queue(str(workspace.root))
    queue.pause()
    yield queue
    queue.close()
    job_queue.clear()


def instructor_page(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.secrets.update(secrets or {})
    at.switch_page("pages/instructor.py")
    at.run()
    assert not at.exception
    return at


def main_text(at: AppTest) -> str:
    parts = [element.value for kind in ("markdown", "caption", "info", "error", "warning", "success") for element in at.main.get(kind)]
    parts += [frame.value.to_csv() for frame in at.main.get("dataframe")]
    return " | ".join(map(str, parts))


def buttons(at: AppTest) -> set[str]:
    return {button.key for button in at.main.button if button.key}


def unlock(at: AppTest, secret: str) -> AppTest:
    at.text_input(key="instructor_secret_input").input(secret)
    at.button(key="instructor_unlock").click().run()
    assert not at.exception
    return at


def test_off_a_classroom_server_the_page_is_not_listed_and_run_alone_shows_nothing(workspace, monkeypatch):
    monkeypatch.delenv(CLASSROOM_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    at = instructor_page()  # not in the navigation: the default page opens
    assert "Instructor" not in [title.value for title in at.title] and not at.main.text_input
    alone = AppTest.from_file(str(REPO_ROOT / "pages" / "instructor.py"), default_timeout=180)  # the page's own guard, without app.py
    alone.run()
    assert [info.value for info in alone.main.info] == [f"This page is for a classroom server, whose job queue it runs: start the lab with `{CLASSROOM_ENV}=1 make run`."]
    assert not alone.main.text_input and not buttons(alone)


def test_without_a_secret_the_page_says_how_to_set_one_and_shows_nothing(classroom):
    job = classroom.submit("baseline", tiny(1), "alice-session")
    at = instructor_page()
    [info] = at.main.info
    assert SECRET_ENV in info.value and "instructor_secret" in info.value and "secrets.toml" in info.value
    assert not at.main.text_input and not buttons(at) and not at.main.get("dataframe")
    assert job.job_id not in main_text(at) and "alice" not in main_text(at)


def test_a_wrong_secret_unlocks_nothing_and_the_right_one_shows_and_cancels_anothers_job(classroom, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    job = classroom.submit("baseline", tiny(1), "alice-session")
    at = instructor_page()
    assert buttons(at) == {"instructor_unlock"} and job.job_id not in main_text(at)

    unlock(at, "correct-horse-battery-staple-43")
    [error] = at.main.error
    assert error.value == "That is not the instructor's secret; nothing was unlocked."
    assert buttons(at) == {"instructor_unlock"} and at.text_input(key="instructor_secret_input").value == ""
    assert job.job_id not in main_text(at) and classroom.status(job.job_id).state == QUEUED

    unlock(at, SECRET)
    assert INSTRUCTOR_BUTTONS | {f"instructor_cancel_{job.job_id}"} <= buttons(at)
    assert job.job_id in main_text(at) and "alice-se" in main_text(at) and "place 1" in main_text(at)
    at.button(key=f"instructor_cancel_{job.job_id}").click().run()
    assert classroom.status(job.job_id).state == CANCELLED
    assert any(job.job_id in success.value for success in at.main.success)

    monkeypatch.setenv(SECRET_ENV, "a-new-secret-for-the-next-class")  # a changed secret locks every session again
    at.run()
    assert buttons(at) == {"instructor_unlock"}


def test_the_instructor_cancels_all_clears_finished_pauses_and_sets_the_share_with_secrets_toml(classroom, workspace):
    run_id = history.record_run(workspace.history_db, "train", "digits", "simple_cnn", {}, {"accuracy": 0.9})
    jobs = [classroom.submit("baseline", tiny(seed), f"student-{seed}") for seed in (1, 2)]
    at = unlock(instructor_page({"instructor_secret": SECRET}), SECRET)
    assert at.button(key="instructor_pause").label == "Resume the queue"
    at.button(key="instructor_cancel_all").click().run()
    assert {record.state for record in classroom.jobs()} == {CANCELLED} and "Cancelled 2 jobs." in main_text(at)
    at.button(key="instructor_clear_finished").click().run()
    assert classroom.jobs() == [] and not any(JobStore(workspace.root / "jobs").root.glob(f"{jobs[0].job_id}*"))
    assert [run.id for run in history.list_runs(workspace.history_db)] == [run_id]  # the runs stay
    board = at.main.get("dataframe")[-1].value
    assert list(board["run"]) == [run_id]  # the results board, from the history

    at.button(key="instructor_pause").click().run()  # resume: nothing waits, so nothing goes to Ray
    assert not classroom.settings().paused and at.button(key="instructor_pause").label == "Pause the queue"
    at.button(key="instructor_pause").click().run()
    assert classroom.settings().paused

    next(field for field in at.number_input if field.label.startswith("Jobs per session")).set_value(1)
    next(field for field in at.number_input if field.label.startswith("Most epochs")).set_value(5)
    next(button for button in at.button if button.label == "Apply the limits").click().run()
    assert not at.exception
    settings = classroom.settings()
    assert (settings.max_per_session, settings.max_epochs, settings.max_trials, settings.paused) == (1, 5, None, True)


def test_a_students_job_over_their_share_or_the_size_limit_is_one_line_in_the_sidebar(classroom, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    classroom.update_settings(max_epochs=5)
    other = classroom.submit("baseline", tiny(9), "bob-session")
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    at.number_input(key="sidebar_train_size").set_value(200)
    at.number_input(key="sidebar_epochs").set_value(6).run()
    at.button(key="sidebar_train").click().run()
    assert [error.value for error in at.sidebar.error] == ["this baseline job trains for 6 epochs; the limit on this server is 5 epochs a training"]
    assert len(classroom.jobs()) == 1
    at.number_input(key="sidebar_epochs").set_value(1).run()
    for seed in (1, 2, 3):
        at.number_input(key="sidebar_seed").set_value(seed).run()
        at.button(key="sidebar_train").click().run()
        assert not at.exception
    assert [error.value for error in at.sidebar.error] == ["this session already has 2 jobs queued or running, the most one session may have at once (2); wait for one to finish or cancel one"]
    mine = [record for record in classroom.jobs() if record.job_id != other.job_id]
    assert [record.config["seed"] for record in mine] == [1, 2]

    at.switch_page("pages/instructor.py").run()  # locked: the student's own jobs and the board, nobody else's
    assert not at.exception and buttons(at) == {"instructor_unlock"} | {f"own_cancel_{record.job_id}" for record in mine}
    assert all(record.job_id in main_text(at) for record in mine) and other.job_id not in main_text(at)
    at.button(key=f"own_cancel_{mine[0].job_id}").click().run()
    assert classroom.status(mine[0].job_id).state == CANCELLED and classroom.status(other.job_id).state == QUEUED

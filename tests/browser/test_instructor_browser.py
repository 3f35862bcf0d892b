"""The Instructor page in a real browser on a classroom server (issue 28): a student's queued job is
out of reach of a session without the instructor's secret (a wrong one unlocks nothing), and the
instructor, once the secret is entered, sees it with its owner and cancels it for the student.

The queue starts paused (its settings file in the workspace), so no job reaches Ray, and the
server's warmup is off, so no Ray cluster starts."""

from __future__ import annotations

import pytest

from core.foundation.workspace import Workspace
from core.jobs.store import CANCELLED, QUEUED, JobStore, QueueSettings
from tests.browser.conftest import assert_no_exception, main_text, screenshot, start_server, wait_for_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "tiger-lantern-orbit-pebble-77"


@pytest.fixture(scope="module")
def classroom_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("instructor-browser-home")
    JobStore(Workspace.open(root).root / "jobs").save_settings(QueueSettings(paused=True))
    running = start_server(root, {"MEL_CLASSROOM": "1", "MEL_TORCH_WARMUP": "0", "MEL_INSTRUCTOR_SECRET": SECRET})
    yield running
    running.stop()


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_instructor_actions_need_the_secret_and_the_instructor_cancels_a_students_job(classroom_server, browser):
    store = JobStore(classroom_server.workspace / "jobs")
    student = browser.new_page(viewport={"width": 1400, "height": 1000})
    student.goto(classroom_server.url)
    wait_for_idle(student)
    student.get_by_role("button", name="Train baseline").click()
    wait_until(student, lambda: "the instructor has paused the queue" in sidebar_text(student), "the student's job queued behind the pause")
    [job] = store.all()
    assert job.state == QUEUED

    instructor = browser.new_page(viewport={"width": 1400, "height": 1000})
    instructor.goto(f"{classroom_server.url}/instructor")
    wait_for_idle(instructor)
    assert_no_exception(instructor)
    secret_field = instructor.get_by_label("Instructor's secret")
    assert secret_field.get_attribute("type") == "password"
    assert instructor.get_by_role("button", name="Cancel all jobs").count() == 0 and job.job_id not in main_text(instructor)

    secret_field.fill(SECRET[:-1] + "8")
    instructor.get_by_role("button", name="Unlock").click()
    wait_until(instructor, lambda: "That is not the instructor's secret" in main_text(instructor), "the wrong secret refused")
    wait_for_idle(instructor)
    assert instructor.get_by_role("button", name="Cancel all jobs").count() == 0 and job.job_id not in main_text(instructor)
    assert store.load(job.job_id).state == QUEUED

    instructor.get_by_label("Instructor's secret").fill(SECRET)
    instructor.get_by_role("button", name="Unlock").click()
    wait_until(instructor, lambda: job.job_id in main_text(instructor), "the student's job in the instructor's table")
    wait_for_idle(instructor)
    assert instructor.get_by_label("Instructor's secret").count() == 0 and "paused" in main_text(instructor)
    screenshot(instructor, "instructor")
    instructor.get_by_role("button", name="Cancel all jobs").click()
    wait_until(instructor, lambda: store.load(job.job_id).state == CANCELLED, "the job cancelled")
    # The student's sidebar follows the job (once a second) and says how it ended.
    wait_until(student, lambda: "Cancelled: cancelled before it started" in sidebar_text(student), "the student seeing the cancellation")
    assert_no_exception(student)

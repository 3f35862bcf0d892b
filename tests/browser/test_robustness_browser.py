"""Several sessions on one server stay apart; a server killed mid-training loses nothing."""

import signal
import sqlite3

import pytest

from core.foundation.baseline.trained import BaselineConfig, load_cached_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.workspace import Workspace
from tests.browser.conftest import assert_no_exception, choose_option, open_page, press_slider, set_field, start_server, wait_for_idle
from tests.conftest import noise_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_sessions_keep_their_own_settings(server, browser):
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    for page in (first, second):
        page.goto(server.url)
        wait_for_idle(page)
    set_field(first, "Seed", "7")
    first.get_by_text("No baseline yet").wait_for()
    second.reload()
    wait_for_idle(second)
    second.get_by_text("Baseline cached").first.wait_for()
    assert second.get_by_label("Seed").input_value() == "0"
    assert second.get_by_text("Baseline cached").count() == 1 and second.get_by_text("No baseline yet").count() == 0
    assert first.get_by_label("Seed").input_value() == "7"
    for page in (first, second):
        assert_no_exception(page)
        page.context.close()


def test_training_in_one_session_leaves_the_others_responsive(server, browser, tmp_path):
    """While one session trains (torch capped below the core count), another session's slider still
    answers. The training cannot finish within the test, and is stopped at its end: since it then
    saved nothing, it was running before the other session's press, while it was answered and after."""
    folder = noise_folder(tmp_path / "noise")
    trainer = browser.new_context().new_page()
    trainer.goto(server.url)
    wait_for_idle(trainer)
    choose_option(trainer, "Dataset", "folder…")
    set_field(trainer, "Folder with train/ and test/", str(folder))
    trainer.get_by_text("No baseline yet for folder:").wait_for()
    choose_option(trainer, "Device", "cpu")  # a GPU could get through the 200 epochs within the test
    set_field(trainer, "Epochs (empty = classroom preset)", "200")
    trainer.get_by_role("button", name="Train baseline").click()
    trainer.locator('[data-testid="stProgress"]').filter(has_text="/200").wait_for(timeout=120_000)  # "epoch N/200": batches are being trained
    stop = trainer.get_by_role("button", name="Stop training")
    stop.wait_for()

    student = open_page(browser, server, "Pruning")
    press_slider(student, "Amount to prune", "ArrowRight")  # asserts the shown value changed after the rerun
    assert_no_exception(student)
    assert trainer.locator('[data-testid="stProgress"]').count() == 1 and stop.count() == 1  # still training
    stop.click()
    trainer.get_by_text("Training stopped; nothing was saved.").wait_for(timeout=60_000)
    wait_for_idle(trainer)
    assert_no_exception(trainer)
    trainer.get_by_text("No baseline yet for folder:").first.wait_for()
    assert stop.count() == 0 and trainer.locator('[data-testid="stProgress"]').count() == 0
    assert trainer.get_by_text("No baseline yet for folder:").count() == 1  # it never finished
    for page in (trainer, student):
        page.context.close()


def test_killing_the_server_mid_training_leaves_the_workspace_intact(tmp_path, browser, digits_baseline_for_browser):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(digits_baseline_for_browser, home, ignore=shutil.ignore_patterns("streamlit-*.log"))
    with sqlite3.connect(home / "runs.sqlite") as connection:
        runs_before = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    running = start_server(home)
    page = browser.new_page()
    try:
        page.goto(running.url)
        wait_for_idle(page)
        set_field(page, "Epochs (empty = classroom preset)", "200")  # long enough to be killed mid-way
        page.get_by_role("button", name="Train baseline").click()
        page.get_by_text("Training the baseline").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
    finally:
        running.stop(signal.SIGKILL)
        page.close()
    workspace = Workspace.open(home)
    with sqlite3.connect(workspace.history_db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs_before  # the killed run left no row
    assert load_cached_baseline(BaselineConfig(DatasetSpec("digits"), epochs=200), workspace) is None
    assert load_cached_baseline(BaselineConfig(), workspace) is not None
    restarted = start_server(home)
    try:
        page = browser.new_page()
        page.goto(restarted.url)
        wait_for_idle(page)
        page.get_by_text("Baseline: simple_cnn on digits").wait_for()
        assert_no_exception(page)
        page.close()
    finally:
        restarted.stop()

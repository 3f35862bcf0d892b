"""Several sessions on one server stay apart; a server killed mid-training loses nothing."""

import signal
import sqlite3

import pytest

from core.baseline import BaselineConfig, load_cached_baseline
from core.datasets import DatasetSpec
from core.workspace import Workspace
from tests.browser.conftest import assert_no_exception, open_page, press_slider, set_field, start_server, wait_for_idle

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
    assert second.get_by_label("Seed").input_value() == "0"
    assert second.get_by_text("Baseline cached").count() == 1 and second.get_by_text("No baseline yet").count() == 0
    assert first.get_by_label("Seed").input_value() == "7"
    for page in (first, second):
        assert_no_exception(page)
        page.context.close()


def test_training_in_one_session_leaves_the_others_responsive(server, browser):
    """While one session trains (torch capped below the core count), another session's slider
    still answers; the trainer is still training when the answer arrives."""
    trainer = browser.new_context().new_page()
    trainer.goto(server.url)
    wait_for_idle(trainer)
    set_field(trainer, "Seed", "11")  # not cached, and long: 400 epochs
    set_field(trainer, "Epochs (empty = classroom preset)", "400")
    trainer.get_by_role("button", name="Train baseline").click()
    trainer.get_by_text("Training the baseline").wait_for(timeout=60_000)

    student = open_page(browser, server, "Pruning")
    press_slider(student, "Amount to prune", "ArrowRight")  # asserts the shown value changed after the rerun
    assert_no_exception(student)
    assert trainer.get_by_role("button", name="Stop training").count() == 1, "training ended before the other session was answered"
    trainer.get_by_role("button", name="Stop training").click()
    trainer.get_by_text("Training stopped; nothing was saved.").wait_for(timeout=60_000)
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

"""The Overview page and the sidebar in a real browser."""

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, set_field, start_server, wait_for_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_overview_shows_cached_baseline_with_charts(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_for_idle(page)
    assert_no_exception(page)
    page.get_by_text("Baseline: simple_cnn on digits").wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()  # both charts drawn (a wait, not a count: a busy machine draws late)
    page.get_by_text("Baseline cached").first.wait_for()
    assert page.get_by_text("Baseline cached").count() == 1
    screenshot(page, "overview")
    page.close()


def test_training_a_baseline_in_the_browser_updates_the_page(tmp_path, browser):
    running = start_server(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(running.url)
        wait_for_idle(page)
        page.get_by_text("No baseline is trained").wait_for()
        set_field(page, "Epochs (empty = classroom preset)", "3")
        page.get_by_role("button", name="Train baseline").click()
        page.get_by_text("Baseline: simple_cnn on digits").wait_for(timeout=120_000)
        wait_for_idle(page)
        assert_no_exception(page)
        page.locator(".js-plotly-plot").nth(1).wait_for()
        assert page.get_by_text("No baseline is trained").count() == 0
        screenshot(page, "overview-after-training")
        page.close()
    finally:
        running.stop()


def test_a_training_run_can_be_stopped_and_nothing_is_saved(tmp_path, browser):
    running = start_server(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(running.url)
        wait_for_idle(page)
        set_field(page, "Epochs (empty = classroom preset)", "200")
        stop = page.get_by_role("button", name="Stop training")
        assert stop.count() == 0  # offered only while a run is going
        page.get_by_role("button", name="Train baseline").click()
        page.get_by_text("Training the baseline").wait_for(timeout=60_000)
        stop.click()
        page.get_by_text("Training stopped; nothing was saved.").wait_for(timeout=60_000)
        wait_for_idle(page)
        assert_no_exception(page)
        page.get_by_role("button", name="Train baseline").wait_for()
        assert page.get_by_text("No baseline is trained").count() == 1
        assert stop.count() == 0 and page.get_by_role("button", name="Train baseline").count() == 1
        assert not [p for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()]
        page.close()
    finally:
        running.stop()

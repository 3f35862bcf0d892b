"""Every technique page in a real browser: it renders without an exception, draws its Plotly
charts, and answers an interaction with a visible change. Screenshots land in test-output/."""

import pytest

from tests.browser.conftest import assert_no_exception, main_text, open_page, press_slider, screenshot, wait_for_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pruning_page_redraws_when_the_amount_moves(server, browser):
    page = open_page(browser, server, "Pruning")
    page.locator(".js-plotly-plot").first.wait_for()
    before = main_text(page)
    press_slider(page, "Amount to prune", "ArrowRight")
    assert_no_exception(page)
    wait_until(page, lambda: main_text(page) != before, "the page redrawing for the new amount")
    page.locator(".js-plotly-plot").first.wait_for()
    screenshot(page, "pruning")
    page.close()


def test_quantization_page_redraws_when_the_bit_width_moves(server, browser):
    page = open_page(browser, server, "Quantization")
    page.locator(".js-plotly-plot").first.wait_for()
    before = main_text(page)
    press_slider(page, "Weight bits", "ArrowLeft")
    assert_no_exception(page)
    wait_until(page, lambda: main_text(page) != before, "the page redrawing for the new amount")
    screenshot(page, "quantization")
    page.close()


def test_distillation_page_shows_the_cached_teacher_and_races(server, browser):
    page = open_page(browser, server, "Distillation")
    page.get_by_text("Teacher accuracy").wait_for()
    page.get_by_role("button", name="Run the race").click()
    wait_for_idle(page, timeout_ms=300_000)
    assert_no_exception(page)
    page.locator(".js-plotly-plot").nth(1).wait_for()
    screenshot(page, "distillation")
    page.close()


def test_compare_page_draws_charts_and_downloads_a_self_contained_report(server, browser, tmp_path):
    page = open_page(browser, server, "Compare & report")
    page.get_by_role("tab", name="Charts").click()
    wait_for_idle(page)
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_role("tab", name="Export & import").click()
    wait_for_idle(page)
    with page.expect_download(timeout=300_000) as download_info:  # the report is built on click; a busy machine is slow, not wrong
        page.get_by_role("button", name="HTML report").click()
    report = tmp_path / "report.html"
    download_info.value.save_as(report)
    html = report.read_text()
    assert "<html" in html.lower() and "plotly" in html.lower()
    # plotly.js is inlined (its source mentions its CDN in comments, so look for script tags).
    import re

    assert not re.search(r"<script[^>]+src=[\"']?https?:", html)
    assert_no_exception(page)
    screenshot(page, "compare")
    page.close()

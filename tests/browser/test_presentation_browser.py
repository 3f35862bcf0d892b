"""Presentation mode in a real browser: larger text and chart fonts, the sidebar hidden, and one
click back. Sizes are measured with getComputedStyle on the drawn page."""

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MEASURE = """() => {
  const size = selector => {
    const element = document.querySelector(selector);
    return element ? parseFloat(getComputedStyle(element).fontSize) : null;
  };
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const box = sidebar ? sidebar.getBoundingClientRect() : null;
  return {
    title: size('[data-testid="stMainBlockContainer"] h1'),
    subheader: size('[data-testid="stMainBlockContainer"] h3'),
    metric_value: size('[data-testid="stMetricValue"]'),
    metric_label: size('[data-testid="stMetricLabel"]'),
    body_text: size('[data-testid="stMainBlockContainer"] [data-testid="stMarkdown"] p'),
    chart_tick: size('[data-testid="stPlotlyChart"] .xtick text'),
    chart_tick_attribute: (document.querySelector('[data-testid="stPlotlyChart"] .xtick text') || {style: {}}).style.fontSize || null,
    sidebar_visible: !!box && box.width > 0 && box.height > 0 && getComputedStyle(sidebar).display !== 'none',
  };
}"""
TEXT = ("title", "subheader", "metric_value", "metric_label", "body_text")


def measure(page) -> dict:
    return page.evaluate(MEASURE)


def test_presentation_mode_enlarges_the_overview_hides_the_sidebar_and_leaves_in_one_click(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server.url)
    wait_for_idle(page)
    assert_no_exception(page)
    page.locator('[data-testid="stMetricValue"]').first.wait_for()
    page.locator('[data-testid="stPlotlyChart"] .xtick text').first.wait_for()
    normal = measure(page)
    assert all(normal[name] for name in (*TEXT, "chart_tick")), normal
    assert normal["sidebar_visible"]
    assert page.get_by_role("button", name="Leave presentation mode").count() == 0

    page.locator('[data-testid="stSidebar"] [data-testid="stCheckbox"]').filter(has_text="Presentation mode").click()
    wait_for_idle(page)
    wait_until(page, lambda: (measure(page)["chart_tick"] or 0) > normal["chart_tick"], "the charts redrawn with presentation fonts")
    presenting = measure(page)
    assert_no_exception(page)
    print(f"normal: {normal}\npresentation: {presenting}")
    for name in (*TEXT, "chart_tick"):
        assert presenting[name] > normal[name], (name, normal[name], presenting[name])
    assert presenting["chart_tick"] >= 18
    assert not presenting["sidebar_visible"]
    screenshot(page, "overview-presentation")

    page.get_by_role("button", name="Leave presentation mode").click()
    wait_for_idle(page)
    wait_until(page, lambda: measure(page)["chart_tick"] == normal["chart_tick"], "the charts redrawn with normal fonts")
    back = measure(page)
    assert_no_exception(page)
    assert {name: back[name] for name in (*TEXT, "chart_tick")} == {name: normal[name] for name in (*TEXT, "chart_tick")}
    assert back["sidebar_visible"]
    assert page.get_by_role("button", name="Leave presentation mode").count() == 0
    page.close()

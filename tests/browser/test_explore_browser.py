"""The Explore page in a real browser: a two-trial sweep on the server's local Ray cluster, its
frontier chart holding the trials, and the recommended run opened on the Pruning page."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PLAYWRIGHT_TIMEOUT_MS, assert_no_exception, main_text, open_page, screenshot, start_server, wait_for_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The trial run ids drawn in the first rendered frontier chart (Plotly keeps each trace's data on its div).
DRAWN_TRIALS_JS = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!plot.data) continue;
    const ids = [];
    for (const trace of plot.data) {
      if ((trace.meta === 'frontier' || trace.meta === 'dominated') && trace.customdata) ids.push(...Array.from(trace.customdata));
    }
    if (plot.data.some(trace => trace.meta === 'frontier')) return ids;
  }
  return null;
}"""


@pytest.fixture(scope="module")
def explore_server(tmp_path_factory):
    """A server of its own whose workspace holds only the digits baseline, so the sweep's runs stay
    out of the workspace the other browser tests share."""
    from core.foundation.baseline.trained import BaselineConfig, get_baseline
    from core.foundation.workspace import Workspace

    root = tmp_path_factory.mktemp("explore-browser-home")
    get_baseline(BaselineConfig(), Workspace.open(root))
    running = start_server(root)
    yield running
    running.stop()  # the server's own local Ray cluster ends with it


def set_number(page, label: str, value: str) -> None:
    field = page.get_by_role("spinbutton", name=label, exact=True)  # its help button has a label too
    field.fill(value)
    field.press("Enter")
    wait_for_idle(page)


def test_a_sweep_draws_its_frontier_and_opens_the_recommended_run(explore_server, browser):
    page = open_page(browser, explore_server, "Explore")
    page.get_by_text("The same sweep from a terminal").wait_for()
    set_number(page, "Amount to", "0.6")
    wait_until(page, lambda: "prune.amount=0.3:0.6:0.3" in main_text(page), "the grid text following the new range")
    page.get_by_role("button", name="Start the sweep").click()
    # The sweep ends with a rerun that draws the recorded trials; a busy machine is slow, not wrong.
    wait_until(page, lambda: "Recommended: run #" in main_text(page) and "Resume the sweep" in main_text(page), "the sweep finishing with a recommendation", timeout_ms=2 * PLAYWRIGHT_TIMEOUT_MS)
    wait_for_idle(page)
    assert_no_exception(page)
    wait_until(page, lambda: len(page.evaluate(DRAWN_TRIALS_JS) or []) == 2, "the frontier chart holding both trials")
    assert "finished: 2 trial(s) run this time" in main_text(page)
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    screenshot(page, "explore")
    page.get_by_role("button", name="Open on its technique page").click()
    wait_until(page, lambda: "(from the explorer)" in main_text(page), "the opened-run card on the Pruning page")
    wait_for_idle(page)
    assert_no_exception(page)
    assert "Pruning" in main_text(page) and "→" in main_text(page)
    screenshot(page, "explore-opened-run")
    page.get_by_role("button", name="Close").click()
    wait_until(page, lambda: "(from the explorer)" not in main_text(page), "the card closing")
    page.close()


def test_stop_ends_a_running_sweep_and_keeps_the_page_working(explore_server, browser):
    page = open_page(browser, explore_server, "Explore")
    page.get_by_text("The same sweep from a terminal").wait_for()
    # 19 amounts x 50 fine-tuning epochs: minutes of work on any machine, so it is running when stopped.
    set_number(page, "Amount from", "0.05")
    set_number(page, "Amount to", "0.95")
    set_number(page, "Amount step", "0.05")
    epochs = page.get_by_role("combobox", name="Fine-tune epochs")
    epochs.focus()
    epochs.press_sequentially("50")  # filters the options to 50; Enter picks it
    epochs.press("Enter")
    epochs.press("Escape")
    wait_for_idle(page)
    wait_until(page, lambda: "prune.finetune_epochs=0,50" in main_text(page), "the epochs joining the grid")
    page.get_by_role("button", name="Start the sweep").click()
    page.get_by_role("button", name="Stop").click()
    wait_until(page, lambda: "Sweep stopped" in main_text(page), "the page saying the sweep stopped")
    wait_for_idle(page)
    assert_no_exception(page)
    assert page.get_by_role("button", name="Start the sweep").or_(page.get_by_role("button", name="Resume the sweep")).is_enabled()
    screenshot(page, "explore-stopped")
    page.close()

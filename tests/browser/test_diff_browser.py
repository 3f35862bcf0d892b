"""The Pruning page's "What changed" tab in a real browser: after a saved run it shows the gallery of
flipped test images and the layer-by-layer chart. Screenshots land in test-output/."""

import re

import pytest

from core.diff.gallery import DEFAULT_GALLERY_SIZE
from core.diff.runs import diff_runs
from core.foundation.workspace import Workspace
from tests.browser.conftest import assert_no_exception, main_text, open_page, press_slider, screenshot, wait_for_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pruning_what_changed_tab_shows_the_gallery_and_the_layer_chart(server, browser):
    page = open_page(browser, server, "Pruning")
    press_slider(page, "Amount to prune", "End")  # the largest amount: many test images change their prediction
    page.get_by_role("button", name="Prune, fine-tune and save").click()
    wait_until(page, lambda: re.search(r"Saved as run (\d+)", main_text(page)) is not None, "the pruning run being saved")
    wait_for_idle(page)
    run_id = int(re.search(r"Saved as run (\d+)", main_text(page)).group(1))

    page.get_by_role("tab", name="What changed").click()
    wait_for_idle(page)
    assert_no_exception(page)
    flipped = diff_runs(Workspace.open(server.workspace), run_id, with_layers=False).predictions.flipped
    expected_images = min(DEFAULT_GALLERY_SIZE, len(flipped))
    assert expected_images > 0
    panel = page.locator('[data-testid="stMainBlockContainer"]')
    wait_until(page, lambda: panel.locator('[data-testid="stImage"] img').count() == expected_images, f"the gallery showing {expected_images} flipped images")
    # Two layer charts: the slider's setting, and the saved run against its source.
    layer_charts = page.locator(".js-plotly-plot").filter(has_text="Where the error enters")
    wait_until(page, lambda: layer_charts.count() == 2, "both layer-by-layer charts being drawn")
    assert f"run #{run_id}" in layer_charts.nth(1).text_content()
    assert "Top-1 agreement" in main_text(page)
    screenshot(page, "pruning-what-changed")
    page.close()

"""The Compare page's "Example by example" tab in a real browser: a pruned run against its parent
shows the flipped-images gallery as images and the layer chart. Screenshot in test-output/."""

import pytest

from tests.browser.conftest import assert_no_exception, open_page, screenshot, wait_for_idle
from tests.conftest import record_prune_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def pruned_run(digits_baseline_for_browser) -> int:
    """A random 70% pruning of the server's baseline: many test images flip."""
    from core.foundation.baseline.trained import BaselineConfig, get_baseline
    from core.foundation.workspace import Workspace

    workspace = Workspace.open(digits_baseline_for_browser)
    return record_prune_run(get_baseline(BaselineConfig(), workspace), workspace, amount=0.7, method="random")


def test_example_by_example_shows_the_gallery_and_the_layer_chart(pruned_run, server, browser):
    page = open_page(browser, server, "Compare & report")
    page.get_by_role("tab", name="Example by example").click()
    wait_for_idle(page)
    assert_no_exception(page)
    # Run A defaults to the newest compressed run: the pruned one, against its parent.
    page.get_by_text(f"run #{pruned_run} (prune) agrees with").first.wait_for()
    page.get_by_text("Top-1 agreement").first.wait_for()
    gallery = page.locator('[data-testid="stMainBlockContainer"] [data-testid="stImage"] img')
    gallery.first.wait_for()
    assert gallery.count() > 0
    assert gallery.first.evaluate("image => image.complete && image.naturalWidth > 0")  # a real picture, loaded
    layer_chart = page.locator(".js-plotly-plot").filter(has_text="Where the error enters")
    layer_chart.first.wait_for()
    assert_no_exception(page)
    screenshot(page, "compare-example-by-example")
    page.close()

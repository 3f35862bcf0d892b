"""A share link opened in a real browser: the Pruning page comes up with the link's settings."""

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_idle, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_pruning_link_opens_with_its_amount_and_granularity(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server.url}/pruning?seed=0&granularity=channel&amount=0.7")
    wait_for_idle(page)
    assert_no_exception(page)
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Amount to prune").first
    slider.wait_for()
    assert slider.locator('[data-testid="stSliderThumbValue"]').inner_text() == "0.70"
    assert page.get_by_role("radio", name="whole channels (structured)").is_checked()
    assert not page.get_by_role("radio", name="single weights (unstructured)").is_checked()
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    # The address bar keeps the setup (the CLI's names), and the Share expander shows it with its QR code.
    wait_until(page, lambda: "amount=0.7" in page.url and "granularity=channel" in page.url, "the URL holding the setup")
    assert "/pruning?" in page.url and "dataset=digits" in page.url
    page.get_by_text("Share this setup").click()
    wait_for_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert f"{server.url}/pruning?dataset=digits&seed=0&granularity=channel&amount=0.7" in sidebar.locator('[data-testid="stCode"]').inner_text()
    assert sidebar.locator('[data-testid="stImage"] img').count() == 1
    screenshot(page, "share-link")
    # Another page keeps the sidebar's settings in the URL and drops the Pruning page's.
    page.get_by_role("link", name="Quantization").click()
    wait_for_idle(page)
    assert_no_exception(page)
    wait_until(page, lambda: "/quantization" in page.url and "amount=" not in page.url and "granularity=" not in page.url, "the URL following the page")
    assert "dataset=digits" in page.url and "seed=0" in page.url
    page.close()

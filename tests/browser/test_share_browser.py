"""A share link opened in a real browser: the Pruning and Distillation pages come up with the link's settings."""

import pytest

from core.distillation.config import DEFAULT_PRESET, DISTILL_PRESETS
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


def test_a_distillation_link_opens_with_its_preset_and_its_own_values(server, browser):
    preset = next(name for name in DISTILL_PRESETS if name != DEFAULT_PRESET)  # not the page's default, so the link's is seen to apply
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server.url}/distillation?seed=0&preset={preset}&temperature=8&alpha=0.3")
    wait_for_idle(page)
    assert_no_exception(page)
    page.get_by_role("spinbutton", name="Temperature T").wait_for()
    assert page.get_by_role("combobox", name="Preset").input_value() == DISTILL_PRESETS[preset].title
    assert page.get_by_role("spinbutton", name="Temperature T").input_value() == "8.00", "the link's T wins over its preset's"
    alpha = page.locator('[data-testid="stSlider"]').filter(has_text="Weight of the teacher (alpha)").first
    assert alpha.locator('[data-testid="stSliderThumbValue"]').inner_text() == "0.30"
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    # The address bar and the Share expander hold the setup under `python -m core distill`'s names.
    wait_until(page, lambda: f"preset={preset}" in page.url and "temperature=8" in page.url and "alpha=0.3" in page.url, "the URL holding the setup")
    page.get_by_text("Share this setup").click()
    wait_for_idle(page)
    link = page.locator('[data-testid="stSidebar"] [data-testid="stCode"]').inner_text()
    assert f"{server.url}/distillation?dataset=digits&seed=0&preset={preset}&temperature=8&alpha=0.3" in link
    screenshot(page, "share-link-distillation")
    page.close()


def test_an_explore_link_opens_with_its_grid_and_search(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    grid = "grid=prune.amount%3D0.2%3A0.6%3A0.2&grid=prune.granularity%3Dunstructured%2Cchannel"
    page.goto(f"{server.url}/explore?seed=0&{grid}&search=random:3&objective=latency&budget-points=2")
    wait_for_idle(page)
    assert_no_exception(page)
    page.get_by_role("spinbutton", name="Amount from").wait_for()
    assert page.get_by_role("spinbutton", name="Amount from").input_value() == "0.20"
    assert page.get_by_role("spinbutton", name="Amount to").input_value() == "0.60"
    assert page.get_by_role("spinbutton", name="Amount step").input_value() == "0.20"
    assert page.get_by_role("radio", name="random").is_checked()
    assert page.get_by_role("spinbutton", name="Random trials (N)").input_value() == "3"
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    # The page's terminal command makes the same sweep, and the address bar keeps it (one grid per axis).
    command = " ".join(page.locator('[data-testid="stCode"]').filter(has_text="python -m core sweep").first.inner_text().split())
    assert "--grid prune.amount=0.2:0.6:0.2 --grid prune.granularity=unstructured,channel --search random:3 --objective latency --budget-points 2" in command
    wait_until(page, lambda: "/explore?" in page.url and "dataset=digits" in page.url and "grid=prune.granularity" in page.url, "the URL holding the setup")
    assert page.url.count("grid=") == 2 and "objective=latency" in page.url
    screenshot(page, "share-link-explore")
    page.close()

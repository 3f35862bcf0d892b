"""The Compare page's Deploy tab in a real browser (issue 14): a pruned run measured with the fast
runtimes (torch.compile left out) draws the latency chart and the table; its ONNX file, exported
and then downloaded, is an ONNX protobuf with exactly the bytes onnx_for_run hands out.
Screenshot in test-output/."""

import pytest

from core.deploy.runtimes import ONNXRUNTIME
from core.foundation.measures.latency import COMPILED
from tests.browser.conftest import assert_no_exception, choose_option, open_page, screenshot, wait_for_idle, wait_until
from tests.conftest import record_prune_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def pruned_run(digits_baseline_for_browser) -> int:
    from core.foundation.baseline.trained import BaselineConfig, get_baseline
    from core.foundation.workspace import Workspace

    workspace = Workspace.open(digits_baseline_for_browser)
    return record_prune_run(get_baseline(BaselineConfig(), workspace), workspace, amount=0.5, method="l1")


def open_deploy_tab(browser, server, run_id: int):
    page = open_page(browser, server, "Compare & report")
    page.get_by_role("tab", name="Deploy").click()
    wait_for_idle(page)
    assert_no_exception(page)
    choose_option(page, "Run (timed with its source)", f"#{run_id} prune")
    return page


def test_measure_shows_the_runtimes_table_and_chart(pruned_run, server, browser):
    page = open_deploy_tab(browser, server, pruned_run)
    runtimes = page.locator(".st-key-compare_deploy_runtimes")
    runtimes.get_by_role("button", name=f"Remove {COMPILED}").click()  # the slow one out
    wait_for_idle(page)
    wait_until(page, lambda: runtimes.locator(f'[data-tag][aria-label="{COMPILED}"]').count() == 0, "torch.compile leaving the runtimes")
    assert runtimes.locator(f'[data-tag][aria-label="{ONNXRUNTIME}"]').count() == 1
    page.locator(".st-key-compare_deploy_rounds input").fill("1")
    page.locator(".st-key-compare_deploy_rounds input").press("Enter")
    wait_for_idle(page)
    page.locator(".st-key-compare_deploy_measure button").click()
    wait_for_idle(page, timeout_ms=600_000)
    assert_no_exception(page)
    chart = page.locator(".js-plotly-plot").filter(has_text="Latency per image by runtime, batch 256")
    chart.first.wait_for()
    assert chart.first.locator(".bars path").count() > 0  # bars drawn
    table = page.locator('[data-testid="stDataFrame"]').first  # the runtimes table (the Runs tab's is not drawn)
    table.wait_for()
    assert table.locator("canvas, table").count() > 0
    page.get_by_text("Measured ").first.wait_for()
    screenshot(page, "compare-deploy-runtimes")
    page.close()


def test_the_onnx_download_is_the_exported_file(pruned_run, server, browser, tmp_path, digits_baseline_for_browser):
    from core.deploy.export import file_name, onnx_for_run
    from core.foundation.history import get_run
    from core.foundation.workspace import Workspace

    page = open_deploy_tab(browser, server, pruned_run)
    page.locator(f".st-key-compare_deploy_export_{pruned_run}").get_by_role("button", name="Export to ONNX").click()
    wait_for_idle(page, timeout_ms=300_000)
    assert_no_exception(page)
    download_button = page.locator(f".st-key-compare_deploy_download_{pruned_run} button")
    download_button.wait_for()
    page.get_by_text("agrees with torch on").first.wait_for()
    with page.expect_download(timeout=300_000) as download_info:  # built on click, from the cached export
        download_button.click()
    download = download_info.value
    saved = tmp_path / "model.onnx"
    download.save_as(saved)
    data = saved.read_bytes()
    workspace = Workspace.open(digits_baseline_for_browser)
    assert download.suggested_filename == file_name(get_run(workspace.history_db, pruned_run))
    assert data[:1] == b"\x08"  # an ONNX protobuf: field 1 (ir_version, a varint) first
    assert data == onnx_for_run(workspace, pruned_run).onnx_bytes
    wait_until(page, lambda: page.locator('[data-testid="stStatusWidget"]').count() == 0, "the rerun after the click")
    assert_no_exception(page)
    screenshot(page, "compare-deploy-download")
    page.close()

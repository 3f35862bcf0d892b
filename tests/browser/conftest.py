"""A real Streamlit server on a free localhost port, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialing out on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "screenshots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StreamlitServer:
    process: subprocess.Popen
    port: int
    workspace: Path

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def start_server(workspace: Path, extra_env: dict | None = None) -> StreamlitServer:
    port = free_port()
    env = {**os.environ, "MEL_HOME": str(workspace), **(extra_env or {})}
    log = open(workspace / f"streamlit-{port}.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return StreamlitServer(process, port, workspace)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("streamlit did not become healthy within 90 s")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup-dev` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield PatientBrowser(chromium)
        chromium.close()


# Playwright waits 30 s by default for an element or a download. On a machine whose cores are shared
# with other work (CI) the server can take longer than that and still be right, so every page gets
# this much; a test that is really stuck still fails, only later.
PLAYWRIGHT_TIMEOUT_MS = 240_000


class PatientBrowser:
    """The launched browser, with every new context (and so every page) waiting PLAYWRIGHT_TIMEOUT_MS."""

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.set_default_timeout(PLAYWRIGHT_TIMEOUT_MS)
        return context

    def new_page(self, **options):
        page = self._browser.new_page(**options)  # its own context, closed with the page
        page.context.set_default_timeout(PLAYWRIGHT_TIMEOUT_MS)
        return page

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="module")
def server(tmp_path_factory, digits_baseline_for_browser):
    """A server whose workspace already holds the default digits baseline."""
    running = start_server(digits_baseline_for_browser)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def digits_baseline_for_browser(tmp_path_factory) -> Path:
    from core.distillation.config import DistillConfig, teacher_config
    from core.foundation.baseline.trained import BaselineConfig, get_baseline
    from core.foundation.data.datasets import DatasetSpec
    from core.foundation.workspace import Workspace

    root = tmp_path_factory.mktemp("browser-home")
    get_baseline(BaselineConfig(), Workspace.open(root))
    # The distillation page's default teacher, so the browser test races instead of waiting for it.
    get_baseline(teacher_config(DistillConfig(), DatasetSpec("digits")), Workspace.open(root))
    return root


def wait_for_idle(page, timeout_ms: int = 180_000) -> None:
    """Wait until Streamlit has finished its script run: the main area has content and the
    "running" status widget has stayed away for a second."""
    deadline = time.time() + timeout_ms / 1000
    quiet_since = None
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        has_content = page.locator('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]').count() > 0
        if running or not has_content:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since >= 1.0:
            return
        page.wait_for_timeout(200)
    raise TimeoutError(f"the Streamlit script was still running after {timeout_ms / 1000:.0f} s")


def assert_no_exception(page) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()


def screenshot(page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)


def set_field(page, label, value: str) -> None:
    """Type into a labelled input, submit it with Enter and wait for the rerun to finish."""
    field = page.get_by_label(label)
    field.fill(value)
    field.press("Enter")
    wait_for_idle(page)


def choose_option(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` and wait for the rerun to finish."""
    box = page.get_by_role("combobox", name=label)
    box.focus()
    box.press("ArrowDown")  # opens the list (a click only focuses the search field)
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_idle(page)
    assert box.input_value() == option


def open_page(browser, server, link_name):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server.url)
    wait_for_idle(page)
    page.get_by_role("link", name=link_name).click()
    wait_for_idle(page)
    assert_no_exception(page)
    return page


def main_text(page) -> str:
    return page.locator('[data-testid="stMainBlockContainer"]').inner_text()


def wait_until(page, predicate, what: str, timeout_ms: int = PLAYWRIGHT_TIMEOUT_MS) -> None:
    """Poll `predicate` until it holds: a page's rerun may start late on a busy machine, so a
    change is waited for, never assumed to have happened by a fixed moment."""
    deadline = time.time() + timeout_ms / 1000
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_ms / 1000:.0f} s")
        page.wait_for_timeout(200)


def press_slider(page, label, key):
    widget = page.locator('[data-testid="stSlider"]').filter(has_text=label).first
    shown_value = widget.locator('[data-testid="stSliderThumbValue"]')
    before = shown_value.inner_text()
    widget.get_by_role("slider").focus()
    widget.get_by_role("slider").press(key)
    wait_for_idle(page)
    assert shown_value.inner_text() != before

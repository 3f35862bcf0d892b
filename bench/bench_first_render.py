"""First render and page switches: how soon a fresh server shows the Overview, and how fast pages switch.

    .venv/bin/python bench/bench_first_render.py [--starts 3]
    .venv/bin/python bench/bench_first_render.py --starts 1 --output /tmp/first-render.json   # smoke run

Each start launches `streamlit run app.py` on a workspace whose digits baseline is cached, with a
Chromium already open (as a student's browser is), and times from the launch until the Overview's
two charts are drawn. Then, on the same page: the first switch to Pruning (its ML modules may still
be loading in the background), and warm switches Overview <-> Pruning, each timed until the page's
content is there and the running indicator has gone. Targets (2 cores): charts <= 5 s after the
launch, a warm page switch <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO_ROOT, add_output_option, write_results  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


IDLE_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')"""
WARM_SWITCHES = 3  # per direction and start


def wait_until_idle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(IDLE_JS, polling=50, timeout=timeout_ms)


def overview_drawn(page) -> None:
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", polling=50, timeout=120_000)
    wait_until_idle(page)


def pruning_drawn(page) -> None:
    page.get_by_text("Amount to prune").first.wait_for(timeout=120_000)
    wait_until_idle(page)


def switch(page, title: str, drawn) -> float:
    start = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    drawn(page)
    return time.perf_counter() - start


def one_start(browser, workspace: Path) -> dict:
    port = free_port()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=REPO_ROOT,
        env={**os.environ, "MEL_HOME": str(workspace)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.perf_counter() - start > 120:
                    raise RuntimeError("the server did not come up within 120 s") from None
                time.sleep(0.05)
        healthy = time.perf_counter() - start
        page.goto(f"http://127.0.0.1:{port}/")
        overview_drawn(page)
        rendered = time.perf_counter() - start
        first_switch = switch(page, "Pruning", pruning_drawn)
        warm = {"to_pruning": [], "to_overview": []}
        for _ in range(WARM_SWITCHES):
            warm["to_overview"].append(switch(page, "Overview", overview_drawn))
            warm["to_pruning"].append(switch(page, "Pruning", pruning_drawn))
    finally:
        page.close()
        server.terminate()
        server.wait(timeout=30)
    row = {
        "server_healthy_seconds": healthy,
        "first_render_seconds": rendered,
        "first_switch_to_pruning_seconds": first_switch,
        "warm_switch_to_pruning_seconds": warm["to_pruning"],
        "warm_switch_to_overview_seconds": warm["to_overview"],
    }
    print(
        f"healthy {healthy:.2f} s, Overview charts {rendered:.2f} s, first switch to Pruning {first_switch:.2f} s, "
        f"warm switches to Pruning {', '.join(f'{s:.2f}' for s in warm['to_pruning'])} s, to Overview {', '.join(f'{s:.2f}' for s in warm['to_overview'])} s",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=3, help="fresh server starts to time (default 3)")
    add_output_option(parser, "first-render")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workspace = Workspace.open(tempfile.mkdtemp(prefix="mel-bench-render-"))
    get_baseline(BaselineConfig(), workspace)  # the Overview shows the cached digits baseline
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        rows = [one_start(browser, workspace.root) for _ in range(args.starts)]
        browser.close()
    warm = [seconds for row in rows for key in ("warm_switch_to_pruning_seconds", "warm_switch_to_overview_seconds") for seconds in row[key]]
    summary = {
        "starts": len(rows),
        "first_render_seconds_median": statistics.median(row["first_render_seconds"] for row in rows),
        "first_render_seconds_max": max(row["first_render_seconds"] for row in rows),
        "first_switch_seconds_median": statistics.median(row["first_switch_to_pruning_seconds"] for row in rows),
        "warm_switch_seconds_median": statistics.median(warm),
        "warm_switch_seconds_max": max(warm),
        "targets": {"first_render_seconds": 5.0, "warm_switch_seconds": 1.0},
    }
    print(
        f"first render median {summary['first_render_seconds_median']:.2f} s (max {summary['first_render_seconds_max']:.2f}; target <= 5), "
        f"warm switch median {summary['warm_switch_seconds_median']:.2f} s (max {summary['warm_switch_seconds_max']:.2f}; target <= 1)"
    )
    print("wrote", write_results("first-render", {"summary": summary, "starts": rows}, args.output))


if __name__ == "__main__":
    main()

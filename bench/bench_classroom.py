"""Classroom load: N browser sessions (default 20) on one server drive the same interactions.

    .venv/bin/python bench/bench_classroom.py [--sessions 20]

Each session opens the Overview (baseline cached), switches to the Pruning page and moves the
amount slider three times. Reports per-interaction latency (median, p95), errors, and the server's
peak memory. Target on a 2-core machine: 20 sessions, zero errors, slider p95 <= 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_results  # noqa: E402
from core.baseline import BaselineConfig, get_baseline  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

IDLE_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && document.querySelectorAll('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]').length > 0"""


async def wait_idle(page, timeout_s: float = 120.0) -> None:
    """Idle = no running indicator and content present, held for 0.5 s."""
    deadline = time.perf_counter() + timeout_s
    quiet_since = None
    while time.perf_counter() < deadline:
        if await page.evaluate(IDLE_JS):
            quiet_since = quiet_since or time.perf_counter()
            if time.perf_counter() - quiet_since >= 0.5:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.1)
    raise TimeoutError("script run did not finish")


async def timed(latencies: dict, name: str, action) -> None:
    start = time.perf_counter()
    await action()
    # The 0.5 s quiet window proves the run ended; it is not part of the user's wait.
    latencies.setdefault(name, []).append(time.perf_counter() - start - 0.5)


async def one_session(browser, url: str, latencies: dict, errors: list, index: int) -> None:
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    try:

        async def open_overview():
            await page.goto(url)
            await page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
            await wait_idle(page)

        await timed(latencies, "open overview", open_overview)

        async def open_pruning():
            await page.get_by_role("link", name="Pruning").click()
            await page.get_by_text("Amount to prune").wait_for(timeout=120_000)
            await wait_idle(page)

        await timed(latencies, "switch to pruning page", open_pruning)
        widget = page.locator('[data-testid="stSlider"]').filter(has_text="Amount to prune").first
        slider = widget.get_by_role("slider")
        shown_value = widget.locator('[data-testid="stSliderThumbValue"]')
        for _ in range(3):
            before = await shown_value.inner_text()

            async def move_slider():
                await slider.focus()
                await slider.press("ArrowRight")
                await wait_idle(page)

            await timed(latencies, "pruning slider", move_slider)
            after = await shown_value.inner_text()
            if before == after:
                errors.append(f"session {index}: the slider did not move ({before})")
        if await page.locator('[data-testid="stException"]').count():
            errors.append(f"session {index}: exception shown: {(await page.locator('[data-testid=stException]').first.inner_text())[:200]}")
    except Exception as error:  # a timeout or a broken page is what this benchmark counts
        errors.append(f"session {index}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    finally:
        await context.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(sessions: int, url: str) -> tuple[dict, list]:
    from playwright.async_api import async_playwright

    latencies: dict = {}
    errors: list = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await asyncio.gather(*(one_session(browser, url, latencies, errors, i) for i in range(sessions)))
        await browser.close()
    return latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mel-classroom-"))
    get_baseline(BaselineConfig(), Workspace.open(home))  # the cached digits baseline the class starts from
    server = start_server(home)
    try:
        start = time.perf_counter()
        latencies, errors = asyncio.run(run(args.sessions, server.url))
        wall = time.perf_counter() - start
        peak_mb = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
    summary = {name: {"count": len(values), "median_s": statistics.median(values), "p95_s": percentile(values, 0.95), "max_s": max(values)} for name, values in latencies.items()}
    for name, row in summary.items():
        print(f"{name:24s} n={row['count']:3d} median {row['median_s']:.2f} s  p95 {row['p95_s']:.2f} s  max {row['max_s']:.2f} s")
    print(f"errors: {len(errors)}; server peak RSS {peak_mb:.0f} MB; wall {wall:.1f} s")
    for error in errors[:10]:
        print("  ", error)
    write_results("classroom", {"sessions": args.sessions, "interactions": summary, "errors": errors, "server_peak_rss_mb": peak_mb, "wall_seconds": wall})


if __name__ == "__main__":
    main()

"""Classroom load: N browser sessions (default 20) on one server drive the same interactions.

    .venv/bin/python bench/bench_classroom.py [--sessions 20]
    .venv/bin/python bench/bench_classroom.py --sessions 2 --ramp 1 --output /tmp/classroom.json   # smoke run

Like a class told "open the link, go to Pruning, now move the slider": the sessions arrive over
--ramp seconds (one browser each), open the Overview (baseline cached) and switch to the Pruning
page; once every session is there, each moves the amount slider three times, thinking 1 to 5 s
(seeded) before each move. Reports per-interaction latency (median, p95), errors, and the server's
peak memory. Target on a 2-core machine: 20 sessions, zero errors, slider p95 <= 3 s.

The browsers run on the same two cores as the server (in a classroom they run on the students'
machines), so every figure here includes rendering twenty pages locally: a pessimistic measure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_output_option, write_results  # noqa: E402
from core.baseline import BaselineConfig, get_baseline  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

# Both checks run inside the page (wait_for_function polls there), not by round trips from this
# process: twenty pages polled over the DevTools protocol would load the shared CPU themselves.
IDLE_JS = """() => {
    const idle = !document.querySelector('[data-testid="stStatusWidget"]')
        && document.querySelectorAll('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]').length > 0;
    if (!idle) { window.__idleSince = null; return false; }
    window.__idleSince = window.__idleSince || performance.now();
    return performance.now() - window.__idleSince >= 500;
}"""
METRIC_CHANGED_JS = """([label, before]) => {
    const metric = [...document.querySelectorAll('[data-testid="stMetric"]')].find((m) => m.textContent.includes(label));
    const value = metric && metric.querySelector('[data-testid="stMetricValue"]');
    return Boolean(value) && value.textContent !== before;
}"""


async def wait_idle(page, timeout_s: float = 120.0) -> None:
    """Idle = no running indicator and content present, held for 0.5 s."""
    await page.evaluate("() => { window.__idleSince = null; }")
    await page.wait_for_function(IDLE_JS, polling=200, timeout=timeout_s * 1000)


async def timed(latencies: dict, name: str, action) -> None:
    start = time.perf_counter()
    await action()
    # The 0.5 s quiet window proves the run ended; it is not part of the user's wait.
    latencies.setdefault(name, []).append(time.perf_counter() - start - 0.5)


class Gate:
    """Opens once every session has reported ready (or failed), so slider moves start together."""

    def __init__(self, sessions: int):
        self.waiting, self.opened = sessions, asyncio.Event()

    def arrive(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0:
            self.opened.set()


async def one_session(browser, url: str, latencies: dict, errors: list, index: int, gate: Gate, ramp_s: float) -> None:
    await asyncio.sleep(ramp_s * index)
    context = await browser.new_context(viewport={"width": 1300, "height": 900}, reduced_motion="reduce")
    page = await context.new_page()
    arrived = False
    think = random.Random(index)
    try:

        async def open_overview():
            await page.goto(url, wait_until="commit", timeout=120_000)
            await page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
            await wait_idle(page)

        await timed(latencies, "open overview", open_overview)

        async def open_pruning():
            await page.get_by_role("link", name="Pruning").click()
            await page.get_by_text("Amount to prune").wait_for(timeout=120_000)
            await wait_idle(page)

        await timed(latencies, "switch to pruning page", open_pruning)
        gate.arrive()
        arrived = True
        await gate.opened.wait()
        widget = page.locator('[data-testid="stSlider"]').filter(has_text="Amount to prune").first
        slider = widget.get_by_role("slider")
        shown_value = widget.locator('[data-testid="stSliderThumbValue"]')
        zero_weights = page.locator('[data-testid="stMetric"]').filter(has_text="Zero weights").locator('[data-testid="stMetricValue"]')
        for _ in range(3):
            await asyncio.sleep(think.uniform(1.0, 5.0))
            before, shown_before = await shown_value.inner_text(), await zero_weights.inner_text()
            # Timed from the key press until the page shows the new sparsity: what the student waits for.
            start = time.perf_counter()
            await slider.focus()
            await slider.press("ArrowRight")
            await page.wait_for_function(METRIC_CHANGED_JS, arg=["Zero weights", shown_before], polling=50, timeout=120_000)
            latencies.setdefault("pruning slider", []).append(time.perf_counter() - start)
            await wait_idle(page)
            if await shown_value.inner_text() == before or await zero_weights.inner_text() == shown_before:
                errors.append(f"session {index}: the slider or the sparsity it shows did not change ({before}, {shown_before})")
        if await page.locator('[data-testid="stException"]').count():
            errors.append(f"session {index}: exception shown: {(await page.locator('[data-testid=stException]').first.inner_text())[:200]}")
    except Exception as error:  # a timeout or a broken page is what this benchmark counts
        errors.append(f"session {index}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
        await page.screenshot(path=f"/tmp/classroom-failed-session-{index}.png")
    finally:
        if not arrived:
            gate.arrive()
        await context.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(sessions: int, url: str, ramp_s: float) -> tuple[dict, list]:
    from playwright.async_api import async_playwright

    latencies: dict = {}
    errors: list = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        gate = Gate(sessions)
        await asyncio.gather(*(one_session(browser, url, latencies, errors, i, gate, ramp_s) for i in range(sessions)))
        await browser.close()
    return latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds between two sessions' arrivals (default 1)")
    add_output_option(parser, "classroom")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mel-classroom-"))
    get_baseline(BaselineConfig(), Workspace.open(home))  # the cached digits baseline the class starts from
    server = start_server(home)
    try:
        start = time.perf_counter()
        latencies, errors = asyncio.run(run(args.sessions, server.url, args.ramp))
        wall = time.perf_counter() - start
        peak_mb = peak_rss_mb(server.process.pid)
        server_cpu = cpu_seconds(server.process.pid)
    finally:
        server.stop()
    summary = {name: {"count": len(values), "median_s": statistics.median(values), "p95_s": percentile(values, 0.95), "max_s": max(values)} for name, values in latencies.items()}
    for name, row in summary.items():
        print(f"{name:24s} n={row['count']:3d} median {row['median_s']:.2f} s  p95 {row['p95_s']:.2f} s  max {row['max_s']:.2f} s")
    print(f"errors: {len(errors)}; server peak RSS {peak_mb:.0f} MB; server CPU {server_cpu:.0f} s of {(os.cpu_count() or 1) * wall:.0f} core-seconds; wall {wall:.1f} s")
    for error in errors[:10]:
        print("  ", error)
    path = write_results("classroom", {"sessions": args.sessions, "ramp_seconds": args.ramp, "interactions": summary, "errors": errors, "server_peak_rss_mb": peak_mb, "server_cpu_seconds": server_cpu, "cores": os.cpu_count(), "wall_seconds": wall}, args.output)
    print("wrote", path)


if __name__ == "__main__":
    main()

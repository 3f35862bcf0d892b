"""The Chromium observer: one real browser session (Debian's chromium through Playwright) that does what a
student does and measures what a student sees, from the key press until the metric changes and until the
page is idle."""

from __future__ import annotations

import asyncio
import random
import time

from bench.classroom.scenario import METRIC, Log
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

# Both checks run inside the page (wait_for_function polls there), as in the old bench.
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


async def wait_idle(page, timeout_s: float) -> None:
    """Idle = no running indicator and content present, held for 0.5 s."""
    await page.evaluate("() => { window.__idleSince = null; }")
    await page.wait_for_function(IDLE_JS, polling=200, timeout=timeout_s * 1000)


async def observer(url: str, log: Log, args, start_at: float) -> dict:
    from playwright.async_api import async_playwright

    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    think = random.Random(args.seed * 1000 + 999)
    timeout_ms = args.timeout * 1000
    facts = {"reached_pruning": False}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1300, "height": 900}, reduced_motion="reduce")
        context.set_default_timeout(timeout_ms)
        page = await context.new_page()
        step = "open overview"
        try:
            at, start = time.time(), time.perf_counter()
            await page.goto(url, wait_until="commit", timeout=timeout_ms)
            await page.locator(".js-plotly-plot").first.wait_for(timeout=timeout_ms)
            await wait_idle(page, args.timeout)
            log.add("chromium", step, at, time.perf_counter() - start - 0.5, who="chromium")  # the 0.5 s quiet window is not the user's wait
            await asyncio.sleep(think.uniform(1.0, 3.0))
            step = "switch to pruning"
            at, start = time.time(), time.perf_counter()
            await page.get_by_role("link", name="Pruning").click()
            await page.get_by_text("Amount to prune").wait_for(timeout=timeout_ms)
            await wait_idle(page, args.timeout)
            log.add("chromium", step, at, time.perf_counter() - start - 0.5, who="chromium")
            facts["reached_pruning"] = True
            widget = page.locator('[data-testid="stSlider"]').filter(has_text="Amount to prune").first
            slider = widget.get_by_role("slider")
            shown_value = widget.locator('[data-testid="stSliderThumbValue"]')
            zero_weights = page.locator('[data-testid="stMetric"]').filter(has_text=METRIC).locator('[data-testid="stMetricValue"]')
            end = time.perf_counter() + args.duration
            while True:
                await asyncio.sleep(think.uniform(args.think_min, args.think_max))
                if time.perf_counter() >= end:
                    break
                step = "slider move"
                before, shown_before = await shown_value.inner_text(), await zero_weights.inner_text()
                key = "ArrowLeft" if float(before) >= 0.98 or (float(before) > 0.02 and think.random() < 0.5) else "ArrowRight"
                at, start = time.time(), time.perf_counter()
                await slider.focus()
                await slider.press(key)
                await page.wait_for_function(METRIC_CHANGED_JS, arg=[METRIC, shown_before], polling=50, timeout=timeout_ms)
                log.add("chromium", "slider move", at, time.perf_counter() - start, who="chromium")
                await wait_idle(page, args.timeout)
                log.add("chromium", "slider move until idle", at, time.perf_counter() - start - 0.5, who="chromium")
                if await shown_value.inner_text() == before:
                    log.error("chromium", step, f"the slider still shows {before}")
            if await page.locator('[data-testid="stException"]').count():
                log.error("chromium", step, "exception shown: " + (await page.locator('[data-testid="stException"]').first.inner_text())[:200])
        except Exception as error:  # a timeout or a broken page is what the bench counts
            log.error("chromium", step, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
            await page.screenshot(path="/tmp/classroom-chromium-failed.png")
        finally:
            await context.close()
            await browser.close()
    return facts

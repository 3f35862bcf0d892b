"""Classroom load on one server: 30 protocol students and one real browser, while the queue trains.

    .venv/bin/python bench/bench_classroom.py                      # the full scenario (about 5 min + the trainings)
    .venv/bin/python bench/bench_classroom.py --students 3 --ramp 5 --duration 20 --output /tmp/classroom.json   # smoke run

A class on a classroom server (MEL_CLASSROOM=1, a fresh workspace whose digits baseline, seed 0, is
trained beforehand). First the instructor opens the Overview, which starts the server's warmup
(torch; the job queue's Ray cluster and one warm worker), and the bench waits until the server is
quiet, as a class arrives at a lab already up. --students students arrive over --ramp seconds; each opens the Overview,
switches to the Pruning page and moves the "Amount to prune" slider to a seeded random value (on
the slider's 0.01 grid) every 3 to 8 s (seeded) for --duration seconds, waiting for each run to
finish before the next move, as a person waits. Five of them set the sidebar's seed to their own
value and press "Train baseline" (queued), five others press it with the same settings as each
other (the queue joins them into one job); a trainer waits on the page for the job (the sidebar
polls it once a second, as in a browser) and moves the slider again once the new baseline is there.

The students are lightweight clients (bench/streamlit_client.py) that speak Streamlit's own
WebSocket protocol and render nothing, so the machine's cores serve the server. One real Chromium
session (Debian's chromium through Playwright) does the same Overview -> Pruning -> slider moves
and measures what a student sees: from the key press until the "Zero weights" metric changes (and,
second figure, until the page is idle).

Latency of a protocol interaction: from sending the rerun BackMsg to the script_finished that ends
that run (a run that ends early for a rerun, such as the st.rerun after a Train press, counts into
it). Errors: an exception element in the deltas, a run finishing with a compile error, a
disconnect, a run not finished within --timeout seconds, a slider move that leaves the sparsity
unchanged. After the class, the bench waits (at most --job-wait seconds) for every queued job.

The server's memory is sampled every 0.5 s from /proc: the Streamlit process alone and its whole
process tree (Ray's raylet, GCS and workers included; RSS, and PSS, which counts shared libraries
once), and once more after the class, when Streamlit has dropped the closed sessions. CPU share is
the tree's CPU seconds over the wall time times the cores. Targets: 30 sessions, zero errors, slider p95 <= 2 s (protocol clients
and the browser) while trainings run, every queued job done, the 5 identical trainings run once,
server RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LOAD_AT_START, add_output_option, write_results  # noqa: E402
from bench.streamlit_client import ProtocolError, StreamlitClient, number_state, slider_state, trigger_state  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.jobs.store import ACTIVE_STATES, DONE, JobStore  # noqa: E402
from core.sweep.engine import LOCAL_OBJECT_STORE_BYTES  # noqa: E402  (the local cluster's, for --ray-cluster)
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

SLIDER_KEY, SEED_KEY, EPOCHS_KEY, TRAIN_KEY = "prune_amount", "sidebar_seed", "sidebar_epochs", "sidebar_train"
METRIC = "Zero weights"
SHARED_SEED = 100  # the identical trainings' seed (bench_jobs.py's)
TARGETS = {"sessions": 30, "errors": 0, "slider_p95_s": 2.0, "server_rss_mb": 2048}
DISCONNECTED_SESSION_TTL_S = 120  # Streamlit's server.disconnectedSessionTTL default, which .streamlit/config.toml keeps
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


class Log:
    """Every timed interaction (who, what, when, how long) and every error, shared by all sessions."""

    def __init__(self):
        self.rows: list[dict] = []
        self.errors: list[dict] = []
        self.started = time.time()

    def add(self, client: str, name: str, started_at: float, seconds: float, **extra) -> None:
        self.rows.append({"client": client, "interaction": name, "at": started_at, "seconds": seconds, **extra})

    def error(self, who: str, what: str, text: str) -> None:
        self.errors.append({"who": who, "interaction": what, "at_s": round(time.time() - self.started, 1), "error": text[:300]})


# ------------------------------------------------------------------------------------- the server


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds so far, start time) from /proc/PID/stat; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[19])


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE_KB / 1024
    except (OSError, IndexError, ValueError):
        return 0.0


def _pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (torch's libraries in every Ray worker) split among the
    processes that map them, so a tree's PSS sum counts them once, unlike its RSS sum."""
    try:
        line = next(line for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if line.startswith("Pss:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration, IndexError, ValueError):
        return 0.0


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _threads(pid: int) -> int:
    try:
        return next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Threads:"))
    except (OSError, StopIteration):
        return 0


def process_tree(root: int, exclude: int | None = None) -> list[int]:
    """root and every descendant (by /proc parent links), leaving out `exclude`'s subtree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info:
                children.setdefault(info[0], []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid == exclude:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class Sampler(threading.Thread):
    """Every 0.5 s: the server's RSS (alone and with its process tree), threads, and the CPU seconds
    of every process seen in its tree and in this bench's own tree (the clients, Chromium)."""

    def __init__(self, server_pid: int, interval_s: float = 0.5, extra_pids=None):
        super().__init__(daemon=True)
        self.server_pid, self.interval_s = server_pid, interval_s
        self.extra_pids = extra_pids or (lambda: [])  # --ray-cluster: the private cluster's processes count as the server's
        self.peak_server_mb = self.peak_total_mb = self.peak_total_pss_mb = 0.0
        self.peak_processes = self.peak_server_threads = 0
        self.server_cpu: dict[tuple, float] = {}  # (pid, start time) -> CPU seconds, last seen
        self.client_cpu: dict[tuple, float] = {}
        self.seen: dict[int, int] = {}  # pid -> start time, of every process seen in the server's tree
        self.extra_seen: set[int] = set()  # of those, the --ray-cluster processes (stopped with their cluster)
        self.samples = 0
        self.started = time.time()
        self.ray_cluster_seen_at: float | None = None  # when the server's own Ray cluster (GCS, raylet) first ran
        self.ray_cluster_gone_at: float | None = None  # when it was gone (exited or a zombie) while the server lived
        self.server_exit_at: float | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval_s)

    def sample(self) -> None:
        with self._lock:
            self._sample()

    def _sample(self) -> None:
        tree = process_tree(self.server_pid)
        extra = [pid for pid in self.extra_pids() if pid not in tree]
        self.extra_seen.update(extra)
        tree += extra
        for pid in tree:
            info = _stat(pid)
            if info:
                self.seen.setdefault(pid, info[2])
        if self.server_exit_at is None and _state(self.server_pid) in (None, "Z"):
            self.server_exit_at = time.time()
        cluster = [pid for pid in tree if _comm(pid) in ("gcs_server", "raylet")]
        if cluster and self.ray_cluster_seen_at is None:
            self.ray_cluster_seen_at = time.time()
        if self.ray_cluster_seen_at and self.ray_cluster_gone_at is None and all(_state(pid) in (None, "Z") for pid in cluster):
            self.ray_cluster_gone_at = time.time()
        self.peak_server_mb = max(self.peak_server_mb, _rss_mb(self.server_pid))
        self.peak_total_mb = max(self.peak_total_mb, sum(_rss_mb(pid) for pid in tree))
        self.peak_total_pss_mb = max(self.peak_total_pss_mb, sum(_pss_mb(pid) for pid in tree))
        self.peak_processes = max(self.peak_processes, len(tree))
        self.peak_server_threads = max(self.peak_server_threads, _threads(self.server_pid))
        for pids, table in ((tree, self.server_cpu), (process_tree(os.getpid(), exclude=self.server_pid), self.client_cpu)):
            for pid in pids:
                info = _stat(pid)
                if info:
                    table[(pid, info[2])] = info[1]
        self.samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        if _stat(self.server_pid):
            self.sample()

    @property
    def server_cpu_seconds(self) -> float:
        with self._lock:
            return sum(self.server_cpu.values())

    @property
    def server_process_cpu_seconds(self) -> float:
        with self._lock:
            return sum(seconds for (pid, _), seconds in self.server_cpu.items() if pid == self.server_pid)

    @property
    def client_cpu_seconds(self) -> float:
        with self._lock:
            return sum(self.client_cpu.values())


def stop_server(server, sampler: Sampler) -> list[int]:
    """SIGTERM the server, then end what is left of its tree (Ray's agents outlive it for a while): only
    processes this bench's server started, by pid. Returns the pids that had to be killed."""
    import signal

    def alive(pid: int) -> bool:  # the same process (same start time), not a later one given its pid
        info = _stat(pid)
        return info is not None and info[2] == sampler.seen[pid]

    server.stop()
    leftovers = [pid for pid in sampler.seen if pid != server.process.pid and pid not in sampler.extra_seen and alive(pid)]
    deadline = time.time() + 20
    while leftovers and time.time() < deadline:
        time.sleep(0.5)
        leftovers = [pid for pid in leftovers if alive(pid)]
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return leftovers


# ------------------------------------------------------------------------------------- protocol students


class Student:
    def __init__(self, index: int, url: str, log: Log, args, train_seed: int | None, shared: bool):
        self.index, self.log, self.args = index, log, args
        self.name = f"student-{index}"
        self.client = StreamlitClient(url, self.name, timeout_s=args.timeout)
        self.think = random.Random(args.seed * 1000 + index)
        self.train_seed, self.shared = train_seed, shared
        self.amount: float | None = None
        self.reached_pruning = False
        self.trained = False
        self.train_outcome: str | None = None
        self.skipped_moves = 0

    async def timed(self, name: str, **rerun):
        """One rerun, logged; errors (exceptions shown, compile errors) logged with it."""
        at = time.time()
        result = await self.client.rerun(**rerun)
        self.log.add("protocol", name, at, result.seconds, who=self.name, superseded=result.superseded)
        for text in result.exceptions:
            self.log.error(self.name, name, f"exception shown: {text}")
        if result.status != "FINISHED_SUCCESSFULLY":
            self.log.error(self.name, name, f"script finished {result.status}")
        return result

    async def run(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        step = "connect"
        try:
            at = time.perf_counter()
            await self.client.connect()
            self.log.add("protocol", "connect", time.time(), time.perf_counter() - at, who=self.name)
            step = "open overview"
            await self.timed(step)
            if self.client.metric("Test accuracy") is None:
                self.log.error(self.name, step, "the Overview shows no test accuracy metric")
            await asyncio.sleep(self.think.uniform(1.0, 3.0))
            step = "switch to pruning"
            await self.timed(step, page="Pruning")
            if self.client.widget(key=SLIDER_KEY) is None:
                raise ProtocolError("the Pruning page shows no amount slider")
            self.reached_pruning = True
            end = time.perf_counter() + self.args.duration
            moves = 0
            while time.perf_counter() < end:
                await asyncio.sleep(self.think.uniform(self.args.think_min, self.args.think_max))
                if time.perf_counter() >= end:
                    break
                slider = self.client.widget(key=SLIDER_KEY)
                if slider is None:  # a trainer whose new baseline is not there yet: nothing to move
                    self.skipped_moves += 1
                    self.amount = None  # the slider comes back at its default, a new widget
                    continue
                step = "slider move"
                await self.move(slider)
                moves += 1
                if self.train_seed is not None and not self.trained and moves >= 1:
                    step = "train press"
                    await self.press_train()
            await self.client.close()
        except ProtocolError as error:
            self.log.error(self.name, step, str(error))
        except Exception as error:  # the bench counts a broken session, it does not stop the class
            self.log.error(self.name, step, f"{type(error).__name__}: {error}")
        finally:
            if not self.client.disconnected:
                await self.client.close()

    async def move(self, slider) -> None:
        steps = round((slider.max - slider.min) / slider.step)
        current = self.amount if self.amount is not None else (slider.value[0] if slider.value else slider.default[0])
        value = current
        while abs(value - current) < slider.step / 2:
            value = round(slider.min + self.think.randint(0, steps) * slider.step, 6)
        before = self.client.metric(METRIC)
        await self.timed("slider move", widget_states=[slider_state(slider.id, value)])
        self.amount = value
        after = self.client.metric(METRIC)
        if after is None:
            self.log.error(self.name, "slider move", f"no {METRIC} metric after moving to {value}")
        elif after == before:
            self.log.error(self.name, "slider move", f"{METRIC} stayed {after} after moving to {value}")

    async def press_train(self) -> None:
        """Seed into the sidebar, then the Train baseline button (queued on a classroom server)."""
        self.trained = True
        seed_widget = self.client.widget(key=SEED_KEY)
        if seed_widget is None:
            raise ProtocolError("the sidebar shows no seed input")
        # The slider keeps its value while it stays on the page (a baseline already trained); if it
        # leaves while the new baseline trains, the move loop notes that it comes back at its default.
        settings = [number_state(seed_widget.id, self.train_seed)]
        if self.args.train_epochs is not None:
            epochs_widget = self.client.widget(key=EPOCHS_KEY)
            if epochs_widget is None:
                raise ProtocolError("the sidebar shows no epochs input")
            settings.append(number_state(epochs_widget.id, self.args.train_epochs))
        await self.timed("set seed", widget_states=settings)
        if self.client.widget(key=SLIDER_KEY) is None:
            self.amount = None
        button = self.client.widget(key=TRAIN_KEY)
        if button is not None:
            await self.timed("train press", widget_states=[trigger_state(button.id)])
            self.train_outcome = "pressed"
        elif self.client.count("progress"):
            # Someone asked for these settings already: the sidebar follows that job, as the queue
            # promises (the job is found by its configuration), and there is nothing to press.
            self.train_outcome = "joined a queued or running job"
        elif self.client.widget(key=SLIDER_KEY) is not None:
            self.train_outcome = "already trained"
        else:
            raise ProtocolError(f"seed {self.train_seed}: neither a Train baseline button, nor a job, nor a baseline")


# ------------------------------------------------------------------------------------- the Chromium observer

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


# ------------------------------------------------------------------------------------- the class


async def classroom(url: str, log: Log, args) -> tuple[list[Student], dict]:
    chooser = random.Random(args.seed)
    trainers = chooser.sample(range(args.students), min(args.students, args.own_seed_trainers + args.shared_trainers))
    own, shared = trainers[: args.own_seed_trainers], trainers[args.own_seed_trainers :]
    students = [Student(i, url, log, args, train_seed=(own.index(i) + 1 if i in own else SHARED_SEED if i in shared else None), shared=i in shared) for i in range(args.students)]
    start = time.perf_counter()
    tasks = [student.run(start + args.ramp * i / max(1, args.students)) for i, student in enumerate(students)]
    watching = observer(url, log, args, start + args.ramp / 2) if args.observer else asyncio.sleep(0, result={})
    results = await asyncio.gather(watching, *tasks)
    return students, results[0]


async def instructor_opens_the_lab(url: str, sampler: Sampler, limit_s: float = 180.0) -> float:
    """Before the class: the instructor opens the Overview (to project it), which starts the
    server's background warmup (torch, and on a classroom server the job queue's Ray cluster and a
    warm worker); then the bench waits until the server's process tree is quiet (under 15% of one
    core over 3 s), at most `limit_s`. Returns how long the server took to settle."""
    started = time.perf_counter()
    client = StreamlitClient(url, "instructor")
    await client.connect()
    await client.rerun()
    await client.close()
    sampler.sample()
    quiet_since, last_cpu, last_at = None, sampler.server_cpu_seconds, time.perf_counter()
    while time.perf_counter() - started < limit_s:
        await asyncio.sleep(1.0)
        sampler.sample()
        now, cpu = time.perf_counter(), sampler.server_cpu_seconds
        busy = (cpu - last_cpu) / (now - last_at) > 0.15
        last_cpu, last_at = cpu, now
        quiet_since = None if busy else quiet_since or now
        if quiet_since is not None and now - quiet_since >= 3.0:
            break
    return time.perf_counter() - started


async def memory_after_sessions_closed(url: str, server_pid: int, class_ended: float) -> float | None:
    """The server's RSS once every student's session is gone: Streamlit keeps a closed session for
    server.disconnectedSessionTTL seconds (in case it reconnects) and drops the expired ones when
    the next session is stored, so wait that long after the class, open and close one more session
    (the Overview), and read the RSS a few seconds later."""
    await asyncio.sleep(max(0.0, DISCONNECTED_SESSION_TTL_S + 5 - (time.perf_counter() - class_ended)))
    client = StreamlitClient(url, "memory-probe")
    try:
        await client.connect()
        await client.rerun()
    except (TimeoutError, OSError, ProtocolError) as error:
        print(f"no memory reading after the class: the probe session failed ({error})", flush=True)
        return None
    finally:
        await client.close()
    await asyncio.sleep(5)
    return _rss_mb(server_pid)


def wait_for_jobs(store: JobStore, limit_s: float, server) -> float:
    """Seconds waited until no job is queued or running (at most limit_s, and not once the server is gone)."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s and server.process.poll() is None and any(record.state in ACTIVE_STATES for record in store.all()):
        time.sleep(1.0)
    return time.perf_counter() - start


class PrivateRayCluster:
    """--ray-cluster: a Ray head of this bench's own (`ray start --head`, its own temp dir), which the
    server reaches through RAY_ADDRESS instead of starting a local cluster inside a script run.
    Stopped by pid (the processes whose command line names its temp dir), never with `ray stop`,
    which would end every Ray process on the machine."""

    def __init__(self, cpus: int):
        import socket
        import subprocess

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.temp_dir = tempfile.mkdtemp(prefix="mcr-", dir="/tmp")  # short: Ray's socket paths have a length limit
        # Token authentication off: the cluster listens on 127.0.0.1 only, and the server would need the token.
        env = {**{key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "disabled"}
        started = subprocess.run(
            [
                str(Path(sys.executable).with_name("ray")),
                "start",
                "--head",
                "--node-ip-address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--num-cpus",
                str(cpus),
                "--object-store-memory",
                str(LOCAL_OBJECT_STORE_BYTES),
                "--temp-dir",
                self.temp_dir,
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if started.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed: {started.stderr[-1500:]}")
        self.address = f"127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The processes whose command line names the temp dir, and their descendants (Ray's agents rename themselves)."""
        found: list[int] = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    if self.temp_dir.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                        found.append(int(entry))
                except OSError:
                    pass
        for pid in list(found):
            found += [child for child in process_tree(pid) if child not in found]
        return found

    def stop(self) -> None:
        import signal

        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.time() + 10
            while self.pids() and time.time() < deadline:
                time.sleep(0.5)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "median_s": statistics.median(values), "p95_s": percentile(values, 0.95), "max_s": max(values)}


def during(row: dict, spans: list[tuple[float, float]]) -> bool:
    """Whether the interaction overlapped a training (a job running)."""
    return any(row["at"] < end and row["at"] + row["seconds"] > begin for begin, end in spans)


def code_version() -> dict:
    """Which app the server ran: the checkout's commit (and whether it had local changes), or
    $MEL_BENCH_COMMIT for a copy without .git (e.g. `git archive HEAD` unpacked, to measure a
    commit while someone edits the working tree)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = os.environ.get("MEL_BENCH_COMMIT"), None
    return {"root": str(root), "commit": commit, "local_changes": dirty}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30, help="protocol clients (default 30)")
    parser.add_argument("--ramp", type=float, default=60.0, help="they arrive evenly over this many seconds (default 60)")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds each moves the slider, from reaching Pruning (default 180)")
    parser.add_argument("--think-min", type=float, default=3.0)
    parser.add_argument("--think-max", type=float, default=8.0)
    parser.add_argument("--own-seed-trainers", type=int, default=5, help="students who train with their own seed (1, 2, ...)")
    parser.add_argument("--shared-trainers", type=int, default=5, help=f"students who train the same settings (seed {SHARED_SEED})")
    parser.add_argument(
        "--train-epochs",
        type=int,
        default=None,
        help="epochs the trainers type into the sidebar (default: the digits preset, ~15 s a job); "
        "160 makes each job about a minute, as a CIFAR-10 training is, so the queue stays full through the class",
    )
    parser.add_argument("--no-observer", dest="observer", action="store_false", help="no Chromium session")
    parser.add_argument("--timeout", type=float, default=60.0, help="a run not finished after this many seconds is an error (default 60)")
    parser.add_argument("--job-wait", type=float, default=600.0, help="at most this long for the queued jobs after the class (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="an environment variable for the server, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false (repeatable)")
    parser.add_argument("--ray-cluster", action="store_true", help="start a Ray head first (ray start) and give the server RAY_ADDRESS, instead of the local cluster the server starts itself")
    add_output_option(parser, "classroom")
    args = parser.parse_args()

    load_before = [round(value, 2) for value in LOAD_AT_START]
    print(f"load average before start: {load_before} ({'quiet' if load_before[0] < 1.0 else 'NOT quiet: other work is running'})", flush=True)
    home = Path(tempfile.mkdtemp(prefix="mel-classroom-"))
    get_baseline(BaselineConfig(), Workspace.open(home))  # the cached digits baseline (seed 0) the class starts from
    cluster = PrivateRayCluster(int(os.environ.get("MEL_MAX_JOBS") or max(1, (os.cpu_count() or 2) - 1))) if args.ray_cluster else None
    server_env = {"MEL_CLASSROOM": "1", **({"RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "disabled"} if cluster else {}), **dict(item.split("=", 1) for item in args.server_env)}
    server = start_server(home, server_env)
    url = f"http://127.0.0.1:{server.port}"
    sampler = Sampler(server.process.pid, extra_pids=cluster.pids if cluster else None)
    sampler.start()
    log = Log()
    killed: list[int] = []
    try:
        settle_seconds = asyncio.run(instructor_opens_the_lab(url, sampler))
        print(f"server settled {settle_seconds:.0f} s after the instructor opened the lab (warmup: torch, the job cluster)", flush=True)
        start = time.perf_counter()
        students, observer_facts = asyncio.run(classroom(url, log, args))
        class_seconds = time.perf_counter() - start
        sampler.sample()
        class_cpu = sampler.server_cpu_seconds
        print(f"class over after {class_seconds:.0f} s; waiting for the queued jobs", flush=True)
        rss_mb_at_class_end = _rss_mb(server.process.pid)
        class_ended = time.perf_counter()
        store = JobStore(home / "jobs")
        job_wait = wait_for_jobs(store, args.job_wait, server)
        wall = time.perf_counter() - start
        rss_mb_after_sessions_closed = asyncio.run(memory_after_sessions_closed(url, server.process.pid, class_ended))
    finally:
        sampler.stop()
        exit_code = server.process.poll()  # None: it was still serving
        killed = stop_server(server, sampler)
        if cluster:
            cluster.stop()
    log_text = (home / f"streamlit-{server.port}.log").read_text(errors="replace")

    records = store.all()
    spans = [(record.started_at, record.finished_at or time.time()) for record in records if record.started_at]
    interactions: dict = {}
    for source in ("protocol", "chromium"):
        rows = [row for row in log.rows if row["client"] == source]
        for name in dict.fromkeys(row["interaction"] for row in rows):
            values = [row["seconds"] for row in rows if row["interaction"] == name]
            interactions.setdefault(source, {})[name] = summary(values)
            if name.startswith("slider move"):
                interactions[source][name]["while_training"] = summary([row["seconds"] for row in rows if row["interaction"] == name and during(row, spans)])
    presses = [row for row in log.rows if row["interaction"] == "train press"]
    outcomes = [student.train_outcome or "never got to it" for student in students if student.train_seed is not None]
    shared_jobs = {record.job_id for record in records if record.config.get("seed") == SHARED_SEED}
    waits = [record.started_at - record.submitted_at for record in records if record.started_at]
    jobs = {
        "requests": len(presses),
        "trainer_outcomes": {outcome: outcomes.count(outcome) for outcome in dict.fromkeys(outcomes)},
        "requests_planned": min(args.students, args.own_seed_trainers + args.shared_trainers),
        "jobs_expected": min(args.students, args.own_seed_trainers) + (1 if args.shared_trainers and args.students > args.own_seed_trainers else 0),
        "jobs_run": len(records),
        "jobs_done": sum(record.state == DONE for record in records),
        "states": {state: sum(record.state == state for record in records) for state in dict.fromkeys(record.state for record in records)},
        "shared_requests_joined_into_jobs": len(shared_jobs),
        "shared_job_asked_by": [len(record.asked_by) for record in records if record.job_id in shared_jobs],
        "queue_wait_seconds": {"median": statistics.median(waits), "max": max(waits)} if waits else None,
        "job_seconds_median": statistics.median(record.duration_seconds for record in records if record.duration_seconds) if any(record.duration_seconds for record in records) else None,
        "wait_after_class_seconds": job_wait,
        "errors": [record.error for record in records if record.error],
    }
    server_facts = {
        "peak_rss_mb_server_process": sampler.peak_server_mb,
        "peak_rss_mb_process_tree": sampler.peak_total_mb,
        "peak_pss_mb_process_tree": sampler.peak_total_pss_mb,
        "rss_mb_server_process_at_class_end": rss_mb_at_class_end,
        "rss_mb_server_process_after_sessions_closed": rss_mb_after_sessions_closed,
        "peak_processes_in_tree": sampler.peak_processes,
        "peak_threads_server_process": sampler.peak_server_threads,
        "cpu_seconds_process_tree": sampler.server_cpu_seconds,
        "cpu_seconds_server_process": sampler.server_process_cpu_seconds,
        "cpu_share_process_tree": sampler.server_cpu_seconds / (wall * (os.cpu_count() or 1)),
        "cpu_seconds_process_tree_during_class": class_cpu,
        "cpu_share_during_class": class_cpu / (class_seconds * (os.cpu_count() or 1)),
        "clients_cpu_seconds": sampler.client_cpu_seconds,  # this bench: the protocol clients, Playwright and Chromium
        "log_tracebacks": log_text.count("Traceback"),
        "log_warnings": sum("WARNING" in line for line in log_text.splitlines()),
        "log_excerpt": [line for line in log_text.splitlines() if any(word in line for word in ("Traceback", "Error", "WARNING", "Failed", " E "))][:30],
        "leftover_processes_killed": len(killed),
        "ray": f"private cluster at {cluster.address} (ray start), the server connects by RAY_ADDRESS" if cluster else "the local cluster the server starts itself (the default)",
        "exit_code_before_stop": exit_code,
        "exited_during_bench_at_s": None if sampler.server_exit_at is None or exit_code is None else round(sampler.server_exit_at - log.started, 1),
        "ray_cluster_started_at_s": None if sampler.ray_cluster_seen_at is None else round(sampler.ray_cluster_seen_at - log.started, 1),
        "ray_cluster_gone_at_s": None if sampler.ray_cluster_gone_at is None else round(sampler.ray_cluster_gone_at - log.started, 1),
        "settled_seconds_after_the_instructor_opened": settle_seconds,
        "max_jobs": int(os.environ.get("MEL_MAX_JOBS") or max(1, (os.cpu_count() or 2) - 1)),
    }
    sessions = sum(student.reached_pruning for student in students)
    slider_protocol = interactions.get("protocol", {}).get("slider move", {}).get("while_training", {})
    slider_chromium = interactions.get("chromium", {}).get("slider move", {}).get("while_training", {})
    checks = {
        "sessions": {"value": sessions, "target": f">= {TARGETS['sessions']}", "met": sessions >= TARGETS["sessions"]},
        "errors": {"value": len(log.errors), "target": "0", "met": not log.errors},
        "slider_p95_protocol_while_training_s": {
            "value": slider_protocol.get("p95_s"),
            "target": f"<= {TARGETS['slider_p95_s']}",
            "met": slider_protocol.get("count", 0) > 0 and slider_protocol["p95_s"] <= TARGETS["slider_p95_s"],
        },
        "slider_p95_chromium_while_training_s": {
            "value": slider_chromium.get("p95_s"),
            "target": f"<= {TARGETS['slider_p95_s']}",
            "met": slider_chromium.get("count", 0) > 0 and slider_chromium["p95_s"] <= TARGETS["slider_p95_s"],
        },
        "every_queued_job_done": {"value": f"{jobs['jobs_done']} of {jobs['jobs_run']}", "target": "all", "met": jobs["jobs_run"] > 0 and jobs["jobs_done"] == jobs["jobs_run"]},
        "identical_trainings_run_once": {"value": len(shared_jobs), "target": "1", "met": len(shared_jobs) == 1},
        # Three readings of "the server's resident memory": the Streamlit process alone; its process tree
        # (Ray's raylet, GCS, agents and the job worker) by PSS, which counts a shared page once; and
        # the tree's plain RSS sum, which counts torch's shared libraries once per process that maps them.
        "server_rss_mb_server_process": {"value": round(sampler.peak_server_mb), "target": f"<= {TARGETS['server_rss_mb']}", "met": sampler.peak_server_mb <= TARGETS["server_rss_mb"]},
        "server_pss_mb_process_tree": {"value": round(sampler.peak_total_pss_mb), "target": f"<= {TARGETS['server_rss_mb']}", "met": 0 < sampler.peak_total_pss_mb <= TARGETS["server_rss_mb"]},
        "server_rss_mb_process_tree": {"value": round(sampler.peak_total_mb), "target": f"<= {TARGETS['server_rss_mb']}", "met": sampler.peak_total_mb <= TARGETS["server_rss_mb"]},
    }

    print(f"\n{sessions} of {args.students} students reached Pruning; Chromium observer: {observer_facts or 'off'}")
    for source, table in interactions.items():
        for name, row in table.items():
            line = f"{source:9s} {name:24s} n={row['count']:4d}"
            if row["count"]:
                line += f"  median {row['median_s']:.2f} s  p95 {row['p95_s']:.2f} s  max {row['max_s']:.2f} s"
            if "while_training" in row and row["while_training"]["count"]:
                training = row["while_training"]
                line += f"   while training: n={training['count']} median {training['median_s']:.2f} s p95 {training['p95_s']:.2f} s"
            print(line)
    print(f"errors: {len(log.errors)}")
    for error in log.errors[:15]:
        print("   ", error)
    print(f"trainers: {jobs['trainer_outcomes']}")
    print(
        f"jobs: {jobs['requests']} presses, {jobs['jobs_run']} jobs run (expected {jobs['jobs_expected']}), {jobs['jobs_done']} done, "
        f"identical ones in {len(shared_jobs)} job(s); queue wait {jobs['queue_wait_seconds']}"
    )
    print(
        f"server: peak RSS {sampler.peak_server_mb:.0f} MB alone, {sampler.peak_total_mb:.0f} MB with its {sampler.peak_processes} processes; "
        f"PSS {sampler.peak_total_pss_mb:.0f} MB with them; at the class's end {rss_mb_at_class_end:.0f} MB alone, "
        f"{rss_mb_after_sessions_closed or 0:.0f} MB once its sessions were dropped; "
        f"CPU {sampler.server_cpu_seconds:.0f} s of {wall * (os.cpu_count() or 1):.0f} core-seconds ({server_facts['cpu_share_process_tree']:.0%}); "
        f"clients {sampler.client_cpu_seconds:.0f} s; wall {wall:.0f} s; log: {server_facts['log_tracebacks']} tracebacks"
    )
    if exit_code is not None:
        print(
            f"THE SERVER EXITED during the bench (code {exit_code}) at {server_facts['exited_during_bench_at_s']} s; its Ray cluster started at "
            f"{server_facts['ray_cluster_started_at_s']} s and was gone at {server_facts['ray_cluster_gone_at_s']} s"
        )
    elif server_facts["ray_cluster_gone_at_s"] is not None:
        print(f"the server's Ray cluster (GCS, raylet) was gone at {server_facts['ray_cluster_gone_at_s']} s while the server still ran")
    print("targets:")
    for name, check in checks.items():
        print(f"   {name:40s} {str(check['value']):>12s}  target {check['target']:8s} {'met' if check['met'] else 'NOT MET'}")

    payload = {
        "machine": {"load_average_before_start": load_before, "quiet": load_before[0] < 1.0},
        "code": code_version(),
        "scenario": {
            "students": args.students,
            "ramp_seconds": args.ramp,
            "duration_seconds": args.duration,
            "think_seconds": [args.think_min, args.think_max],
            "own_seed_trainers": args.own_seed_trainers,
            "shared_trainers": args.shared_trainers,
            "shared_seed": SHARED_SEED,
            "train_epochs": args.train_epochs,
            "observer": args.observer,
            "timeout_seconds": args.timeout,
            "seed": args.seed,
            "MEL_CLASSROOM": "1",
            "ray_cluster": args.ray_cluster,
            "server_env": args.server_env,
        },
        "sessions_reached_pruning": sessions,
        "observer": observer_facts,
        "interactions": interactions,
        "errors": log.errors,
        "jobs": jobs,
        "server": server_facts,
        "checks": checks,
        "class_seconds": class_seconds,
        "wall_seconds": wall,
        "skipped_moves_waiting_for_training": sum(student.skipped_moves for student in students),
        # When things were slow, against when the jobs ran (seconds from the class's start).
        "slow_interactions": [
            {"at_s": round(row["at"] - log.started, 1), "seconds": round(row["seconds"], 2), "client": row["client"], "who": row.get("who"), "interaction": row["interaction"]}
            for row in sorted(log.rows, key=lambda row: row["at"])
            if row["seconds"] > TARGETS["slider_p95_s"]
        ],
        "job_timeline": [
            {
                "seed": record.config.get("seed"),
                "state": record.state,
                "asked_by": len(record.asked_by),
                **{
                    name: None if value is None else round(value - log.started, 1)
                    for name, value in (("submitted_at_s", record.submitted_at), ("started_at_s", record.started_at), ("finished_at_s", record.finished_at))
                },
            }
            for record in records
        ],
    }
    print("wrote", write_results("classroom", payload, args.output))


if __name__ == "__main__":
    main()

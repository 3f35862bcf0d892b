"""The server under test and its Ray cluster: memory and CPU readings from /proc (RSS, PSS, the process
tree), waiting for the server to settle, for its queued jobs and for its closed sessions to be dropped,
stopping it and what is left of its tree, and the private Ray head of --ray-cluster."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.streamlit_client import ProtocolError, StreamlitClient
from core.jobs.store import ACTIVE_STATES, JobStore
from core.sweep.engine import LOCAL_OBJECT_STORE_BYTES  # (the local cluster's, for --ray-cluster)

DISCONNECTED_SESSION_TTL_S = 120  # Streamlit's server.disconnectedSessionTTL default, which .streamlit/config.toml keeps
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds so far, start time) from /proc/PID/stat; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[19])


def rss_mb(pid: int) -> float:
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
        self.peak_server_mb = max(self.peak_server_mb, rss_mb(self.server_pid))
        self.peak_total_mb = max(self.peak_total_mb, sum(rss_mb(pid) for pid in tree))
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
    return rss_mb(server_pid)


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

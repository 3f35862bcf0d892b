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

    .venv/bin/python bench/bench_classroom.py --scenario fair-share                 # 30 sessions queueing 3 jobs each, 10 browsing, the instructor cancelling
    .venv/bin/python bench/bench_classroom.py --scenario fair-share --students 3 --browsers 2 --ramp 5 --duration 20 --instructor-cancels 2 --output /tmp/fair.json   # smoke run

The fair-share scenario (issue 28; bench/classroom/fair_share.py): --students protocol sessions each
press Train baseline for three small trainings of their own, --browsers others only move the Pruning
slider, and the instructor (the Instructor page, unlocked with the server's MEL_INSTRUCTOR_SECRET)
cancels --instructor-cancels jobs. Targets: the queue holds at most 2 jobs per session, every
accepted job finishes or is cancelled by the instructor, 0 errors, 0 lost results, slider p95 <= 1 s
for the sessions that only browse. Written to bench/results/classroom_fair_share.json.
"""

# The parts live in bench/classroom/: the server and its Ray cluster (server.py), the protocol students
# (students.py), the Chromium observer (observer.py), the figures and the JSON (results.py), and the
# names they share (scenario.py). This script parses the arguments and runs them in order.

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.classroom.results import ClassRun, code_version, report  # noqa: E402
from bench.classroom.scenario import SHARED_SEED, Log  # noqa: E402
from bench.classroom.server import PrivateRayCluster, Sampler, instructor_opens_the_lab, memory_after_sessions_closed, rss_mb, stop_server, wait_for_jobs  # noqa: E402
from bench.classroom.students import classroom  # noqa: E402
from bench.common import LOAD_AT_START, add_output_option  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.jobs.store import JobStore  # noqa: E402
from tests.browser.conftest import start_server  # noqa: E402


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
    parser.add_argument("--scenario", choices=("class", "fair-share"), default="class", help="class: the sliders while trainings run (default); fair-share: every session queueing three jobs")
    parser.add_argument("--browsers", type=int, default=10, help="fair-share: sessions that only move the Pruning slider (default 10)")
    parser.add_argument("--fair-train-size", type=int, default=500, help="fair-share: the training images each queued job uses (default 500)")
    parser.add_argument("--fair-epochs", type=int, default=60, help="fair-share: each queued job's epochs (default 60: a few seconds a job, so the queue backs up while the class presses)")
    parser.add_argument("--instructor-cancels", type=int, default=10, help="fair-share: jobs the instructor cancels (default 10)")
    parser.add_argument("--instructor-delay", type=float, default=20.0, help="fair-share: the instructor acts this long after the last student arrived (default 20 s)")
    add_output_option(parser, "classroom")
    args = parser.parse_args()
    if args.scenario == "fair-share":
        fair_share(args)
        return

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
        rss_mb_at_class_end = rss_mb(server.process.pid)
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

    run = ClassRun(
        args=args,
        load_before=load_before,
        log=log,
        students=students,
        observer_facts=observer_facts,
        sampler=sampler,
        records=store.all(),
        ray_address=cluster.address if cluster else None,
        settle_seconds=settle_seconds,
        class_seconds=class_seconds,
        class_cpu=class_cpu,
        rss_mb_at_class_end=rss_mb_at_class_end,
        rss_mb_after_sessions_closed=rss_mb_after_sessions_closed,
        job_wait=job_wait,
        wall=wall,
        exit_code=exit_code,
        killed=killed,
        log_text=log_text,
    )
    print("wrote", report(run, args.output))


def fair_share(args: argparse.Namespace) -> None:
    """--scenario fair-share: the server, the class of bench/classroom/fair_share.py, the figures."""
    import secrets

    from bench.classroom.fair_share import fair_share_class, fair_share_report, print_fair_share
    from bench.common import write_results

    load_before = [round(value, 2) for value in LOAD_AT_START]
    print(f"load average before start: {load_before} ({'quiet' if load_before[0] < 1.0 else 'NOT quiet: other work is running'})", flush=True)
    home = Path(tempfile.mkdtemp(prefix="mel-fair-share-"))
    get_baseline(BaselineConfig(), Workspace.open(home))  # the browsing sessions' digits baseline
    secret = secrets.token_urlsafe(16)
    server = start_server(home, {"MEL_CLASSROOM": "1", "MEL_INSTRUCTOR_SECRET": secret, **dict(item.split("=", 1) for item in args.server_env)})
    url = f"http://127.0.0.1:{server.port}"
    sampler = Sampler(server.process.pid)
    sampler.start()
    log = Log()
    store = JobStore(home / "jobs")
    try:
        settle_seconds = asyncio.run(instructor_opens_the_lab(url, sampler))
        print(f"server settled {settle_seconds:.0f} s after the instructor opened the lab", flush=True)
        start = time.perf_counter()
        queuers, browsers, instructor = asyncio.run(fair_share_class(url, log, args, secret, store))
        class_seconds = time.perf_counter() - start
        print(f"class over after {class_seconds:.0f} s; waiting for the queued jobs", flush=True)
        job_wait = wait_for_jobs(store, args.job_wait, server)
        wall = time.perf_counter() - start
    finally:
        sampler.stop()
        exit_code = server.process.poll()
        killed = stop_server(server, sampler)
    log_text = (home / f"streamlit-{server.port}.log").read_text(errors="replace")
    extra = {
        "machine": {"load_average_before_start": load_before, "quiet": load_before[0] < 1.0},
        "server": {
            "settled_seconds": settle_seconds,
            "class_seconds": class_seconds,
            "wait_after_class_seconds": job_wait,
            "wall_seconds": wall,
            "peak_rss_mb_server_process": sampler.peak_server_mb,
            "peak_rss_mb_process_tree": sampler.peak_total_mb,
            "cpu_seconds_process_tree": sampler.server_cpu_seconds,
            "log_tracebacks": log_text.count("Traceback"),
            "exit_code_before_stop": exit_code,
            "leftover_processes_killed": len(killed),
            "max_jobs": int(os.environ.get("MEL_MAX_JOBS") or max(1, (os.cpu_count() or 2) - 1)),
        },
        "code": code_version(),
    }
    payload = fair_share_report(args, log, queuers, browsers, instructor, store.all(), home, extra)
    print_fair_share(payload)
    print("wrote", write_results("classroom_fair_share", payload, args.output))


if __name__ == "__main__":
    main()

"""The job queue under a class's trainings: 5 students each train a baseline with their own seed,
5 others ask for the same training as each other, all within a few seconds.

    .venv/bin/python bench/bench_jobs.py [--dataset digits] [--output bench/results/jobs.json]

Measures what the queue promises: jobs run versus jobs asked (the 5 identical requests must run
once), every job finishing, each request's wait in the queue and its time to done, Ray's start-up,
and the driver's (the Streamlit server's) peak RSS. The queue runs on a local Ray cluster with
cores - 1 CPUs, as on a classroom server; nothing else should run meanwhile (see "quiet").
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_output_option, write_results  # noqa: E402
from core.foundation import history  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig  # noqa: E402
from core.foundation.data.datasets import DatasetSpec  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.jobs.queue import JobQueue  # noqa: E402
from core.jobs.store import ACTIVE_STATES, DONE  # noqa: E402

OWN_SEED_STUDENTS = 5
SHARED_STUDENTS = 5
SHARED_SEED = 100


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--arrival-seconds", type=float, default=5.0, help="the 10 requests arrive evenly over this many seconds")
    add_output_option(parser, "jobs")
    args = parser.parse_args()

    workspace = Workspace.open(tempfile.mkdtemp(prefix="mel-bench-jobs-"))
    queue = JobQueue(workspace)
    seeds = [*range(1, OWN_SEED_STUDENTS + 1), *[SHARED_SEED] * SHARED_STUDENTS]
    asked_at, job_of = {}, {}
    started = time.perf_counter()
    first_submit_seconds = None
    for student, seed in enumerate(seeds):
        time.sleep(max(0.0, started + student * args.arrival_seconds / len(seeds) - time.perf_counter()))
        config = asdict(BaselineConfig(DatasetSpec(args.dataset), seed=seed, device="cpu"))
        submit_started = time.perf_counter()
        job_of[student] = queue.submit("baseline", config, f"student-{student}").job_id
        if first_submit_seconds is None:
            first_submit_seconds = time.perf_counter() - submit_started  # includes starting Ray
        asked_at[student] = time.perf_counter()
    done_at = {}
    while len(done_at) < len(set(job_of.values())):
        for job_id in set(job_of.values()) - set(done_at):
            if queue.status(job_id).state not in ACTIVE_STATES:
                done_at[job_id] = time.perf_counter()
        time.sleep(0.1)
    records = {record.job_id: record for record in queue.jobs()}
    waits = [records[job_id].started_at - records[job_id].submitted_at for job_id in set(job_of.values())]
    to_done = [done_at[job_of[student]] - asked_at[student] for student in job_of]
    trainings = sum(1 for run in history.list_runs(workspace.history_db) if run.technique == "train")
    results = {
        "dataset": args.dataset,
        "max_running": queue.max_running,
        "requests": len(seeds),
        "jobs_run": len(records),
        "trainings_recorded": trainings,
        "jobs_done": sum(record.state == DONE for record in records.values()),
        "shared_requests_joined_into_jobs": len({job_of[s] for s in job_of if seeds[s] == SHARED_SEED}),
        "first_submit_seconds_with_ray_start": first_submit_seconds,
        "queue_wait_seconds": {"median": statistics.median(waits), "max": max(waits)},
        "request_to_done_seconds": {"median": statistics.median(to_done), "p95": percentile(to_done, 0.95), "max": max(to_done)},
        "job_seconds": {"median": statistics.median(record.duration_seconds for record in records.values())},
        "total_seconds": time.perf_counter() - started,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    queue.close()
    print(write_results("jobs", results, args.output).read_text())


if __name__ == "__main__":
    main()

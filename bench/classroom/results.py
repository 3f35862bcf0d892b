"""The results: the summary figures of a run (latencies per interaction, the jobs, the server's memory and
CPU, the targets' checks), printed and written as bench/results/classroom.json."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.classroom.scenario import SHARED_SEED, TARGETS, Log
from bench.classroom.server import Sampler
from bench.classroom.students import Student
from bench.common import REPO_ROOT, write_results
from core.jobs.store import DONE


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

    root = REPO_ROOT
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = os.environ.get("MEL_BENCH_COMMIT"), None
    return {"root": str(root), "commit": commit, "local_changes": dirty}


@dataclass
class ClassRun:
    """What one run measured: the scenario's arguments, the clients' log, the sampler's readings, the
    job store's records after the class, and the server's figures taken along the way."""

    args: argparse.Namespace
    load_before: list[float]
    log: Log
    students: list[Student]
    observer_facts: dict
    sampler: Sampler
    records: list  # the job store's records, read after the class
    ray_address: str | None  # --ray-cluster: the private cluster's address
    settle_seconds: float
    class_seconds: float
    class_cpu: float
    rss_mb_at_class_end: float
    rss_mb_after_sessions_closed: float | None
    job_wait: float
    wall: float
    exit_code: int | None  # None: the server was still serving when the bench stopped it
    killed: list[int]
    log_text: str  # the server's log


def interaction_figures(rows: list[dict], records: list) -> dict:
    """Latency summaries per client kind and interaction; the slider moves' also while a job ran."""
    spans = [(record.started_at, record.finished_at or time.time()) for record in records if record.started_at]
    interactions: dict = {}
    for source in ("protocol", "chromium"):
        source_rows = [row for row in rows if row["client"] == source]
        for name in dict.fromkeys(row["interaction"] for row in source_rows):
            values = [row["seconds"] for row in source_rows if row["interaction"] == name]
            interactions.setdefault(source, {})[name] = summary(values)
            if name.startswith("slider move"):
                interactions[source][name]["while_training"] = summary([row["seconds"] for row in source_rows if row["interaction"] == name and during(row, spans)])
    return interactions


def job_figures(run: ClassRun) -> dict:
    """The Train presses, the trainers' outcomes and the queue's jobs."""
    args, records = run.args, run.records
    presses = [row for row in run.log.rows if row["interaction"] == "train press"]
    outcomes = [student.train_outcome or "never got to it" for student in run.students if student.train_seed is not None]
    shared_jobs = {record.job_id for record in records if record.config.get("seed") == SHARED_SEED}
    waits = [record.started_at - record.submitted_at for record in records if record.started_at]
    return {
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
        "wait_after_class_seconds": run.job_wait,
        "errors": [record.error for record in records if record.error],
    }


def server_figures(run: ClassRun) -> dict:
    """The server's memory, processes, CPU, log and lifetime."""
    sampler, log_text, started = run.sampler, run.log_text, run.log.started
    return {
        "peak_rss_mb_server_process": sampler.peak_server_mb,
        "peak_rss_mb_process_tree": sampler.peak_total_mb,
        "peak_pss_mb_process_tree": sampler.peak_total_pss_mb,
        "rss_mb_server_process_at_class_end": run.rss_mb_at_class_end,
        "rss_mb_server_process_after_sessions_closed": run.rss_mb_after_sessions_closed,
        "peak_processes_in_tree": sampler.peak_processes,
        "peak_threads_server_process": sampler.peak_server_threads,
        "cpu_seconds_process_tree": sampler.server_cpu_seconds,
        "cpu_seconds_server_process": sampler.server_process_cpu_seconds,
        "cpu_share_process_tree": sampler.server_cpu_seconds / (run.wall * (os.cpu_count() or 1)),
        "cpu_seconds_process_tree_during_class": run.class_cpu,
        "cpu_share_during_class": run.class_cpu / (run.class_seconds * (os.cpu_count() or 1)),
        "clients_cpu_seconds": sampler.client_cpu_seconds,  # this bench: the protocol clients, Playwright and Chromium
        "log_tracebacks": log_text.count("Traceback"),
        "log_warnings": sum("WARNING" in line for line in log_text.splitlines()),
        "log_excerpt": [line for line in log_text.splitlines() if any(word in line for word in ("Traceback", "Error", "WARNING", "Failed", " E "))][:30],
        "leftover_processes_killed": len(run.killed),
        "ray": f"private cluster at {run.ray_address} (ray start), the server connects by RAY_ADDRESS" if run.ray_address else "the local cluster the server starts itself (the default)",
        "exit_code_before_stop": run.exit_code,
        "exited_during_bench_at_s": None if sampler.server_exit_at is None or run.exit_code is None else round(sampler.server_exit_at - started, 1),
        "ray_cluster_started_at_s": None if sampler.ray_cluster_seen_at is None else round(sampler.ray_cluster_seen_at - started, 1),
        "ray_cluster_gone_at_s": None if sampler.ray_cluster_gone_at is None else round(sampler.ray_cluster_gone_at - started, 1),
        "settled_seconds_after_the_instructor_opened": run.settle_seconds,
        "max_jobs": int(os.environ.get("MEL_MAX_JOBS") or max(1, (os.cpu_count() or 2) - 1)),
    }


def target_checks(run: ClassRun, sessions: int, interactions: dict, jobs: dict) -> dict:
    """Each target: its value, the target and whether it was met."""
    sampler, errors = run.sampler, run.log.errors
    slider_protocol = interactions.get("protocol", {}).get("slider move", {}).get("while_training", {})
    slider_chromium = interactions.get("chromium", {}).get("slider move", {}).get("while_training", {})
    return {
        "sessions": {"value": sessions, "target": f">= {TARGETS['sessions']}", "met": sessions >= TARGETS["sessions"]},
        "errors": {"value": len(errors), "target": "0", "met": not errors},
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
        "identical_trainings_run_once": {"value": jobs["shared_requests_joined_into_jobs"], "target": "1", "met": jobs["shared_requests_joined_into_jobs"] == 1},
        # Three readings of "the server's resident memory": the Streamlit process alone; its process tree
        # (Ray's raylet, GCS, agents and the job worker) by PSS, which counts a shared page once; and
        # the tree's plain RSS sum, which counts torch's shared libraries once per process that maps them.
        "server_rss_mb_server_process": {"value": round(sampler.peak_server_mb), "target": f"<= {TARGETS['server_rss_mb']}", "met": sampler.peak_server_mb <= TARGETS["server_rss_mb"]},
        "server_pss_mb_process_tree": {"value": round(sampler.peak_total_pss_mb), "target": f"<= {TARGETS['server_rss_mb']}", "met": 0 < sampler.peak_total_pss_mb <= TARGETS["server_rss_mb"]},
        "server_rss_mb_process_tree": {"value": round(sampler.peak_total_mb), "target": f"<= {TARGETS['server_rss_mb']}", "met": sampler.peak_total_mb <= TARGETS["server_rss_mb"]},
    }


def print_summary(run: ClassRun, sessions: int, interactions: dict, jobs: dict, server_facts: dict, checks: dict) -> None:
    sampler, log, wall = run.sampler, run.log, run.wall
    print(f"\n{sessions} of {run.args.students} students reached Pruning; Chromium observer: {run.observer_facts or 'off'}")
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
        f"identical ones in {jobs['shared_requests_joined_into_jobs']} job(s); queue wait {jobs['queue_wait_seconds']}"
    )
    print(
        f"server: peak RSS {sampler.peak_server_mb:.0f} MB alone, {sampler.peak_total_mb:.0f} MB with its {sampler.peak_processes} processes; "
        f"PSS {sampler.peak_total_pss_mb:.0f} MB with them; at the class's end {run.rss_mb_at_class_end:.0f} MB alone, "
        f"{run.rss_mb_after_sessions_closed or 0:.0f} MB once its sessions were dropped; "
        f"CPU {sampler.server_cpu_seconds:.0f} s of {wall * (os.cpu_count() or 1):.0f} core-seconds ({server_facts['cpu_share_process_tree']:.0%}); "
        f"clients {sampler.client_cpu_seconds:.0f} s; wall {wall:.0f} s; log: {server_facts['log_tracebacks']} tracebacks"
    )
    if run.exit_code is not None:
        print(
            f"THE SERVER EXITED during the bench (code {run.exit_code}) at {server_facts['exited_during_bench_at_s']} s; its Ray cluster started at "
            f"{server_facts['ray_cluster_started_at_s']} s and was gone at {server_facts['ray_cluster_gone_at_s']} s"
        )
    elif server_facts["ray_cluster_gone_at_s"] is not None:
        print(f"the server's Ray cluster (GCS, raylet) was gone at {server_facts['ray_cluster_gone_at_s']} s while the server still ran")
    print("targets:")
    for name, check in checks.items():
        print(f"   {name:40s} {str(check['value']):>12s}  target {check['target']:8s} {'met' if check['met'] else 'NOT MET'}")


def report(run: ClassRun, output: Path | None = None) -> Path:
    """The run's figures, printed, and written as JSON (bench/results/classroom.json, or `output`)."""
    args, log, students = run.args, run.log, run.students
    interactions = interaction_figures(log.rows, run.records)
    jobs = job_figures(run)
    server_facts = server_figures(run)
    sessions = sum(student.reached_pruning for student in students)
    checks = target_checks(run, sessions, interactions, jobs)
    print_summary(run, sessions, interactions, jobs, server_facts, checks)

    payload = {
        "machine": {"load_average_before_start": run.load_before, "quiet": run.load_before[0] < 1.0},
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
        "observer": run.observer_facts,
        "interactions": interactions,
        "errors": log.errors,
        "jobs": jobs,
        "server": server_facts,
        "checks": checks,
        "class_seconds": run.class_seconds,
        "wall_seconds": run.wall,
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
            for record in run.records
        ],
    }
    return write_results("classroom", payload, output)

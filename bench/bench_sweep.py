"""Sweep benchmark on CIFAR-10 (JPEG copy through folder:, simple_cnn classroom baseline): issue 12's targets.

    .venv/bin/python bench/bench_sweep.py [--cifar-dir /tmp/cifar/cifar10] [--workspace /tmp/mel-bench] [--only parallel,size,speed]
    .venv/bin/python bench/bench_sweep.py --dataset digits --workspace /tmp/mel-smoke --output /tmp/sweep.json   # smoke run

1. parallel: a 16-trial sweep on a fresh local Ray cluster of 2 one-CPU workers, wall time from
   before `ray.init()` to the last trial recorded (Ray's start-up included), against the same 16
   trials one after another in this process at one thread (what each Ray trial gets) and at two
   threads (this machine's cores). Target: Ray's time at most 0.6 of the one-process time. Also
   Ray's start-up time and its overhead per trial (task wall time in Ray minus the trial's own time).
2. size: the budget search for the smallest file within 1 point, over pruning amount and bits
   (each trial a prune -> quantize pipeline ending in the model zip). Target: at least 30x smaller
   than the fp32 baseline's file (the hand-made Deep Compression preset: 26.7x at -0.87 points).
3. speed: the budget search for the lowest latency at batch 256 within 2 points, over channel
   pruning with removal and int8. Target: at least 3x faster than the baseline, timed together in
   the trial (core.foundation.measures.latency: interleaved rounds, both compiled when the trial is int8).
Memory: the resident memory of this process (the driver, which holds the dataset and the baseline
as the dashboard does) plus every Ray process, sampled every 0.5 s during each sweep; PSS counts
shared pages once. Target: under 4 GB.

Each part works on a fresh copy of the workspace's cached baseline, so every run measures new trials.
Writes bench/results/sweep.json (or --output). It reports, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from bench.common import RESULTS_DIR, add_dataset_options, add_output_option, dataset_spec, write_results  # noqa: E402
from core.contract.context import RunContext  # noqa: E402
from core.contract.source import ModelSource  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.sweep import engine  # noqa: E402
from core.sweep.grid import parse_grid  # noqa: E402
from core.sweep.run import EngineOptions, SweepSpec, plan_sweep, run_sweep  # noqa: E402
from core.sweep.search import parse_search  # noqa: E402
from core.sweep.worker import TrialPayload, run_trial, strip_source  # noqa: E402

TARGETS = {"parallel_ratio_max": 0.6, "size_ratio_min": 30.0, "size_budget_points": 1.0, "speedup_min": 3.0, "speed_budget_points": 2.0, "memory_gib_max": 4.0}
PARALLEL_GRID = ["prune.amount=0.3:0.9:0.2", "prune.granularity=unstructured,channel", "prune.finetune_epochs=0,1"]  # 4 x 2 x 2 = 16
SIZE_GRID = ["prune.amount=0.86:0.96:0.02", "prune.scope=global", "prune.finetune_epochs=1", "prune.iterative_steps=2", "quantize.bits=8,6,4"]
SPEED_GRID = ["prune.amount=0.4:0.7:0.1", "prune.granularity=channel", "prune.method=ln", "prune.remove=true", "prune.finetune_epochs=4,8", "quantize.mode=static"]


class MemorySampler:
    """Peak resident memory of this process and all Ray processes, summed (RSS and PSS)."""

    def __init__(self, every_seconds: float = 0.5):
        self.every_seconds = every_seconds
        self.peak_rss_bytes = 0
        self.peak_pss_bytes = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            rss = pss = count = 0
            for pid in _tracked_pids():
                rss_kb, pss_kb = _memory_kb(pid)
                rss, pss, count = rss + rss_kb * 1024, pss + pss_kb * 1024, count + 1
            if pss > self.peak_pss_bytes:
                self.peak_pss_bytes, self.peak_rss_bytes, self.peak_processes = pss, max(rss, self.peak_rss_bytes), count
            self.peak_rss_bytes = max(rss, self.peak_rss_bytes)
            self._stop.wait(self.every_seconds)

    def as_dict(self) -> dict:
        return {"peak_rss_gib": round(self.peak_rss_bytes / 2**30, 3), "peak_pss_gib": round(self.peak_pss_bytes / 2**30, 3), "processes_at_peak": self.peak_processes}


def _tracked_pids() -> list[int]:
    """This process and every Ray process (raylet, GCS, workers) of this user."""
    pids = [os.getpid()]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "ray/" in command or "ray::" in command or "raylet" in command or "gcs_server" in command:
            pids.append(int(entry.name))
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines() if line.endswith("kB")}
    return values.get("Rss", 0), values.get("Pss", 0)


def fresh_workspace(source_root: Path, spec) -> tuple[Workspace, ModelSource]:
    """A temporary workspace with the cached baseline (and the dataset cache) of `source_root`."""
    get_baseline(BaselineConfig(spec), Workspace.open(source_root), stderr_progress(0.25))  # trained once, when missing
    root = Path(tempfile.mkdtemp(prefix="mel-sweep-bench-"))
    shutil.copy2(source_root / "runs.sqlite", root / "runs.sqlite")
    baseline_folder = get_baseline(BaselineConfig(spec), Workspace.open(source_root)).checkpoint
    shutil.copytree(baseline_folder, root / "checkpoints" / baseline_folder.name)
    if (source_root / "dataset-cache").is_dir():
        (root / "dataset-cache").symlink_to(source_root / "dataset-cache")
    workspace = Workspace.open(root)
    baseline = get_baseline(BaselineConfig(spec), workspace)
    assert baseline.from_cache
    return workspace, ModelSource.from_baseline(baseline)


def sweep(workspace, source, grid, search, objective, budget_points, cpus=2, cpus_per_trial=1) -> tuple[dict, dict, float]:
    engine.shutdown()  # a fresh cluster: its start-up is part of the measured time
    spec = SweepSpec(parse_grid(grid), parse_search(search), objective, budget_points)
    started = time.perf_counter()
    with MemorySampler() as memory:
        state = run_sweep(source, spec, RunContext(workspace, stderr_progress(0.01)), EngineOptions(cpus_per_trial=cpus_per_trial, local_cpus=cpus))
    wall = time.perf_counter() - started
    engine.shutdown()
    return state.as_json(), memory.as_dict(), wall


def sequential(workspace, source, grid, threads: int) -> dict:
    """The same trials one after another in this process (no Ray), at `threads` torch threads."""
    spec = SweepSpec(parse_grid(grid))
    previous = torch.get_num_threads()
    payload_source = strip_source(source)
    seconds = []
    started = time.perf_counter()
    try:
        for plan in plan_sweep(source, spec):
            if plan.error:
                continue
            result = run_trial(TrialPayload(plan.key, plan.steps, plan.config, payload_source, str(workspace.root), threads, "cpu"), source.dataset)
            seconds.append(result.worker_seconds)
            print(f"[sequential {threads} thread(s)] {len(seconds)} trial(s), {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(previous)
    return {"threads": threads, "trials": len(seconds), "wall_seconds": time.perf_counter() - started, "trial_seconds": seconds}


def part_parallel(root: Path, spec) -> dict:
    workspace, source = fresh_workspace(root, spec)
    payload, memory, wall = sweep(workspace, source, PARALLEL_GRID, "grid", "size", 1.0)
    one_thread = sequential(workspace, source, PARALLEL_GRID, 1)
    two_threads = sequential(workspace, source, PARALLEL_GRID, 2)
    trial_seconds = sum(trial["seconds"] or 0 for trial in payload["trials"])
    ray_trials = len(payload["trials"])
    return {
        "grid": PARALLEL_GRID,
        "trials": ray_trials,
        "ray_wall_seconds": wall,
        "ray_startup_seconds": payload["cluster"]["startup_seconds"],
        "ray_overhead_per_trial_seconds": (wall * payload["slots"] - sum(one_thread["trial_seconds"])) / max(1, ray_trials),
        "ray_trials_own_seconds": trial_seconds,
        "sequential_1_thread": one_thread,
        "sequential_2_threads": two_threads,
        "ratio_vs_1_thread": wall / one_thread["wall_seconds"],
        "ratio_vs_2_threads": wall / two_threads["wall_seconds"],
        "memory": memory,
        "failed": [trial for trial in payload["trials"] if trial["status"] != "ok"],
    }


def part_budget(root: Path, spec, grid, objective: str, budget_points: float, cpus_per_trial: int = 1) -> dict:
    workspace, source = fresh_workspace(root, spec)
    payload, memory, wall = sweep(workspace, source, grid, "budget", objective, budget_points, cpus_per_trial=cpus_per_trial)
    chosen = next((trial for trial in payload["trials"] if trial["run_id"] == payload["recommended"]), None)
    return {
        "grid": grid,
        "objective": objective,
        "budget_points": budget_points,
        "cpus_per_trial": cpus_per_trial,
        "grid_points": len(parse_grid(grid).points()),
        "trials_run": payload["trials_run"],
        "skipped": len(payload["skipped"]),
        "wall_seconds": wall,
        "memory": memory,
        "recommendation": payload["recommendation"],
        "recommended": chosen,
        "source_size_bytes": payload["source_size_bytes"],
        "trials": [
            {key: trial[key] for key in ("run_id", "status", "params", "accuracy_change_points", "size_bytes", "compression_ratio", "speedup", "latency_ms", "error")} for trial in payload["trials"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_options(parser)
    add_output_option(parser, "sweep")
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/mel-bench"), help="holds (or gets) the cached baseline; each part copies it")
    parser.add_argument("--only", default="parallel,size,speed")
    parser.add_argument("--cpus-per-trial", type=int, default=1, help="for the budget searches: CPUs (torch threads) per trial; other than 1, the results go under size_N_cpus / speed_N_cpus")
    args = parser.parse_args()
    spec = dataset_spec(args)
    output = args.output or RESULTS_DIR / "sweep.json"
    results = json.loads(output.read_text()) if output.exists() else {}
    parts = args.only.split(",")
    if "parallel" in parts:
        results["parallel"] = part_parallel(args.workspace, spec)
    suffix = "" if args.cpus_per_trial == 1 else f"_{args.cpus_per_trial}_cpus"
    if "size" in parts:
        results["size" + suffix] = part_budget(args.workspace, spec, SIZE_GRID, "size", TARGETS["size_budget_points"], args.cpus_per_trial)
    if "speed" in parts:
        results["speed" + suffix] = part_budget(args.workspace, spec, SPEED_GRID, "latency", TARGETS["speed_budget_points"], args.cpus_per_trial)
    results["targets"] = TARGETS
    results["dataset"] = spec.as_dict()
    results.pop("machine", None)
    path = write_results("sweep", results, output)
    summary = {}
    if "parallel" in results:
        p = results["parallel"]
        summary["parallel"] = {
            "ray_s": round(p["ray_wall_seconds"], 1),
            "one_process_1_thread_s": round(p["sequential_1_thread"]["wall_seconds"], 1),
            "ratio": round(p["ratio_vs_1_thread"], 3),
            "one_process_2_threads_s": round(p["sequential_2_threads"]["wall_seconds"], 1),
            "ratio_2": round(p["ratio_vs_2_threads"], 3),
            "startup_s": round(p["ray_startup_seconds"], 2),
            "overhead_per_trial_s": round(p["ray_overhead_per_trial_seconds"], 2),
            "memory": p["memory"],
        }
    for part in [key for key in results if key.startswith(("size", "speed")) and isinstance(results[key], dict) and "recommendation" in results[key]]:
        if part in results and results[part]["recommended"]:
            chosen = results[part]["recommended"]
            summary[part] = {
                "run": chosen["run_id"],
                "params": chosen["params"],
                "ratio": chosen["compression_ratio"],
                "speedup": chosen["speedup"],
                "points": chosen["accuracy_change_points"],
                "trials_run": results[part]["trials_run"],
                "of": results[part]["grid_points"],
                "memory": results[part]["memory"],
            }
        elif part in results:
            summary[part] = results[part]["recommendation"]
    print(json.dumps(summary, indent=1, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

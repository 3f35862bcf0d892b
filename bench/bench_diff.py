"""How long a per-example comparison of two CIFAR-10 runs takes, the first time and once cached.

    .venv/bin/python bench/bench_diff.py [--cifar-dir /tmp/cifar/cifar10] [--workspace /tmp/mel-bench]
    .venv/bin/python bench/bench_diff.py --dataset digits --workspace /tmp/mel-smoke-diff --output /tmp/diff.json   # smoke run

Targets (issue 13): two CIFAR-10 runs (10,000 test images) compared within 10 s the first time
(both runs' predictions computed from their artifacts) and within 2 s once both are cached.

The runs are the simple_cnn classroom baseline and two of its children, made here when missing:
channel pruning 50% with removal (one fine-tuning epoch) and static int8. Each comparison is
`core.diff.runs.diff_runs` (what the pages and `python -m core diff` call), layers included, in a
fresh process per measurement so no in-memory cache helps; "first time" deletes the two runs'
cached predictions before it starts. The process start (Python, torch import) is reported apart.
Writes bench/results/diff.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, add_dataset_options, add_output_option, child_run, dataset_spec, write_results  # noqa: E402
from core.contract.context import RunContext  # noqa: E402
from core.contract.predictions import PREDICTIONS_DIR  # noqa: E402
from core.contract.record import record  # noqa: E402
from core.contract.source import ModelSource  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.data.datasets import load_dataset  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.pruning import PruneConfig, prune  # noqa: E402
from core.quantization import StaticInt8Config, quantize  # noqa: E402

BENCH_TAG = "bench_diff"  # the recorded runs' parameter that names what this bench made them as

# Run in a child process: time the comparison alone, after the imports.
MEASURE = """
import json, sys, time
started = time.perf_counter()
from core.diff.runs import diff_runs
from core.foundation.workspace import Workspace
imported = time.perf_counter()
comparison = diff_runs(Workspace.open(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
done = time.perf_counter()
print(json.dumps({"import_seconds": imported - started, "diff_seconds": done - imported, "from_cache": comparison.from_cache,
                  "agreement": comparison.predictions.agreement, "flipped": len(comparison.predictions.flipped), "layers": len(comparison.layers.layers) if comparison.layers else 0}))
"""


def ensure_runs(workspace: Workspace, spec) -> dict[str, int]:
    progress = stderr_progress(0.25)
    dataset = load_dataset(spec, workspace, progress)
    baseline = get_baseline(BaselineConfig(spec, model="simple_cnn", device="cpu"), workspace, progress, dataset=dataset)
    source = ModelSource.from_baseline(baseline)
    made = {"baseline": baseline.run_id}
    for name, technique, config in (("prune", prune, PruneConfig(granularity="channel", amount=0.5, remove=True, finetune_epochs=1)), ("static_int8", quantize, StaticInt8Config())):
        existing = child_run(workspace, baseline.run_id, name, BENCH_TAG)
        if existing < 0:
            existing = record(technique(source, config, RunContext(workspace, progress)), workspace, extra_params={BENCH_TAG: name})
        made[name] = existing
    return made


def measure(workspace: Workspace, run_a: int, run_b: int, cold: bool) -> dict:
    if cold:
        for run_id in (run_a, run_b):
            for path in (workspace.root / PREDICTIONS_DIR).glob(f"run-{run_id}-*.safetensors"):
                path.unlink()
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", MEASURE, str(workspace.root), str(run_a), str(run_b)], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    return {**figures, "process_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--workspace", default="/tmp/mel-bench")
    parser.add_argument("--repeats", type=int, default=3, help="cold and warm measurements per pair (default: 3)")
    parser.add_argument("--threads", type=int, default=2)
    add_output_option(parser, "diff")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    workspace = Workspace.open(args.workspace)
    runs = ensure_runs(workspace, dataset_spec(args))
    pairs = {}
    for name in ("prune", "static_int8"):
        cold = [measure(workspace, runs[name], runs["baseline"], cold=True) for _ in range(args.repeats)]
        warm = [measure(workspace, runs[name], runs["baseline"], cold=False) for _ in range(args.repeats)]
        assert all(not any(m["from_cache"].values()) for m in cold) and all(all(m["from_cache"].values()) for m in warm)
        pairs[name] = {
            "run_a": runs[name],
            "run_b": runs["baseline"],
            "first_time_seconds": [m["diff_seconds"] for m in cold],
            "cached_seconds": [m["diff_seconds"] for m in warm],
            "first_time_median_seconds": statistics.median(m["diff_seconds"] for m in cold),
            "cached_median_seconds": statistics.median(m["diff_seconds"] for m in warm),
            "process_import_median_seconds": statistics.median(m["import_seconds"] for m in cold + warm),
            "agreement": warm[0]["agreement"],
            "flipped": warm[0]["flipped"],
            "layers": warm[0]["layers"],
        }
        print(f"{name}: first {pairs[name]['first_time_median_seconds']:.2f} s, cached {pairs[name]['cached_median_seconds']:.2f} s", file=sys.stderr)
    dataset = load_dataset(dataset_spec(args), workspace)
    worst_first = max(pair["first_time_median_seconds"] for pair in pairs.values())
    worst_cached = max(pair["cached_median_seconds"] for pair in pairs.values())
    results = {
        "dataset": dataset.summary(),
        "threads": args.threads,
        "runs": runs,
        "pairs": pairs,
        "targets": {
            "first_time_seconds": {"value": worst_first, "target": "<= 10", "met": worst_first <= 10},
            "cached_seconds": {"value": worst_cached, "target": "<= 2", "met": worst_cached <= 2},
        },
        "note": "diff_runs in a fresh process per measurement (dataset read from the workspace's cache, both runs' predictions, the 2x2 table, flipped images, layer errors on 256 images); the Python and torch import is process_import_median_seconds, apart.",
    }
    output = write_results("diff", results, args.output)
    print(output)


if __name__ == "__main__":
    main()

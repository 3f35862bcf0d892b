"""The same CIFAR-10 models in every deployment runtime: torch eager, torch.compile (inductor),
ONNX Runtime (CPU) and OpenVINO (CPU), fp32 and int8, batch 1 and 256.

    .venv/bin/python bench/bench_runtimes.py [--cifar-dir /tmp/cifar/cifar10] [--workspace /tmp/mel-bench] [--rounds 5]
    .venv/bin/python bench/bench_runtimes.py --dataset digits --workspace /tmp/mel-smoke-runtimes --rounds 1 --output /tmp/runtimes.json   # smoke run

Targets (issue 14, simple_cnn classroom baseline, batch 256, quiet machine):
1. int8 at least 2.0x faster than fp32 in the same runtime, in at least one runtime (every
   runtime's ratio is reported, both batch sizes).
2. The Smallest-fast preset's compression (channel pruning 50% with removal, then static int8)
   in its fastest runtime at least 4x faster than the fp32 baseline in torch eager, within 3 points.
3. Channel pruning 50% with removal at least 2x faster than its baseline in every runtime (fp32).

The runs are made here when missing, with the Smallest-fast preset's prune and quantize step
options (core.pipeline.config.PRESETS; its distillation step is left out: the targets are about
pruning and int8): prune the baseline (L2 filter norm, 50% of each layer's channels removed, 2
fine-tuning epochs), then static int8 of the pruned model. Everything is measured by
core.deploy.runtimes.measure_runtimes (what the Deploy tab and `python -m core runtimes` call) on
[baseline, int8 run] in one interleaved measurement: the baseline in fp32 and its int8 twin, the
pruned model in fp32 and the int8 run. For every target missed, ONNX Runtime's and torch's
profilers say which operators take the time. Writes bench/results/runtimes.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import add_dataset_options, add_output_option, child_run, dataset_spec, machine_facts, write_results  # noqa: E402
from core.contract.context import RunContext  # noqa: E402
from core.contract.record import record  # noqa: E402
from core.contract.source import ModelSource  # noqa: E402
from core.deploy.onnx_files import INPUT_NAME  # noqa: E402
from core.deploy.runtimes import RUNTIMES, RuntimeReport, deploy_models, measure_runtimes, table_rows  # noqa: E402
from core.foundation import history  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.data.datasets import load_dataset  # noqa: E402
from core.foundation.measures.latency import BATCH_SIZES, EAGER, THROUGHPUT_BATCH_SIZE  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.pipeline.config import PRESETS, build_pipeline_config  # noqa: E402
from core.pruning import prune  # noqa: E402
from core.quantization import quantize  # noqa: E402

TARGET_INT8_RATIO = 2.0
TARGET_SMALLEST_FAST_SPEEDUP = 4.0
TARGET_SMALLEST_FAST_POINTS = 3.0
TARGET_PRUNING_SPEEDUP = 2.0
BENCH_TAG = "bench_runtimes"


def ensure_runs(workspace: Workspace, spec) -> dict[str, int]:
    """The baseline, its Smallest-fast pruning, and that pruning's static int8 (made when missing)."""
    progress = stderr_progress(0.25)
    dataset = load_dataset(spec, workspace, progress)
    baseline = get_baseline(BaselineConfig(spec, model="simple_cnn", device="cpu"), workspace, progress, dataset=dataset)
    options = {**PRESETS["smallest-fast"].options, "steps": ("prune", "quantize")}
    config = build_pipeline_config(options, baseline.config.model)
    made = {"baseline": baseline.run_id}
    pruned = child_run(workspace, baseline.run_id, "prune", BENCH_TAG)
    if pruned < 0:
        pruned = record(prune(ModelSource.from_baseline(baseline), config.prune, RunContext(workspace, progress)), workspace, extra_params={BENCH_TAG: "prune"})
    made["prune"] = pruned
    int8 = child_run(workspace, pruned, "static_int8", BENCH_TAG)
    if int8 < 0:
        source = ModelSource.from_run(workspace, pruned)
        int8 = record(quantize(source, config.quantize, RunContext(workspace, progress)), workspace, extra_params={BENCH_TAG: "static_int8"})
    made["int8"] = int8
    return made


def label(workspace: Workspace, run_id: int) -> str:
    run = history.get_run(workspace.history_db, run_id)
    return f"run #{run.id} ({run.technique})"


def targets(report: RuntimeReport, baseline: str, pruned: str) -> dict:
    """Each target's figures, read from the one measurement."""
    per_image = {(f.model, f.runtime, f.precision, f.batch_size): f for f in report.figures}

    def latency(model, runtime, precision, size):
        found = per_image.get((model, runtime, precision, size))
        return found.latency_ms if found is not None and found.available else None

    int8_ratios = {size: {runtime: report.ratio(baseline, runtime, size) for runtime in RUNTIMES} for size in BATCH_SIZES}
    pruned_int8_ratios = {size: {runtime: report.ratio(pruned, runtime, size) for runtime in RUNTIMES} for size in BATCH_SIZES}
    big = THROUGHPUT_BATCH_SIZE
    best_int8_runtime = max((r for r in RUNTIMES if int8_ratios[big][r]), key=lambda r: int8_ratios[big][r], default=None)
    eager_fp32 = latency(baseline, EAGER, "fp32", big)
    smallest_fast = {runtime: latency(pruned, runtime, "int8", big) for runtime in RUNTIMES}
    fastest = min((r for r in RUNTIMES if smallest_fast[r]), key=lambda r: smallest_fast[r], default=None)
    baseline_accuracy = per_image[(baseline, EAGER, "fp32", big)].accuracy
    fastest_accuracy = per_image[(pruned, fastest, "int8", big)].accuracy if fastest else None
    pruning = {
        size: {
            runtime: (
                latency(baseline, runtime, "fp32", size) / latency(pruned, runtime, "fp32", size) if latency(baseline, runtime, "fp32", size) and latency(pruned, runtime, "fp32", size) else None
            )
            for runtime in RUNTIMES
        }
        for size in BATCH_SIZES
    }
    met_pruning = all(value is not None and value >= TARGET_PRUNING_SPEEDUP for value in pruning[big].values())
    return {
        "int8_vs_fp32_same_runtime": {
            "baseline": int8_ratios,
            "pruned": pruned_int8_ratios,
            "best_runtime_batch_256": best_int8_runtime,
            "best_ratio_batch_256": int8_ratios[big][best_int8_runtime] if best_int8_runtime else None,
            "target": TARGET_INT8_RATIO,
            "met": bool(best_int8_runtime and int8_ratios[big][best_int8_runtime] >= TARGET_INT8_RATIO),
        },
        "smallest_fast_vs_fp32_eager": {
            "fastest_runtime": fastest,
            "speedup": eager_fp32 / smallest_fast[fastest] if fastest and eager_fp32 else None,
            "per_runtime_speedup": {r: (eager_fp32 / v if v and eager_fp32 else None) for r, v in smallest_fast.items()},
            "accuracy_baseline": baseline_accuracy,
            "accuracy_smallest_fast": fastest_accuracy,
            "points_lost": (baseline_accuracy - fastest_accuracy) * 100 if fastest_accuracy is not None else None,
            "target_speedup": TARGET_SMALLEST_FAST_SPEEDUP,
            "target_points": TARGET_SMALLEST_FAST_POINTS,
            "met": bool(fastest and eager_fp32 / smallest_fast[fastest] >= TARGET_SMALLEST_FAST_SPEEDUP and (baseline_accuracy - fastest_accuracy) * 100 <= TARGET_SMALLEST_FAST_POINTS),
        },
        "pruning_vs_baseline_fp32": {"speedup": pruning, "target": TARGET_PRUNING_SPEEDUP, "met_in_every_runtime": met_pruning},
    }


# ------------------------------------------------------------------------------ where time goes


def onnxruntime_profile(onnx_bytes: bytes, threads: int, batch: np.ndarray, calls: int = 20) -> dict[str, float]:
    """Milliseconds per call by operator type, from ONNX Runtime's own profiler."""
    import tempfile

    import onnxruntime

    with tempfile.TemporaryDirectory() as folder:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder, "ort"))
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        for _ in range(3):
            session.run(None, {INPUT_NAME: batch})
        for _ in range(calls):
            session.run(None, {INPUT_NAME: batch})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / 1000.0
    runs = calls + 3
    return {op: round(ms / runs, 4) for op, ms in sorted(by_op.items(), key=lambda item: -item[1])}


def torch_profile(model: torch.nn.Module, batch: torch.Tensor, calls: int = 20) -> dict[str, float]:
    """Milliseconds per call by aten operator (self CPU time), from torch.profiler, eager."""
    from torch.profiler import ProfilerActivity, profile

    model = model.eval()
    with torch.no_grad():
        for _ in range(3):
            model(batch)
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(calls):
                model(batch)
    totals = {event.key: event.self_cpu_time_total / 1000.0 / calls for event in profiler.key_averages()}
    return {op: round(ms, 4) for op, ms in sorted(totals.items(), key=lambda item: -item[1])[:8]}


def profiles(workspace: Workspace, run_ids: list[int]) -> dict:
    """Where the time goes at batch 256 for the fp32 baseline and the pruned model (and their int8)."""
    models, dataset = deploy_models(workspace, run_ids)
    images = dataset.normalize(dataset.test.images[:THROUGHPUT_BATCH_SIZE]).contiguous()
    threads = torch.get_num_threads()
    result = {}
    for model in models:
        result[model.label] = {
            "onnxruntime_fp32_ms_by_op": onnxruntime_profile(model.onnx_fp32, threads, images.numpy()),
            "onnxruntime_int8_ms_by_op": onnxruntime_profile(model.onnx_int8, threads, images.numpy()) if model.onnx_int8 else None,
            "torch_eager_fp32_ms_by_op": torch_profile(model.fp32, images),
            "layer_shapes": {name: list(p.shape) for name, p in model.fp32.named_parameters() if name.endswith("weight")},
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--workspace", default="/tmp/mel-bench")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: 5)")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-operator profiles")
    add_output_option(parser, "runtimes")
    args = parser.parse_args()
    workspace = Workspace.open(args.workspace)
    spec = dataset_spec(args)
    runs = ensure_runs(workspace, spec)
    run_ids = [runs["baseline"], runs["int8"]]
    report = measure_runtimes(workspace, run_ids, rounds=args.rounds, progress=stderr_progress(0.25))
    baseline, pruned = label(workspace, runs["baseline"]), label(workspace, runs["prune"])
    payload = {
        "machine": machine_facts(),
        "dataset": spec.as_dict(),
        "runs": runs,
        "rounds": args.rounds,
        "report": report.as_dict(),
        "table": table_rows(report),
        "targets": targets(report, baseline, pruned),
    }
    if not args.no_profile:
        payload["profiles"] = profiles(workspace, run_ids)
    path = write_results("runtimes", payload, args.output)
    for row in table_rows(report):
        if row["batch_size"] == THROUGHPUT_BATCH_SIZE:
            shown = f"{row['latency_ms']:8.2f} ms  x{row['speedup_vs_fp32_eager']:5.2f} vs fp32 eager  acc {row['accuracy']:.2%}" if row["latency_ms"] else row["status"]
            print(f"{row['model']:18} {row['runtime']:26} {row['precision']:5} {shown}")
    print(json.dumps(payload["targets"], indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

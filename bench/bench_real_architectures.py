"""Real architectures on CIFAR-10 (issue 26's targets): ResNet-18 channel pruning through its
residual groups, ResNet-18 static int8 in OpenVINO, and MobileNetV2 x0.5 trained, quantized
per-channel and per-tensor.

    .venv/bin/python bench/bench_real_architectures.py [--part resnet18|mobilenet|preview|all] [--train-size 5000] [--test-size 1000]
    .venv/bin/python bench/bench_real_architectures.py --dataset digits --image-side 16 ...   # not meaningful: 8-px digits are below the stems

Targets (2 threads; figures with the machine and ISA):
1. ResNet-18 (small-image stem), channel pruning 50% with residual groups (L2 filter norm, every
   coupled group loses half its channels, removed), 2 fine-tuning epochs: >= 3.0x fewer MACs,
   batch-256 latency >= 2.5x faster in torch eager and in OpenVINO, accuracy within 2 points of
   the source (trained >= 3 epochs).
2. ResNet-18 static int8 in OpenVINO >= 3x OpenVINO fp32 at batch 256 (VNNI/AMX; 1.8x on
   AVX2-only), accuracy within 1 point.
3. MobileNetV2 x0.5 trained to >= 85% (the minutes said); static int8 per-channel within 1 point
   of fp32; per-tensor's drop measured; OpenVINO int8 >= 2.5x its fp32 on VNNI/AMX.
4. (--part preview) a slider's preview of MobileNetV2 x0.5 on 32 px, on the page's subset of
   preview_subset_size images (256 for a torchvision network), within 2 s; the lab's own
   simple_cnn on its 2,000 images still within 1 s. A preview is what the Pruning page and the
   Quantization page redraw on a slider move: core.pruning.preview_pruning (prune a copy, evaluate,
   count sizes and MACs) and quantize_model with a simulated setting on the subset. Medians over
   the page's slider positions; the same previews on 2,000 images are timed too, for comparison.

Every run is made the way the pages and the CLI make it (get_baseline, prune(), recorded), and
timed by core.deploy.runtimes.measure_runtimes, what `python -m core runtimes` calls: the int8
twin there is ONNX Runtime's quantize_static of the fp32 ONNX file, which OpenVINO runs as int8.
On 2 cores a full CIFAR-10 training of these networks takes hours, so the source models train on
a class-balanced subset (--train-size) and are evaluated on a subset of the test set
(--test-size); the JSON says both. Runs are reused when the bench is run again (tagged in the
history), so the timing can be repeated on a quiet machine with --rounds without training again.
Writes bench/results/real_architectures.json (or --output).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import DEFAULT_CIFAR_DIR, add_output_option, child_run, ensure_cifar, write_results  # noqa: E402
from core.contract.context import RunContext  # noqa: E402
from core.contract.record import record  # noqa: E402
from core.contract.source import ModelSource  # noqa: E402
from core.deploy.runtimes import EAGER, OPENVINO, RuntimeReport, measure_runtimes  # noqa: E402
from core.foundation import history  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from core.foundation.measures.latency import THROUGHPUT_BATCH_SIZE  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.pruning import PruneConfig, prune  # noqa: E402

BENCH_TAG = "bench_real_architectures"
TIMED_RUNTIMES = (EAGER, OPENVINO)  # the targets' two; `python -m core runtimes` times all four
TARGETS = {
    "resnet18_channel_50": {"mac_reduction_min": 3.0, "latency_speedup_min": 2.5, "accuracy_drop_points_max": 2.0},
    "resnet18_int8_openvino": {"speedup_min_vnni": 3.0, "speedup_min_avx2": 1.8, "accuracy_drop_points_max": 1.0},
    "mobilenet_v2_x0_5": {"accuracy_min": 0.85, "int8_per_channel_drop_points_max": 1.0, "openvino_int8_speedup_min_vnni": 2.5},
    "preview": {"torchvision_max_s": 2.0, "lab_own_max_s": 1.0},
}
PREVIEW_AMOUNTS = (0.3, 0.5, 0.7, 0.9)  # slider positions timed per preview kind
PREVIEW_BITS = (8, 6, 4, 3)


def runtime_figures(report: RuntimeReport, label: str) -> dict:
    """Batch-256 latency and accuracy of one model in each runtime and precision."""
    rows = {}
    for figure in report.figures:
        if figure.model == label and figure.batch_size == THROUGHPUT_BATCH_SIZE:
            rows[f"{figure.runtime} {figure.precision}"] = {"latency_ms": figure.latency_ms, "accuracy": figure.accuracy, "reason": figure.reason}
    return rows


def label_of(report: RuntimeReport, run_id: int) -> str:
    return next(figure.model for figure in report.figures if figure.run_id == run_id)


def latency(report: RuntimeReport, label: str, runtime: str, precision: str = "fp32") -> float | None:
    figure = report.figure(label, runtime, precision, THROUGHPUT_BATCH_SIZE)
    return figure.latency_ms if figure is not None else None


def timed_baseline(spec: DatasetSpec, workspace: Workspace, model: str, epochs: int, progress):
    """The cached baseline of `model` (trained now when missing), its dataset and the minutes it took."""
    dataset = load_dataset(spec, workspace, progress)
    started = time.perf_counter()
    baseline = get_baseline(BaselineConfig(spec, model=model, epochs=epochs, device="cpu"), workspace, progress, dataset=dataset)
    return baseline, dataset, (time.perf_counter() - started) / 60


def resnet18_part(spec: DatasetSpec, workspace: Workspace, args) -> dict:
    progress = stderr_progress(0.5)
    baseline, dataset, baseline_minutes = timed_baseline(spec, workspace, "resnet18", args.resnet_epochs, progress)
    pruned_id = child_run(workspace, baseline.run_id, "channel_50", BENCH_TAG)
    if pruned_id < 0:
        config = PruneConfig(method="ln", granularity="channel", amount=0.5, scope="layer", remove=True, finetune_epochs=args.finetune_epochs)
        result = prune(ModelSource.from_baseline(baseline), config, RunContext(workspace, progress))
        pruned_id = record(result, workspace, extra_params={BENCH_TAG: "channel_50"})
    report = measure_runtimes(workspace, [baseline.run_id, pruned_id], rounds=args.rounds, runtimes=TIMED_RUNTIMES, progress=progress)
    source_label, pruned_label = label_of(report, baseline.run_id), label_of(report, pruned_id)
    recorded = history.get_run(workspace.history_db, pruned_id).metrics  # the run's headline, as recorded
    macs_before, macs_after = recorded.get("macs_before"), recorded.get("macs_after")
    accuracy_source = report.figure(source_label, EAGER, "fp32", THROUGHPUT_BATCH_SIZE).accuracy
    accuracy_pruned = report.figure(pruned_label, EAGER, "fp32", THROUGHPUT_BATCH_SIZE).accuracy
    speedups = {runtime: (latency(report, source_label, runtime) or 0) / (latency(report, pruned_label, runtime) or float("inf")) for runtime in (EAGER, OPENVINO)}
    ov_fp32, ov_int8 = latency(report, source_label, OPENVINO), latency(report, source_label, OPENVINO, "int8")
    ov_int8_accuracy = report.figure(source_label, OPENVINO, "int8", THROUGHPUT_BATCH_SIZE).accuracy
    return {
        "baseline": {"run_id": baseline.run_id, "epochs": baseline.recipe.epochs, "train_images": len(dataset.train.labels), "minutes": round(baseline_minutes, 1), "from_cache": baseline.from_cache},
        "channel_50": {
            "run_id": pruned_id,
            "finetune_epochs": args.finetune_epochs,
            "macs_before": macs_before,
            "macs_after": macs_after,
            "mac_reduction": macs_before / macs_after if macs_before and macs_after else None,
            "accuracy_source": accuracy_source,
            "accuracy_pruned": accuracy_pruned,
            "accuracy_drop_points": 100 * (accuracy_source - accuracy_pruned),
            "latency_speedup_batch_256": speedups,
            "targets": TARGETS["resnet18_channel_50"],
        },
        "int8_openvino": {
            "fp32_ms": ov_fp32,
            "int8_ms": ov_int8,
            "speedup": ov_fp32 / ov_int8 if ov_fp32 and ov_int8 else None,
            "accuracy_fp32": report.figure(source_label, OPENVINO, "fp32", THROUGHPUT_BATCH_SIZE).accuracy,
            "accuracy_int8": ov_int8_accuracy,
            "int8_source": report.int8_sources.get(source_label),
            "targets": TARGETS["resnet18_int8_openvino"],
        },
        "runtimes": {source_label: runtime_figures(report, source_label), pruned_label: runtime_figures(report, pruned_label)},
        "test_images": report.test_images,
        "threads": report.threads,
        "rounds": report.rounds,
    }


def mobilenet_part(spec: DatasetSpec, workspace: Workspace, args) -> dict:
    from core.foundation.training.quick_evaluation import QuickEvaluator
    from core.quantization.granularity import granularity_lesson  # the Quantization page's per-tensor vs per-channel figures

    progress = stderr_progress(0.5)
    baseline, dataset, minutes = timed_baseline(spec, workspace, "mobilenet_v2_x0_5", args.mobilenet_epochs, progress)
    report = measure_runtimes(workspace, [baseline.run_id], rounds=args.rounds, runtimes=TIMED_RUNTIMES, progress=progress)
    label = label_of(report, baseline.run_id)
    lesson = granularity_lesson(baseline.model.cpu(), QuickEvaluator(dataset, size=len(dataset.test)))
    ov_fp32, ov_int8 = latency(report, label, OPENVINO), latency(report, label, OPENVINO, "int8")
    return {
        "baseline": {"run_id": baseline.run_id, "epochs": baseline.recipe.epochs, "train_images": len(dataset.train.labels), "minutes": round(minutes, 1), "from_cache": baseline.from_cache},
        "accuracy_fp32": report.figure(label, EAGER, "fp32", THROUGHPUT_BATCH_SIZE).accuracy,
        "int8_in_runtimes": runtime_figures(report, label),
        "openvino_int8_speedup": ov_fp32 / ov_int8 if ov_fp32 and ov_int8 else None,
        "weights_int8_accuracy": {
            "images": lesson.eval_images,
            "float": lesson.accuracy_float,
            "per_tensor": lesson.accuracy_per_tensor,
            "per_channel": lesson.accuracy_per_channel,
            "worst_layer": lesson.worst_layer,
        },
        "test_images": report.test_images,
        "targets": TARGETS["mobilenet_v2_x0_5"],
    }


def preview_seconds(source: ModelSource, images: int) -> dict:
    """Median seconds of each preview kind a slider redraws, on `images` class-balanced test images."""
    import statistics

    from core.foundation.training.quick_evaluation import QuickEvaluator
    from core.pruning import preview_pruning
    from core.quantization import SimulateConfig
    from core.quantization.apply import quantize_model

    evaluator = QuickEvaluator(source.dataset, size=images)
    accuracy_before = evaluator.accuracy(source.model)
    previews = {
        "unstructured pruning": lambda amount, _bits: preview_pruning(source, PruneConfig(method="l1", granularity="unstructured", amount=amount, scope="global"), evaluator),
        "channel pruning (removed)": lambda amount, _bits: preview_pruning(source, PruneConfig(method="ln", granularity="channel", amount=amount, scope="layer", remove=True), evaluator),
        "simulated quantization": lambda _amount, bits: quantize_model(
            source.model, source.dataset, SimulateConfig(bits=bits), eval_split=evaluator.split, accuracy_before=accuracy_before, seed=source.seed
        ),
    }
    timings = {}
    for kind, preview in previews.items():
        preview(PREVIEW_AMOUNTS[0], PREVIEW_BITS[0])  # first call: warm caches, as a page's first draw does
        seconds = []
        for amount, bits in zip(PREVIEW_AMOUNTS, PREVIEW_BITS):
            started = time.perf_counter()
            preview(amount, bits)
            seconds.append(time.perf_counter() - started)
        timings[kind] = {"median_s": statistics.median(seconds), "seconds": seconds}
    return {"images": evaluator.images, "previews": timings, "slowest_median_s": max(t["median_s"] for t in timings.values())}


def preview_part(spec: DatasetSpec, workspace: Workspace, args) -> dict:
    from core.foundation.training.quick_evaluation import EVAL_SUBSET_SIZE, preview_subset_size

    progress = stderr_progress(0.5)
    part = {}
    for name, epochs in (("mobilenet_v2_x0_5", args.mobilenet_epochs), ("simple_cnn", None)):
        baseline, _dataset, minutes = timed_baseline(spec, workspace, name, epochs, progress)
        source = ModelSource.from_baseline(baseline)
        source.model.cpu()
        entry = {"baseline_run_id": baseline.run_id, "page_subset": preview_seconds(source, preview_subset_size(name))}
        if preview_subset_size(name) != EVAL_SUBSET_SIZE:
            entry["on_2000_images"] = preview_seconds(source, EVAL_SUBSET_SIZE)
        part[name] = entry
        print(f"preview {name}: {entry['page_subset']['images']} images, slowest median {entry['page_subset']['slowest_median_s']:.2f} s", flush=True)
    part["targets"] = TARGETS["preview"]
    part["met"] = (
        part["mobilenet_v2_x0_5"]["page_subset"]["slowest_median_s"] <= TARGETS["preview"]["torchvision_max_s"]
        and part["simple_cnn"]["page_subset"]["slowest_median_s"] <= TARGETS["preview"]["lab_own_max_s"]
    )
    return part


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("resnet18", "mobilenet", "preview", "all"), default="resnet18")
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR_DIR)
    parser.add_argument("--dataset", help="another dataset instead of the CIFAR-10 folder (a smoke run)")
    parser.add_argument("--train-size", type=int, default=5000, help="class-balanced training subset (default 5000 of 50,000)")
    parser.add_argument("--test-size", type=int, default=1000, help="test subset every figure is measured on (default 1000 of 10,000)")
    parser.add_argument("--resnet-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--mobilenet-epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best median kept)")
    parser.add_argument("--workspace", default=os.environ.get("MEL_HOME", "/tmp/mel-bench-arch"))
    add_output_option(parser, "real_architectures")
    args = parser.parse_args()

    torch.set_num_threads(2)
    workspace = Workspace.open(args.workspace)
    os.environ["MEL_HOME"] = str(workspace.root)
    name = args.dataset or f"folder:{ensure_cifar(args.cifar_dir)}"
    spec = DatasetSpec(name, train_size=args.train_size, test_size=args.test_size)
    results: dict = {"dataset": spec.as_dict()}
    if args.part in ("resnet18", "all"):
        results["resnet18"] = resnet18_part(spec, workspace, args)
        print_resnet18(results["resnet18"])
    if args.part in ("mobilenet", "all"):
        results["mobilenet_v2_x0_5"] = mobilenet_part(spec, workspace, args)
        print(results["mobilenet_v2_x0_5"], flush=True)
    if args.part in ("preview", "all"):
        results["preview"] = preview_part(spec, workspace, args)
    print(f"wrote {write_results('real_architectures', results, args.output)}")
    return 0


def print_resnet18(part: dict) -> None:
    channel, int8 = part["channel_50"], part["int8_openvino"]
    print(
        f"resnet18 baseline run #{part['baseline']['run_id']} ({part['baseline']['epochs']} epochs on {part['baseline']['train_images']} images, {part['baseline']['minutes']} min): "
        f"channel 50% + {channel['finetune_epochs']} epochs: MACs {channel['mac_reduction']:.2f}x fewer, batch-256 speedup "
        + ", ".join(f"{runtime} {value:.2f}x" for runtime, value in channel["latency_speedup_batch_256"].items())
        + f", accuracy {channel['accuracy_source']:.4f} -> {channel['accuracy_pruned']:.4f} ({channel['accuracy_drop_points']:+.2f} points drop); "
        f"OpenVINO int8 {int8['speedup'] or float('nan'):.2f}x its fp32, accuracy {int8['accuracy_fp32']:.4f} -> {int8['accuracy_int8'] or float('nan'):.4f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())

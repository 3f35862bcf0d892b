"""Quantization benchmark on CIFAR-10 (classroom preset, simple_cnn): the issue's targets.

    .venv/bin/python bench/bench_quantization.py [--cifar-dir /tmp/cifar/cifar10] [--workspace /tmp/mel-bench]

1. Static int8 (PT2E, X86InductorQuantizer): accuracy within 1 point of fp32 on the full test set;
   weights at least 3.5x smaller (deployed bytes: int8 values + per-channel scales); compiled int8
   latency at least 2x lower than compiled fp32 (both torch.compile, inductor, freezing on).
2. 4-bit per-channel QAT: within 2 points of fp32 (with post-training 4-bit beside it).
3. The simulate mode re-renders within 1 s (median) after a bit-width change: measured by driving
   the real page with Streamlit's AppTest, and the core work alone.
Also reported: dynamic int8 (Linear only), 8-bit QAT converted to int8, the post-training accuracy
at 8..2 bits, and every variant's deployed and file bytes.

Writes bench/results/quantization.json and prints a summary. Never a pass/fail test: it reports.
Latency figures come from a shared CPU: fp32 and int8 are timed alternately in the same process,
so their ratio is more trustworthy than either absolute number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from bench.common import DEFAULT_CIFAR_DIR, ensure_cifar, write_results  # noqa: E402
from core.baseline import BaselineConfig, get_baseline  # noqa: E402
from core.datasets import DatasetSpec, class_balanced_subset  # noqa: E402
from core.progress import stderr_progress  # noqa: E402
from core.quantization import DynamicInt8Config, QATConfig, SimulateConfig, StaticInt8Config, accuracy_by_bits, quantize  # noqa: E402
from core.quantization.latency import measure_compiled_latency  # noqa: E402
from core.quantization.runs import save_and_record  # noqa: E402
from core.workspace import Workspace  # noqa: E402

PARTS = ("static", "dynamic", "qat4", "qat8", "sweep", "simulate")
SLIDER_BITS = (7, 6, 5, 4, 3, 2)  # each a new setting, so nothing comes from the cache
EVAL_SUBSET_SIZE = 2000


def page_slider_timings(folder_name: str, workspace_root: Path) -> list[float]:
    """Seconds per page rerun after a bit-width change, driving the real app."""
    from streamlit.testing.v1 import AppTest

    os.environ["MEL_HOME"] = str(workspace_root)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=600)
    at.run()
    at.selectbox(key="sidebar_dataset").set_value("folder…").run()
    at.text_input(key="sidebar_folder").set_value(folder_name[len("folder:"):]).run()
    at.switch_page("pages/quantization.py")
    at.run()
    if at.exception or not at.metric:
        raise RuntimeError(f"the quantization page did not render: {at.exception or [e.value for e in at.error] or [i.value for i in at.info]}")
    timings = []
    for granularity in ("per-channel", "per-tensor"):
        at.radio(key="quant_granularity").set_value(granularity).run()
        for bits in SLIDER_BITS:
            at.slider(key="quant_bits").set_value(bits)
            start = time.perf_counter()
            at.run()
            timings.append(time.perf_counter() - start)
            if at.exception:
                raise RuntimeError(str(at.exception))
        at.slider(key="quant_bits").set_value(8).run()
    return timings


def core_simulate_timings(baseline, split, accuracy_before: float) -> list[float]:
    """The same work without Streamlit: fake-quantize a copy, evaluate on 2,000 images, account sizes."""
    timings = []
    for per_channel in (True, False):
        for bits in SLIDER_BITS:
            start = time.perf_counter()
            quantize(baseline.model, baseline.dataset, SimulateConfig(bits, per_channel), eval_split=split, accuracy_before=accuracy_before)
            timings.append(time.perf_counter() - start)
    return timings


def variant_summary(result, latency=None) -> dict:
    report = result.report
    summary = {
        "accuracy_before": report.accuracy_before,
        "accuracy_after": report.accuracy_after,
        "accuracy_drop_points": 100 * (report.accuracy_before - report.accuracy_after),
        "post_training_accuracy": report.post_training_accuracy,
        "size_bytes_before": report.size_bytes_before,
        "size_bytes_after": report.size_bytes_after,
        "artifact_bytes_before": report.artifact_bytes_before,
        "artifact_bytes_after": report.size.artifact_bytes,
        "compression_ratio": report.compression_ratio,
        "size": report.size.as_dict(),
        "quantized_layers": report.quantized_layers,
        "fp32_layers": report.fp32_layers,
        "simulated": report.simulated,
        "error_per_layer": report.error_per_layer,
        "quantize_seconds": report.quantize_seconds,
        "notes": report.notes,
    }
    if latency is not None:
        summary["latency"] = latency.as_dict()
    return summary


def weight_ratio(result) -> float:
    """fp32 weight bytes over stored weight bytes (int values + scales + zero points), weights only."""
    weights = [layer for layer in result.report.layers if layer.quantized]
    fp32 = sum(4 * layer.weight_numel for layer in weights)
    stored = result.report.size.quantized_values_bytes + sum(
        quantized.scale.numel() * 4 + (0 if quantized.spec.symmetric else quantized.zero_point.numel() * 4) for quantized in result.quantized_weights.values()
    )
    return fp32 / stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR_DIR)
    parser.add_argument("--workspace", default=os.environ.get("MEL_HOME", "/tmp/mel-bench"))
    parser.add_argument("--calibration-size", type=int, default=1024)
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--latency-rounds", type=int, default=7)
    parser.add_argument("--skip-page", action="store_true", help="skip the AppTest slider timing")
    parser.add_argument("--skip-qat8", action="store_true", help="skip 8-bit PT2E QAT (the slowest part)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable); results go to quantization-PARTS.json")
    args = parser.parse_args()
    parts = set(args.only or PARTS) - ({"qat8"} if args.skip_qat8 else set())

    workspace = Workspace.open(args.workspace)
    os.environ["MEL_HOME"] = str(workspace.root)
    folder_name = f"folder:{ensure_cifar(args.cifar_dir)}"
    baseline = get_baseline(BaselineConfig(DatasetSpec(folder_name)), workspace, stderr_progress())
    dataset = baseline.dataset
    print(f"baseline: {baseline.config.model} on {dataset.name}, test accuracy {baseline.evaluation.accuracy:.4f} ({'cached' if baseline.from_cache else 'trained now'}), torch threads {torch.get_num_threads()}", flush=True)
    results: dict = {"baseline": {"checkpoint": str(baseline.checkpoint), "recipe": baseline.recipe.as_dict(), **baseline.metrics.as_dict()}}
    test_inputs = dataset.normalize(dataset.test.images)
    fp32_accuracy = baseline.evaluation.accuracy

    if "static" in parts:  # 1. Static int8, and the min/max observer beside the histogram one.
        static = quantize(baseline.model, dataset, StaticInt8Config(calibration_size=args.calibration_size), base_recipe=baseline.recipe, accuracy_before=fp32_accuracy)
        static_latency = measure_compiled_latency(baseline.fresh_copy().cpu(), static.model, baseline.example_input().cpu(), reference_inputs=test_inputs, rounds=args.latency_rounds)
        save_and_record(baseline, static, workspace, static_latency)
        drop = 100 * (fp32_accuracy - static.report.accuracy_after)
        ratio = weight_ratio(static)
        speedup = static_latency.speedup
        results["static_int8"] = {
            **variant_summary(static, static_latency),
            "weight_compression": ratio,
            "targets": {"accuracy_drop_points_max": 1.0, "weight_compression_min": 3.5, "latency_speedup_min": 2.0},
            "met": {"accuracy": drop <= 1.0, "size": ratio >= 3.5, "latency": speedup is not None and speedup >= 2.0},
        }
        latency_text = f"compiled fp32 {static_latency.fp32_latency_ms:.2f} ms vs int8 {static_latency.quantized_latency_ms:.2f} ms (batch {static_latency.batch_size}, {speedup:.2f}x), compiled int8 agrees with the reference on {static_latency.prediction_agreement:.2%}" if static_latency.available else f"latency unavailable: {static_latency.reason}"
        print(f"static int8 ({args.calibration_size} calibration images, histogram): accuracy {fp32_accuracy:.4f} -> {static.report.accuracy_after:.4f} ({drop:+.2f} points drop); "
              f"weights {ratio:.2f}x smaller; model {static.report.size_bytes_before:,} -> {static.report.size_bytes_after:,} B deployed ({static.report.compression_ratio:.2f}x), file {static.report.artifact_bytes_before:,} -> {static.report.size.artifact_bytes:,} B; {latency_text}", flush=True)

        minmax = quantize(baseline.model, dataset, StaticInt8Config(calibration_size=args.calibration_size, observer="minmax"), accuracy_before=fp32_accuracy)
        results["static_int8_minmax"] = variant_summary(minmax)
        print(f"static int8, min/max observer: accuracy {minmax.report.accuracy_after:.4f}", flush=True)

    if "dynamic" in parts:
        # Dynamic int8, for the size/latency comparison.
        dynamic = quantize(baseline.model, dataset, DynamicInt8Config(), accuracy_before=fp32_accuracy)
        dynamic_latency = measure_compiled_latency(baseline.fresh_copy().cpu(), dynamic.model, baseline.example_input().cpu(), rounds=args.latency_rounds)
        save_and_record(baseline, dynamic, workspace, dynamic_latency)
        results["dynamic_int8"] = variant_summary(dynamic, dynamic_latency)
        print(f"dynamic int8 (Linear only; {', '.join(dynamic.report.fp32_layers)} fp32): accuracy {dynamic.report.accuracy_after:.4f}, deployed {dynamic.report.size_bytes_after:,} B ({dynamic.report.compression_ratio:.2f}x)"
              + (f", compiled {dynamic_latency.fp32_latency_ms:.2f} -> {dynamic_latency.quantized_latency_ms:.2f} ms ({dynamic_latency.speedup:.2f}x)" if dynamic_latency.available else f", latency unavailable: {dynamic_latency.reason}"), flush=True)

    if "qat4" in parts:
        # 2. QAT at 4 bits, per-channel symmetric, against post-training at the same setting.
        qat4 = quantize(baseline.model, dataset, QATConfig(4, args.qat_epochs), base_recipe=baseline.recipe, progress=stderr_progress(0.25), accuracy_before=fp32_accuracy)
        save_and_record(baseline, qat4, workspace)
        drop = 100 * (fp32_accuracy - qat4.report.accuracy_after)
        results["qat_4bit_per_channel"] = {**variant_summary(qat4), "epochs": args.qat_epochs, "targets": {"accuracy_drop_points_max": 2.0}, "met": {"accuracy": drop <= 2.0}}
        print(f"QAT 4-bit per-channel, {args.qat_epochs} epochs: post-training {qat4.report.post_training_accuracy:.4f} -> QAT {qat4.report.accuracy_after:.4f} ({drop:+.2f} points vs fp32); deployed {qat4.report.size_bytes_after:,} B packed ({qat4.report.compression_ratio:.2f}x), file {qat4.report.size.artifact_bytes:,} B", flush=True)

    if "qat8" in parts:
        qat8 = quantize(baseline.model, dataset, QATConfig(8, args.qat_epochs), base_recipe=baseline.recipe, progress=stderr_progress(0.25), accuracy_before=fp32_accuracy)
        save_and_record(baseline, qat8, workspace)
        results["qat_8bit_int8"] = {**variant_summary(qat8), "epochs": args.qat_epochs}
        print(f"QAT 8-bit (PT2E, converted to int8), {args.qat_epochs} epochs: post-training {qat8.report.post_training_accuracy:.4f} -> QAT {qat8.report.accuracy_after:.4f}", flush=True)

    if "sweep" in parts:
        sweep = accuracy_by_bits(baseline.model, dataset, dataset.test)
        results["post_training_by_bits_per_channel"] = sweep
        print("post-training (simulated, per-channel symmetric), full test set: " + ", ".join(f"{bits} bits {accuracy:.4f}" for bits, accuracy in sweep.items()), flush=True)

    if "simulate" in parts:
        # 3. Simulate re-render time.
        split = class_balanced_subset(dataset.test, EVAL_SUBSET_SIZE, dataset.num_classes, 0, "test")
        from core.training import evaluate

        subset_accuracy = evaluate(baseline.model, dataset, split).accuracy
        core = core_simulate_timings(baseline, split, subset_accuracy)
        slider = {"core_median_s": statistics.median(core), "core_s": core, "target_s": 1.0}
        if not args.skip_page:
            page = page_slider_timings(folder_name, workspace.root)
            slider.update({"page_rerun_median_s": statistics.median(page), "page_rerun_s": page})
        slider["met"] = slider.get("page_rerun_median_s", slider["core_median_s"]) <= 1.0
        results["simulate_rerender"] = slider
        print(f"simulate re-render after a bit-width change: core {slider['core_median_s']:.3f} s" + ("" if args.skip_page else f", page rerun {slider['page_rerun_median_s']:.3f} s (median of {len(page)})"), flush=True)

    path = write_results("quantization" if parts == set(PARTS) else "quantization-" + "-".join(sorted(parts)), results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

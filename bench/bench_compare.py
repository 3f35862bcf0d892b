"""Compare & report benchmark on CIFAR-10 (classroom preset, simple_cnn): the issue's three targets.

    .venv/bin/python bench/bench_compare.py [--cifar-dir /tmp/cifar/cifar10] [--workspace /tmp/mel-bench] [--only deep,fast,render]

1. The "Deep Compression style" preset (prune 90% + fine-tune + static int8 + compressed encoding):
   at least 20x smaller than the fp32 baseline in bytes of the honest compressed artifact (the model
   zip written to disk), accuracy within 1.5 points (measured on the model rebuilt from that zip).
2. The "Smallest fast model" preset (distill + channel pruning with removal + static int8): at least
   3x lower measured latency than the fp32 baseline, both compiled by inductor, batch 256,
   interleaved rounds; accuracy within 3 points.
3. The Compare page with 200 recorded runs renders within 2 s: driven by Streamlit's AppTest
   (server side: read the history, summarise, build the table and the charts, serialise them).

Writes bench/results/compare.json and prints a summary. Never a pass/fail test: it reports.
Latencies are measured on a CPU shared with other processes: the ratio is measured interleaved in
one process, absolute milliseconds may be inflated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import DEFAULT_CIFAR_DIR, RESULTS_DIR, ensure_cifar, write_results  # noqa: E402
from core.baseline import BaselineConfig, get_baseline  # noqa: E402
from core.compare.cli import step_option_defaults  # noqa: E402
from core.compare.pipeline import PRESETS, build_pipeline_config, run_pipeline  # noqa: E402
from core.datasets import DatasetSpec  # noqa: E402
from core.progress import stderr_progress  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TARGETS = {"deep_compression_ratio": 20.0, "deep_compression_max_drop_points": 1.5, "smallest_fast_speedup": 3.0, "smallest_fast_max_drop_points": 3.0, "render_seconds": 2.0}


def run_preset(name: str, baseline, workspace: Workspace) -> dict:
    options = {**step_option_defaults(), **PRESETS[name].options, "preset": name}
    config = build_pipeline_config(options, baseline.config.model, baseline.config.seed, baseline.config.epochs, baseline.config.device)
    started = time.perf_counter()
    result = run_pipeline(baseline, config, workspace, stderr_progress(0.25))
    summary = result.summary()
    row = {
        "preset": name,
        "title": PRESETS[name].title,
        "options": {key: list(value) if isinstance(value, tuple) else value for key, value in PRESETS[name].options.items()},
        "seconds": time.perf_counter() - started,
        **{key: summary[key] for key in ("accuracy_before", "accuracy_after", "accuracy_change_points", "size_bytes_before", "size_bytes_after", "compression_ratio", "latency_ms_before", "latency_ms_after", "speedup", "latency_batch_size", "latency_runtime", "latency_threads", "encoding", "artifact_path", "run_id")},
        "steps": [{key: step[key] for key in ("step", "run_id", "accuracy", "size_bytes", "size_measure", "params", "nonzero_params", "macs", "seconds")} for step in summary["steps"]],
    }
    print(f"{PRESETS[name].title}: {row['compression_ratio']:.1f}x smaller ({row['size_bytes_before']:,} -> {row['size_bytes_after']:,} bytes), "
          f"accuracy {100 * row['accuracy_before']:.2f}% -> {100 * row['accuracy_after']:.2f}% ({row['accuracy_change_points']:+.2f} points), "
          f"latency {row['latency_ms_before'] or float('nan'):.2f} -> {row['latency_ms_after'] or float('nan'):.2f} ms ({row['speedup'] or float('nan'):.2f}x; {row['latency_runtime']}), {row['seconds']:.0f} s", flush=True)
    return row


def seed_history(workspace: Workspace, baseline_run_id: int, count: int) -> None:
    """`count` runs in realistic chains (baseline -> distill -> prune -> quantize -> pipeline) with
    each technique's own metric names, so the page summarises and draws what it would in class."""
    from core import history

    rng = random.Random(0)
    db = workspace.history_db
    techniques = ["prune", "quantize", "distill", "pipeline"]
    written = 0
    while written < count:
        parent = baseline_run_id
        for technique in techniques[: rng.randint(1, 4)]:
            if written >= count:
                break
            accuracy = rng.uniform(0.85, 0.99)
            if technique == "prune":
                metrics = {"accuracy_after": accuracy, "accuracy_before": 0.98, "size_bytes_dense": 159_712, "size_bytes_sparse": rng.randint(15_000, 150_000), "size_bytes_gzip": rng.randint(14_000, 150_000), "latency_ms_before": 4.0, "latency_ms_after": rng.uniform(1.0, 4.0), "latency_batch_size": 256, "params": 39_742, "nonzero_params": rng.randint(4_000, 39_742), "macs": 258_430}
                params = {"method": rng.choice(["l1", "ln", "random"]), "amount": round(rng.uniform(0.1, 0.9), 2), "granularity": rng.choice(["unstructured", "channel"]), "finetune_epochs": rng.randint(0, 3)}
            elif technique == "quantize":
                metrics = {"accuracy_after": accuracy, "accuracy_before": 0.98, "artifact_bytes_after": rng.randint(10_000, 45_000), "size_bytes_after": rng.randint(9_000, 42_000), "latency_ms_fp32": 3.0, "latency_ms_quantized": rng.uniform(1.0, 3.0)}
                params = {"mode": rng.choice(["simulate", "dynamic", "static", "qat"]), "bits": rng.randint(2, 8)}
            elif technique == "distill":
                metrics = {"accuracy": accuracy, "size_bytes": rng.choice([41_000, 159_712]), "latency_ms": rng.uniform(0.5, 1.5), "latency_batch_size": 32, "latency_device": "cpu", "latency_threads": 1, "params": 10_000, "gain": rng.uniform(-0.01, 0.03)}
                params = {"teacher": "teacher", "student": "simple_cnn_narrow", "temperature": rng.choice([2.0, 4.0, 8.0]), "alpha": 0.9}
            else:
                size = rng.randint(5_000, 20_000)
                metrics = {"accuracy": accuracy, "accuracy_after": accuracy, "accuracy_before": 0.98, "size_bytes_compressed": size, "size_bytes_dense": 159_712, "latency_ms_before": 4.0, "latency_ms_after": rng.uniform(0.5, 2.0), "latency_batch_size": 256, "before_run_id": baseline_run_id,
                           "steps": [{"step": "baseline", "size_bytes": 159_712, "accuracy": 0.98}, {"step": "prune", "size_bytes": 30_000, "accuracy": accuracy + 0.005}, {"step": "quantize", "size_bytes": 12_000, "accuracy": accuracy}, {"step": "encode", "size_bytes": size, "accuracy": accuracy}]}
                params = {"preset": "deep-compression", "steps": ["prune", "quantize"]}
            parent = history.record_run(db, technique, "digits", "simple_cnn", params, metrics, parent_id=parent)
            written += 1


def render_seconds(run_count: int) -> dict:
    """Seconds for the Compare page's server-side render with `run_count` runs, through AppTest."""
    import tests.conftest  # noqa: F401  (the AppTest fix for st.navigation pages; sets nothing else)
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory(prefix="mel-bench-render-") as root:
        os.environ["MEL_HOME"] = root
        workspace = Workspace.open(root)
        baseline = get_baseline(BaselineConfig(DatasetSpec("digits")), workspace)  # the sidebar's default baseline
        seed_history(workspace, baseline.run_id, run_count - 1)
        at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=300)
        at.run()
        started = time.perf_counter()
        at.switch_page("pages/compare.py")
        at.run()
        cold = time.perf_counter() - started
        assert not at.exception, at.exception
        rows = len(at.dataframe[0].value)
        timings: dict[str, list[float]] = {"Runs": [], "Charts": []}
        for _ in range(5):
            for tab in timings:
                at.session_state["compare_tab"] = tab
                started = time.perf_counter()
                at.run()
                timings[tab].append(time.perf_counter() - started)
                assert not at.exception, at.exception
        charts = len(at.get("plotly_chart"))
    result = {
        "runs": run_count,
        "table_rows": rows,
        "charts_drawn": charts,
        "first_render_seconds": cold,  # includes importing the page's modules once per server
        "runs_tab_median_seconds": statistics.median(timings["Runs"]),
        "charts_tab_median_seconds": statistics.median(timings["Charts"]),
        "render_seconds": max(statistics.median(timings["Runs"]), statistics.median(timings["Charts"])),
        "method": "streamlit.testing AppTest, whole app (sidebar + page), median of 5 reruns per tab",
    }
    print(f"Compare page with {run_count} runs: Runs tab {result['runs_tab_median_seconds']:.2f} s, Charts tab {result['charts_tab_median_seconds']:.2f} s (median of 5), first render {cold:.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR_DIR)
    parser.add_argument("--workspace", default=os.environ.get("MEL_HOME", "/tmp/mel-bench"))
    parser.add_argument("--only", default="deep,fast,render", help="comma-separated subset of deep, fast, render")
    parser.add_argument("--render-runs", type=int, default=200)
    args = parser.parse_args()
    parts = set(args.only.split(","))
    results: dict = {"targets": TARGETS}
    if parts & {"deep", "fast"}:
        cifar = ensure_cifar(args.cifar_dir)
        workspace = Workspace.open(args.workspace)
        baseline = get_baseline(BaselineConfig(DatasetSpec(f"folder:{cifar}")), workspace, stderr_progress(0.25))
        results["baseline"] = {"accuracy": baseline.evaluation.accuracy, "size_bytes": baseline.metrics.size_bytes, "params": baseline.metrics.params, "run_id": baseline.run_id, "checkpoint": str(baseline.checkpoint)}
        print(f"baseline: {baseline.config.model} on CIFAR-10, {100 * baseline.evaluation.accuracy:.2f}%, {baseline.metrics.size_bytes:,} bytes", flush=True)
        if "deep" in parts:
            row = run_preset("deep-compression", baseline, workspace)
            row["met"] = {"ratio": row["compression_ratio"] >= TARGETS["deep_compression_ratio"], "accuracy": row["accuracy_change_points"] >= -TARGETS["deep_compression_max_drop_points"]}
            results["deep_compression"] = row
        if "fast" in parts:
            row = run_preset("smallest-fast", baseline, workspace)
            row["met"] = {"speedup": (row["speedup"] or 0) >= TARGETS["smallest_fast_speedup"], "accuracy": row["accuracy_change_points"] >= -TARGETS["smallest_fast_max_drop_points"]}
            results["smallest_fast"] = row
    if "render" in parts:
        row = render_seconds(args.render_runs)
        row["met"] = row["render_seconds"] <= TARGETS["render_seconds"]
        results["render"] = row
    previous = RESULTS_DIR / "compare.json"
    if previous.is_file():  # a partial run (--only) keeps the other parts' last figures
        kept = json.loads(previous.read_text())
        kept.pop("machine", None)
        results = {**kept, **results}
    path = write_results("compare", results)
    print(f"wrote {path}")
    for name in ("deep_compression", "smallest_fast", "render"):
        if name in results:
            print(f"  {name}: targets met = {results[name]['met']}")


if __name__ == "__main__":
    main()

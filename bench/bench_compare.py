"""Compare & report benchmark on CIFAR-10 (classroom preset, simple_cnn): the issue's three targets.

    .venv/bin/python bench/bench_compare.py [--cifar-dir /tmp/cifar/cifar10] [--workspace /tmp/mel-bench] [--only deep,fast,render]
    .venv/bin/python bench/bench_compare.py --dataset digits --workspace /tmp/mel-smoke --render-runs 20 --output /tmp/compare.json   # smoke run

1. The "Deep Compression style" preset (prune 90% + fine-tune + static int8 + compressed encoding):
   at least 20x smaller than the fp32 baseline in bytes of the honest compressed artifact (the model
   zip written to disk), accuracy within 1.5 points (measured on the model rebuilt from that zip).
2. The "Smallest fast model" preset (distill + channel pruning with removal + static int8): at least
   3x lower measured latency than the fp32 baseline at batch 256, under the one latency protocol
   (core.foundation.measures.latency: the int8 model and the fp32 baseline both compiled by inductor, interleaved
   rounds; the batch-1 figures are reported beside it); accuracy within 3 points.
3. The Compare page with 200 recorded runs renders within 2 s: driven by Streamlit's AppTest
   (server side: read the history, summarise, build the table and the charts, serialise them).

Each preset runs as the CLI's `pipeline --preset` does: core.pipeline.config.pipeline_options and
build_pipeline_config, then core.pipeline.run.run_pipeline (which records every step), and the
pipeline run itself is recorded with core.contract.record.

Writes bench/results/compare.json (or --output) and prints a summary. Never a pass/fail test: it
reports. A partial run (--only) keeps the other parts' last figures from the file it writes.
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
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from bench.common import RESULTS_DIR, add_dataset_options, add_output_option, dataset_spec, write_results  # noqa: E402
from core.contract.context import RunContext  # noqa: E402
from core.contract.record import record  # noqa: E402
from core.contract.result import Headline  # noqa: E402
from core.contract.source import ModelSource  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline  # noqa: E402
from core.foundation.data.datasets import DatasetSpec  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.pipeline.config import PRESETS, build_pipeline_config, pipeline_options  # noqa: E402
from core.pipeline.run import run_pipeline  # noqa: E402

TARGETS = {"deep_compression_ratio": 20.0, "deep_compression_max_drop_points": 1.5, "smallest_fast_speedup": 3.0, "smallest_fast_max_drop_points": 3.0, "render_seconds": 2.0}
SUMMARY_KEYS = (
    "accuracy_before",
    "accuracy_after",
    "accuracy_change_points",
    "eval_images",
    "size_bytes_before",
    "size_bytes_after",
    "size_measure_before",
    "size_measure",
    "compression_ratio",
    "latency_ms_before",
    "latency_ms_after",
    "speedup",
    "latency_ms_single_before",
    "latency_ms_single_after",
    "latency_batch_size",
    "latency_runtime",
    "latency_threads",
    "latency_device",
    "encoding",
    "artifact_path",
    "run_id",
    "step_run_ids",
)
STEP_KEYS = ("step", "run_id", "accuracy", "size_bytes", "size_measure", "params", "nonzero_params", "macs", "latency_ms", "latency_batch_size", "seconds")


def run_preset(name: str, source: ModelSource, workspace: Workspace) -> dict:
    options = pipeline_options(name, {})
    config = build_pipeline_config(options, source.architecture, source.seed, source.device)
    started = time.perf_counter()
    result = run_pipeline(source, config, RunContext(workspace, stderr_progress(0.25)))
    record(result, workspace)
    summary = result.summary()
    headline = result.headline
    row = {
        "preset": name,
        "title": PRESETS[name].title,
        "options": {key: list(value) if isinstance(value, tuple) else value for key, value in PRESETS[name].options.items()},
        "seconds": time.perf_counter() - started,
        **{key: summary[key] for key in SUMMARY_KEYS},
        "speedup_single": headline.latency_ms_single_before / headline.latency_ms_single_after,
        "steps": [{key: step[key] for key in STEP_KEYS} for step in summary["steps"]],
    }
    print(
        f"{PRESETS[name].title} (run #{row['run_id']}): {row['compression_ratio']:.1f}x smaller ({row['size_bytes_before']:,} -> {row['size_bytes_after']:,} bytes), "
        f"accuracy {100 * row['accuracy_before']:.2f}% -> {100 * row['accuracy_after']:.2f}% ({row['accuracy_change_points']:+.2f} points), "
        f"latency batch {row['latency_batch_size']} {row['latency_ms_before']:.2f} -> {row['latency_ms_after']:.2f} ms ({row['speedup']:.2f}x), "
        f"1 image {row['latency_ms_single_before']:.3f} -> {row['latency_ms_single_after']:.3f} ms ({row['speedup_single']:.2f}x; {row['latency_runtime']}, {row['latency_threads']} threads), {row['seconds']:.0f} s",
        flush=True,
    )
    return row


# ------------------------------------------------------------------------------- the Compare page


DIGITS = {"size_bytes": 159_712, "params": 39_742, "macs": 258_430, "latency_ms": 4.0, "latency_ms_single": 0.15, "accuracy": 0.98}


@dataclass
class SeededRun:
    """One made-up run's settings and figures, as a technique of that kind would report them."""

    params: dict
    details: dict
    size_bytes: int
    size_measure: str
    params_after: int = DIGITS["params"]
    nonzero_params_after: int = DIGITS["params"]
    runtime: str = "torch eager"
    model: str = "simple_cnn"

    @property
    def int8(self) -> bool:
        return self.runtime != "torch eager"  # compiled int8: no MAC count, as core.contract.record leaves it


def seeded_run(technique: str, rng: random.Random) -> SeededRun:
    if technique == "prune":
        channel = rng.random() < 0.5
        params_after = rng.randint(8_000, 30_000) if channel else DIGITS["params"]
        nonzero = params_after if channel else rng.randint(4_000, DIGITS["params"])
        size = rng.randint(15_000, 150_000)
        params = {
            "method": rng.choice(["l1", "ln"]) if channel else rng.choice(["l1", "random"]),
            "amount": round(rng.uniform(0.1, 0.9), 2),
            "granularity": "channel" if channel else "unstructured",
            "scope": "layer",
            "remove": channel,
            "finetune_epochs": rng.randint(0, 3),
            "iterative_steps": 1,
        }
        return SeededRun(params, {"sparsity": 1 - nonzero / DIGITS["params"], "size_bytes_sparse": size}, size, "sparse encoding", params_after, nonzero)
    if technique == "quantize":
        mode = rng.choice(["simulate", "dynamic", "static", "qat"])
        bits = 8 if mode in ("dynamic", "static") else rng.randint(2, 8)
        runtime = "torch.compile (inductor)" if mode in ("dynamic", "static") else "torch eager"
        return SeededRun({"mode": mode, "bits": bits}, {"bits": bits}, rng.randint(9_000, 42_000), "deployed bytes", runtime=runtime)
    if technique == "distill":
        params = {"teacher": "teacher", "student": "simple_cnn_narrow", "temperature": rng.choice([2.0, 4.0, 8.0]), "alpha": rng.choice([0.5, 0.9]), "seeds": [0]}
        return SeededRun(params, {"gain": rng.uniform(-0.01, 0.03), "teacher_accuracy": 0.99}, 41_000, "fp32 safetensors file", 10_000, 10_000, model="simple_cnn_narrow")
    size = rng.randint(5_000, 20_000)
    steps = [
        {"step": "baseline", "size_bytes": DIGITS["size_bytes"], "accuracy": DIGITS["accuracy"]},
        {"step": "prune", "size_bytes": 30_000, "accuracy": 0.97},
        {"step": "quantize", "size_bytes": 12_000, "accuracy": 0.965},
        {"step": "encode", "size_bytes": size, "accuracy": 0.965},
    ]
    return SeededRun(
        {"preset": "deep-compression", "steps": ["prune", "quantize"]}, {"steps": steps}, size, "model zip", nonzero_params_after=rng.randint(4_000, 8_000), runtime="torch.compile (inductor)"
    )


def seed_history(workspace: Workspace, baseline_run_id: int, count: int) -> None:
    """`count` runs in realistic chains (baseline -> distill -> prune -> quantize -> pipeline), each
    row laid out as core.contract.record writes it (the headline keys, headline_version 2, details), so the
    page summarises and draws what it would in class."""
    from core.foundation import history

    rng = random.Random(0)
    db = workspace.history_db
    techniques = ["prune", "quantize", "distill", "pipeline"]
    written = 0
    while written < count:
        parent = baseline_run_id
        for technique in techniques[: rng.randint(1, 4)]:
            if written >= count:
                break
            run = seeded_run(technique, rng)
            speedup = rng.uniform(1.0, 4.0)
            headline = Headline(
                accuracy_before=DIGITS["accuracy"],
                accuracy_after=rng.uniform(0.85, 0.99),
                eval_images=360,
                size_bytes_before=DIGITS["size_bytes"],
                size_bytes_after=run.size_bytes,
                size_measure_before="fp32",
                size_measure=run.size_measure,
                params_before=DIGITS["params"],
                params_after=run.params_after,
                nonzero_params_after=run.nonzero_params_after,
                macs_before=DIGITS["macs"],
                macs_after=None if run.int8 else DIGITS["macs"],
                latency_ms_before=DIGITS["latency_ms"],
                latency_ms_after=DIGITS["latency_ms"] / speedup,
                latency_ms_single_before=DIGITS["latency_ms_single"],
                latency_ms_single_after=DIGITS["latency_ms_single"] / speedup,
                latency_batch_size=256,
                latency_threads=2,
                latency_runtime=run.runtime,
                latency_device="cpu",
            )
            metrics = {
                **{key: value for key, value in run.details.items() if isinstance(value, (int, float))},
                **headline.as_dict(),
                "accuracy": headline.accuracy_after,
                "params": run.params_after,
                "nonzero_params": run.nonzero_params_after,
                "macs": headline.macs_after,
                "before_run_id": parent,
                "details": run.details,
                "seconds": rng.uniform(1, 60),
            }
            params = {**run.params, "dataset": DatasetSpec("digits").as_dict(), "source_run_id": parent, "seed": 0}
            parent = history.record_run(db, technique, "digits", run.model, params, metrics, parent_id=parent)
            written += 1


def render_seconds(run_count: int) -> dict:
    """Seconds for the Compare page's server-side render with `run_count` runs, through AppTest."""
    threads = torch.get_num_threads()
    from streamlit.testing.v1 import AppTest

    import tests.conftest  # noqa: F401  (the AppTest fix for st.navigation pages; it also sets one torch thread)

    torch.set_num_threads(threads)
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
        "history_rows": "headline_version 2 (as core.contract.record writes them)",
        "method": "streamlit.testing AppTest, whole app (sidebar + page), median of 5 reruns per tab",
    }
    print(
        f"Compare page with {run_count} runs: Runs tab {result['runs_tab_median_seconds']:.2f} s, Charts tab {result['charts_tab_median_seconds']:.2f} s (median of 5), first render {cold:.2f} s",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--workspace", default=os.environ.get("MEL_HOME", "/tmp/mel-bench"))
    parser.add_argument("--only", default="deep,fast,render", help="comma-separated subset of deep, fast, render")
    parser.add_argument("--render-runs", type=int, default=200)
    add_output_option(parser, "compare")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    results: dict = {"targets": TARGETS}
    if parts & {"deep", "fast"}:
        workspace = Workspace.open(args.workspace)
        baseline = get_baseline(BaselineConfig(dataset_spec(args)), workspace, stderr_progress(0.25))
        source = ModelSource.from_baseline(baseline)
        results["dataset"] = baseline.dataset.summary()
        results["baseline"] = {
            "accuracy": source.accuracy,
            "size_bytes": baseline.metrics.size_bytes,
            "params": baseline.metrics.params,
            "run_id": baseline.run_id,
            "checkpoint": str(baseline.checkpoint),
            "latency_ms": baseline.metrics.latency_ms,
            "latency_ms_single": baseline.metrics.latency_ms_single,
            "latency_runtime": baseline.metrics.latency_runtime,
        }
        print(f"baseline: {source.label}, {baseline.metrics.size_bytes:,} bytes, torch threads {torch.get_num_threads()}", flush=True)
        if "deep" in parts:
            row = run_preset("deep-compression", source, workspace)
            row["met"] = {"ratio": row["compression_ratio"] >= TARGETS["deep_compression_ratio"], "accuracy": row["accuracy_change_points"] >= -TARGETS["deep_compression_max_drop_points"]}
            results["deep_compression"] = row
        if "fast" in parts:
            row = run_preset("smallest-fast", source, workspace)
            row["met"] = {"speedup": (row["speedup"] or 0) >= TARGETS["smallest_fast_speedup"], "accuracy": row["accuracy_change_points"] >= -TARGETS["smallest_fast_max_drop_points"]}
            results["smallest_fast"] = row
    if "render" in parts:
        row = render_seconds(args.render_runs)
        row["met"] = row["render_seconds"] <= TARGETS["render_seconds"]
        results["render"] = row
    previous = args.output or RESULTS_DIR / "compare.json"
    if previous.is_file():  # a partial run (--only) keeps the other parts' last figures
        kept = json.loads(previous.read_text())
        kept.pop("machine", None)
        results = {**kept, **results}
    path = write_results("compare", results, args.output)
    print(f"wrote {path}")
    for name in ("deep_compression", "smallest_fast", "render"):
        if name in results:
            print(f"  {name}: targets met = {results[name]['met']}")


if __name__ == "__main__":
    main()

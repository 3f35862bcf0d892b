"""Foundation benchmark: training throughput, time-to-accuracy and the dashboard's first render.

    .venv/bin/python bench/bench_foundation.py [--skip-teacher] [--skip-render]
    .venv/bin/python bench/bench_foundation.py --only digits --only render --output /tmp/foundation.json   # smoke run (no CIFAR)

Targets (2-core CPU): digits >= 97% within 10 s of training; CIFAR-10 classroom preset with
simple_cnn >= 65% within 90 s on the full 10,000-image test set (JPEG copy, loaded via folder:);
the CIFAR-10 teacher >= 78% within 10 minutes; first render <= 5 s after the server starts.
Each trained model's latency is the one protocol's (core.foundation.measures.latency: 1 and 256 images, eager), as
recorded with its checkpoint. Writes bench/results/foundation[-PARTS].json (or --output).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_CIFAR_DIR, add_output_option, ensure_cifar, write_results  # noqa: E402
from core.foundation.baseline.trained import BaselineConfig, get_baseline, train_baseline  # noqa: E402
from core.foundation.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def time_to_accuracy(dataset_name: str, model_name: str, workspace: Workspace) -> dict:
    """Train the classroom preset from scratch (and cache it in `workspace`, so later benchmarks reuse it)."""
    load_start = time.perf_counter()
    dataset = load_dataset(DatasetSpec(dataset_name), workspace, stderr_progress(0.5))
    load_seconds = time.perf_counter() - load_start
    baseline = train_baseline(BaselineConfig(DatasetSpec(dataset_name), model_name), workspace, dataset, stderr_progress(0.25))
    images_per_second = baseline.recipe.epochs * len(dataset.train) / baseline.train_seconds
    row = {
        "dataset": dataset_name,
        "model": model_name,
        "epochs": baseline.recipe.epochs,
        "train_images": len(dataset.train),
        "test_images": len(dataset.test),
        "test_accuracy": baseline.metrics.accuracy,
        "train_seconds": baseline.train_seconds,
        "images_per_second": images_per_second,
        "accuracy_per_epoch": [record.test_accuracy for record in baseline.history],
        "params": baseline.metrics.params,
        "macs": baseline.metrics.macs,
        "latency_ms": baseline.metrics.latency_ms,  # batch latency_batch_size (256)
        "latency_ms_single": baseline.metrics.latency_ms_single,
        "latency_batch_size": baseline.metrics.latency_batch_size,
        "latency_threads": baseline.metrics.latency_threads,
        "latency_runtime": baseline.metrics.latency_runtime,
        "dataset_load_seconds": load_seconds,
    }
    print(f"{dataset_name} {model_name}: {baseline.metrics.accuracy:.2%} after {baseline.recipe.epochs} epochs in {baseline.train_seconds:.1f} s ({images_per_second:.0f} img/s)", flush=True)
    return row


def first_render_seconds(workspace: Path) -> dict:
    """Seconds from launching `streamlit run app.py` until a browser shows the rendered Overview
    (one start of bench/bench_first_render.py, which also times page switches)."""
    from playwright.sync_api import sync_playwright

    from bench.bench_first_render import one_start

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        row = one_start(browser, workspace)
        browser.close()
    return {"server_healthy_seconds": row["server_healthy_seconds"], "first_render_seconds": row["first_render_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR_DIR)
    parser.add_argument("--workspace", type=Path, help="default: a fresh temporary folder")
    parser.add_argument("--skip-teacher", action="store_true")
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--only", choices=["digits", "cifar", "teacher", "render"], action="append", help="run only these parts (repeatable)")
    add_output_option(parser, "foundation")
    args = parser.parse_args()
    workspace = Workspace.open(args.workspace or tempfile.mkdtemp(prefix="mel-bench-"))
    parts = set(args.only or ["digits", "cifar", "teacher", "render"])
    parts -= {"teacher"} if args.skip_teacher else set()
    parts -= {"render"} if args.skip_render else set()
    cifar = f"folder:{ensure_cifar(args.cifar_dir)}" if parts & {"cifar", "teacher"} else None  # extracted only when needed
    rows = []
    if "digits" in parts:
        rows.append(time_to_accuracy("digits", "simple_cnn", workspace))
    if "cifar" in parts:
        rows.append(time_to_accuracy(cifar, "simple_cnn", workspace))
    if "teacher" in parts:
        rows.append(time_to_accuracy(cifar, "teacher", workspace))
    results = {"time_to_accuracy": rows}
    if "render" in parts:
        get_baseline(BaselineConfig(), workspace)  # the Overview shows the cached digits baseline
        results["dashboard"] = first_render_seconds(workspace.root)
    name = "foundation" if not args.only else "foundation-" + "-".join(sorted(parts))
    print("wrote", write_results(name, results, args.output))


if __name__ == "__main__":
    main()

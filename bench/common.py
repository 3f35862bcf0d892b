"""Shared bits of the benchmark scripts: machine facts, which dataset to measure on, the runs a bench made, and writing results."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import torch

from core.foundation import history
from core.foundation.data.datasets import DatasetSpec
from core.foundation.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
DEFAULT_CIFAR_DIR = Path(os.environ.get("MEL_BENCH_CIFAR", "/tmp/cifar/cifar10"))
SHARED_CIFAR_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
# The CPU features that decide which int8 and bf16 kernels oneDNN can use (the README's "AVX2, no VNNI").
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
LOAD_AT_START = os.getloadavg()  # this module is imported when a script starts


# ------------------------------------------------------------------------------- machine facts


def machine_facts() -> dict:
    """What the README states about the machine a figure was measured on. The load averages say
    whether other processes shared the cores (the README's "quiet" versus "under load")."""
    cpuinfo = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    memory_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal:")), 0)
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": model,
        "cpu_isa": [flag for flag in ISA_FLAGS if flag in flags],
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "load_average_at_start": [round(value, 2) for value in LOAD_AT_START],
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def latency_runtimes(payload) -> list[str]:
    """Every runtime label ("torch eager", "torch.compile (inductor)", ...) the payload's latencies
    were measured in: each latency figure names its own, this lists them once for the README."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("latency_runtime", "runtime") and isinstance(item, str):
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload)
    return sorted(found)


# ------------------------------------------------------------------------------- the dataset


def ensure_cifar(cifar_dir: Path) -> Path:
    """The CIFAR-10 JPEG copy in folder layout, extracted from ../shared/data when missing."""
    if (cifar_dir / "train").is_dir():
        return cifar_dir
    import tarfile

    cifar_dir.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(SHARED_CIFAR_ARCHIVE) as archive:
        archive.extractall(cifar_dir.parent, filter="data")
    return cifar_dir


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """--cifar-dir (the real measurement's data), and --dataset / --train-size for a quick smoke run."""
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR_DIR, help="CIFAR-10 in ImageFolder layout (train/ and test/); extracted from ../shared/data when missing")
    parser.add_argument("--dataset", help="measure on another dataset instead, e.g. digits for a quick smoke run (default: folder:CIFAR_DIR)")
    parser.add_argument("--train-size", type=int, help="class-balanced training subset (default: all); for smoke runs, the README's figures use all")


def dataset_spec(args: argparse.Namespace) -> DatasetSpec:
    name = args.dataset or f"folder:{ensure_cifar(args.cifar_dir)}"
    return DatasetSpec(name, train_size=args.train_size)


def apptest_app(spec: DatasetSpec, workspace_root: Path, timeout: float = 600):
    """The real app under Streamlit's AppTest with the sidebar set to `spec` (its own keys, set
    before the first run, so the first run already loads that dataset's cached baseline)."""
    from streamlit.testing.v1 import AppTest

    os.environ["MEL_HOME"] = str(workspace_root)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=timeout)
    if spec.name.startswith("folder:"):
        at.session_state["sidebar_dataset"] = "folder…"
        at.session_state["sidebar_folder"] = spec.name[len("folder:") :]
    else:
        at.session_state["sidebar_dataset"] = spec.name
    at.session_state["sidebar_train_size"] = spec.train_size or 0
    at.run()
    return at


# ------------------------------------------------------------------------------- the runs a bench made


def child_run(workspace: Workspace, parent: int, description: str, tag: str) -> int:
    """The id of the recorded child of `parent` that a bench made as `description` (recorded with
    extra_params={tag: description}), or -1."""
    for run in history.descendants(workspace.history_db, parent):
        if run.params.get(tag) == description:
            return run.id
    return -1


# ------------------------------------------------------------------------------- results


def add_output_option(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument("--output", type=Path, help=f"where to write the JSON (default: bench/results/{default_name}.json)")


def write_results(name: str, payload: dict, output: Path | None = None) -> Path:
    """The payload with the machine facts (and the latency runtimes it names) as one JSON file."""
    path = output or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {key: value for key, value in payload.items() if key != "machine"}
    machine = {**machine_facts(), **payload.get("machine", {}), "latency_runtimes": latency_runtimes(body)}
    path.write_text(json.dumps(_finite({"machine": machine, **body}), indent=2, sort_keys=True, default=str))
    return path


def _finite(value):
    """NaN and infinities as null, so the file is strict JSON (a single seed's spread is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value

"""Shared bits of the benchmark scripts: machine facts and writing results."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_CIFAR_DIR = Path(os.environ.get("MEL_BENCH_CIFAR", "/tmp/cifar/cifar10"))
SHARED_CIFAR_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def machine_facts() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def ensure_cifar(cifar_dir: Path) -> Path:
    """The CIFAR-10 JPEG copy in folder layout, extracted from ../shared/data when missing."""
    if (cifar_dir / "train").is_dir():
        return cifar_dir
    import tarfile

    cifar_dir.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(SHARED_CIFAR_ARCHIVE) as archive:
        archive.extractall(cifar_dir.parent, filter="data")
    return cifar_dir


def write_results(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_facts(), **payload}, indent=2, sort_keys=True))
    return path

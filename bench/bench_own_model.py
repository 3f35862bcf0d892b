"""Your own trained model at its real size (issue 27's targets): a torchvision ResNet-18 state dict
brought with --weights, on a folder of 224-px images.

    .venv/bin/python bench/bench_own_model.py [--test-images 1000] [--timing-test-images 256] [--rounds 3]

What it makes, as a user would have it: a torchvision ResNet-18 (`torchvision.models.resnet18`,
1,000 classes, its head then replaced by one of 10: no ImageNet weights can be downloaded here, so
its weights are torchvision's initialisation, which changes no timing) saved with torch.save as a
.pth state dict, and a folder of CIFAR-10 images (../shared/data) written as 224-px PNGs
(--test-images per split's test/, 10 per class in train/).

Targets (2 threads; figures with the machine and ISA):
1. loaded, checked and evaluated in <= 60 s on 2 cores, with progress: `python -m core train
   --model resnet18 --weights FILE --dataset folder:DIR --image-size 224 --epochs 0` as a user runs
   it (a fresh process: torch's import, the file read by the restricted loader, the folder decoded,
   the model evaluated on every test image, measured and recorded); timed a second time with the
   decoded folder cached, and in-process by stage.
2. the same model, static int8 in OpenVINO >= 3x its OpenVINO fp32 at batch 32 on VNNI/AMX
   (core.deploy.runtimes: the int8 twin is ONNX Runtime's quantize_static of the fp32 file).
3. channel pruning 30% removed + int8: the smallest fast model and its latency in every runtime
   (the Compare page's Deploy tab shows the same report).
Timings of 2 and 3 use a --timing-test-images subset (accuracy in every runtime costs a pass each).
Writes bench/results/own_model.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import DEFAULT_CIFAR_DIR, REPO_ROOT, add_output_option, ensure_cifar, write_results  # noqa: E402
from core.cli.main import main as cli  # noqa: E402
from core.deploy.runtimes import EAGER, OPENVINO, RUNTIMES, measure_runtimes  # noqa: E402
from core.foundation.baseline.brought import bring_weights_file  # noqa: E402
from core.foundation.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from core.foundation.measures.latency_protocol import REAL_SIZE_THROUGHPUT_BATCH_SIZE  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402

SIDE = 224
TRAIN_PER_CLASS = 10
TARGETS = {"load_check_evaluate_max_s": 60.0, "openvino_int8_speedup_min_vnni": 3.0, "openvino_int8_speedup_min_avx2": 1.8}


def make_folder(cifar: Path, out: Path, test_per_class: int) -> Path:
    """CIFAR-10 JPEGs written as 224-px PNGs in train/ and test/ (bilinear, as a camera's photos would be large)."""
    from PIL import Image

    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", test_per_class)):
        for class_dir in sorted((cifar / split).iterdir()):
            target = out / split / class_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(class_dir.iterdir())[:per_class]:
                with Image.open(path) as image:
                    image.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR).save(target / f"{path.stem}.png")
    return out


def make_weights(path: Path) -> Path:
    """A torchvision ResNet-18 state dict, its 1,000-class head replaced by 10, saved as a user saves one."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None)  # 1,000 classes, as torchvision builds it
    model.fc = torch.nn.Linear(model.fc.in_features, 10)
    torch.save({"state_dict": model.state_dict(), "epoch": 90}, path)
    return path


def timed_cli_process(arguments: list[str], env: dict) -> dict:
    """The command in a fresh `python -m core` process: its wall time, last JSON line and progress lines."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "core", *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"python -m core {' '.join(arguments)} failed: {completed.stderr.strip().splitlines()[-1:]}")
    progress_lines = [line for line in completed.stderr.splitlines() if line.strip()]
    return {"seconds": round(seconds, 1), "result": json.loads(completed.stdout.strip().splitlines()[-1]), "progress_lines": len(progress_lines), "last_progress": progress_lines[-3:]}


def cli_in_process(arguments: list[str]) -> dict:
    """The command through core.cli.main (what `python -m core` runs), its JSON line."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(arguments)
    if code != 0:
        raise SystemExit(f"python -m core {' '.join(arguments)} exited {code}")
    return json.loads(out.getvalue().strip().splitlines()[-1])


def brought_model_options(folder: Path, weights: Path, workspace: Workspace) -> list[str]:
    """The options naming the brought model at 224 px, as a user types them."""
    return ["--model", "resnet18", "--weights", str(weights), "--dataset", f"folder:{folder}", "--image-size", str(SIDE), "--device", "cpu", "--workspace", str(workspace.root)]


def load_part(folder: Path, weights: Path, workspace: Workspace) -> dict:
    """Target 1: the brought model recorded, as a user runs it and by stage."""
    arguments = ["train", *brought_model_options(folder, weights, workspace), "--epochs", "0"]
    env = {**os.environ, "MEL_HOME": str(workspace.root)}
    first = timed_cli_process(arguments, env)  # the folder decoded, the model evaluated and recorded
    # The same command again would load the recorded baseline from its cache: stages of a second
    # recording (a cached folder) are timed in-process instead, in a fresh workspace that shares the decode.
    stages = {}
    started = time.perf_counter()
    brought = bring_weights_file(workspace, weights)
    stages["read_and_check_weights_s"] = time.perf_counter() - started
    started = time.perf_counter()
    dataset = load_dataset(DatasetSpec(f"folder:{folder}", image_size=SIDE), workspace)
    stages["dataset_from_cache_s"] = time.perf_counter() - started
    return {
        "command": "python -m core " + " ".join(arguments),
        "fresh_process_s": first["seconds"],
        "accuracy": first["result"]["accuracy"],
        "test_images": first["result"]["dataset"]["test_images"],
        "image_size": first["result"]["dataset"]["image_size"],
        "latency_batch_size": first["result"]["latency_batch_size"],
        "latency_ms_batch": first["result"]["latency_ms"],
        "latency_ms_single": first["result"]["latency_ms_single"],
        "progress_lines": first["progress_lines"],
        "last_progress": first["last_progress"],
        "brought_weights": {"name": brought.name, "sha256": brought.sha256, "bytes": brought.size_bytes},
        "stages_in_process": {key: round(value, 2) for key, value in stages.items()},
        "decoded_images": len(dataset.train) + len(dataset.test),
        "run_id": first["result"]["run_id"],
        "met": first["seconds"] <= TARGETS["load_check_evaluate_max_s"],
    }


def runtime_rows(report, label: str) -> dict:
    return {
        f"{f.runtime} {f.precision}": {"latency_ms": f.latency_ms, "accuracy": f.accuracy, "reason": f.reason}
        for f in report.figures
        if f.model == label and f.batch_size == REAL_SIZE_THROUGHPUT_BATCH_SIZE
    }


def deploy_part(folder: Path, weights: Path, workspace: Workspace, test_images: int, rounds: int, isa: list[str]) -> dict:
    """Targets 2 and 3: int8 in OpenVINO, and channel pruning 30% removed + int8 in every runtime."""
    common = [*brought_model_options(folder, weights, workspace), "--test-size", str(test_images)]
    baseline = cli_in_process(["train", *common])
    pruned = cli_in_process(["prune", *common, "--granularity", "channel", "--method", "l1", "--amount", "0.3", "--remove", "--finetune-epochs", "0"])
    report = measure_runtimes(workspace, [baseline["run_id"], pruned["run_id"]], rounds=rounds, runtimes=RUNTIMES)
    source_label = next(f.model for f in report.figures if f.run_id == baseline["run_id"])
    pruned_label = next(f.model for f in report.figures if f.run_id == pruned["run_id"])
    batch = REAL_SIZE_THROUGHPUT_BATCH_SIZE
    ov_fp32, ov_int8 = (report.figure(source_label, OPENVINO, precision, batch).latency_ms for precision in ("fp32", "int8"))
    vnni = any(flag in isa for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))
    speedup = ov_fp32 / ov_int8 if ov_fp32 and ov_int8 else None
    fastest = min((f for f in report.figures if f.batch_size == batch and f.latency_ms is not None), key=lambda f: f.latency_ms)
    return {
        "test_images": test_images,
        "rounds": rounds,
        "batch_size": batch,
        "source": runtime_rows(report, source_label),
        "pruned_30_removed": runtime_rows(report, pruned_label),
        "pruned_macs_ratio": pruned.get("headline", {}).get("macs_ratio") or pruned.get("macs_ratio"),
        "pruned_summary": {key: pruned.get(key) for key in ("size_bytes", "params", "macs", "accuracy") if key in pruned},
        "openvino_int8_speedup": speedup,
        "openvino_int8_accuracy_drop_points": None
        if speedup is None
        else 100 * (report.figure(source_label, OPENVINO, "fp32", batch).accuracy - report.figure(source_label, OPENVINO, "int8", batch).accuracy),
        "fastest": {"model": fastest.model, "runtime": fastest.runtime, "precision": fastest.precision, "latency_ms": fastest.latency_ms},
        "target": TARGETS["openvino_int8_speedup_min_vnni" if vnni else "openvino_int8_speedup_min_avx2"],
        "met": speedup is not None and speedup >= TARGETS["openvino_int8_speedup_min_vnni" if vnni else "openvino_int8_speedup_min_avx2"],
        "eager_fp32_over_pruned_int8_openvino": (report.figure(source_label, EAGER, "fp32", batch).latency_ms or 0) / (report.figure(pruned_label, OPENVINO, "int8", batch).latency_ms or float("inf")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR_DIR)
    parser.add_argument("--test-images", type=int, default=100, help="test images per class in the folder (default 100: 1,000 images)")
    parser.add_argument("--timing-test-images", type=int, default=256, help="test subset for the runtime timings (accuracy runs in every runtime)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=["load", "deploy", "all"], default="all")
    add_output_option(parser, "own_model")
    args = parser.parse_args()
    from bench.common import machine_facts

    isa = machine_facts()["cpu_isa"]
    with tempfile.TemporaryDirectory(prefix="mel-own-model-") as temp:
        root = Path(temp)
        folder = make_folder(ensure_cifar(args.cifar_dir), root / "photos", args.test_images)
        weights = make_weights(root / "resnet18_ours.pth")
        workspace = Workspace.open(root / "workspace")
        results: dict = {"targets": TARGETS, "folder": {"side": SIDE, "train_images": 10 * TRAIN_PER_CLASS, "test_images": 10 * args.test_images}}
        if args.part in ("load", "all"):
            results["load"] = load_part(folder, weights, workspace)
            print(f"load, check, evaluate: {results['load']['fresh_process_s']} s in a fresh process ({results['load']['test_images']} test images at {SIDE} px)", file=sys.stderr)
        if args.part in ("deploy", "all"):
            results["deploy"] = deploy_part(folder, weights, workspace, args.timing_test_images, args.rounds, isa)
            print(f"OpenVINO int8 {results['deploy']['openvino_int8_speedup']:.2f}x its fp32 at batch 32; fastest {results['deploy']['fastest']}", file=sys.stderr)
    print(write_results("own_model", results, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())

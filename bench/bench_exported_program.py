"""A whole exported program of a network the lab has never seen (issue 27, part 2).

    .venv/bin/python bench/bench_exported_program.py [--train-size 10000] [--test-size N] [--epochs 3] [--rounds 3]   # defaults shown; --test-size: all 10,000
    .venv/bin/python bench/bench_exported_program.py --dataset digits --epochs 5     # a smoke run, not the target's figures

Target: "A .pt2 exported program of a model whose Python class the lab has never seen: evaluated,
static int8, exported to ONNX, agreement >= 99% with its own fp32 on the test folder."

What it does, as a user would: BenchNet (a small residual CNN defined only in this file, so the
registry has never seen it) is trained for --epochs on a class-balanced --train-size subset of the
CIFAR-10 folder (../shared/data, extracted once), with the lab's normalisation; exported with
torch.export.export (free batch dimension) and saved with torch.export.save; then read back by the
lab's reader (core.program.exported.read_program: no code from the file runs) and given to the
functions `python -m core program FILE.pt2 --quantize static --prune-amount 0.5 --onnx OUT
--onnx-int8 OUT --runtimes` calls (core.program.techniques.run_program). The agreement figures are
top-1 agreement with the program's own fp32 predictions over the test folder (--test-size: all
10,000 by default). Writes bench/results/exported_program.json (or --output).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench.common import add_dataset_options, add_output_option, ensure_cifar, write_results  # noqa: E402
from core.foundation.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from core.foundation.progress import stderr_progress  # noqa: E402
from core.foundation.workspace import Workspace  # noqa: E402
from core.program.exported import read_program  # noqa: E402
from core.program.techniques import ProgramRequest, run_program  # noqa: E402

TARGETS = {"onnx_fp32_agreement_min": 0.99, "static_int8_agreement_min": 0.99}
DEFAULT_TRAIN_IMAGES = 10_000


class BenchNet(nn.Module):
    """Conv stems and two residual stages (each reusing one ReLU module), max pooling, global
    average pooling and a linear head: about 0.1 M parameters, no class of the lab's registry."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.conv1 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.down = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
        self.bn_down = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.relu(self.bn1(self.conv1(x)) + x)
        x = self.relu(self.bn_down(self.down(x)))
        x = self.relu(self.bn2(self.conv2(x)) + x)
        x = self.pool(x)
        return self.head(x.mean((2, 3)))


def train(model: nn.Module, dataset, epochs: int, seed: int = 0) -> float:
    """SGD with momentum and a one-cycle rate, random crops and flips on 32-px colour images; seconds taken."""
    from core.foundation.training.loop import augment_batch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * ((len(dataset.train) + 127) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=max(1, steps))
    augment = "flip_crop" if dataset.channels == 3 else "none"  # core.foundation.training.loop's modes
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(dataset.train), generator=generator)
        for batch in order.split(128):
            raw, _ = augment_batch(dataset.train.images[batch], augment, generator)
            images = dataset.normalize(raw)
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), dataset.train.labels[batch]).backward()
            optimizer.step()
            schedule.step()
        print(f"[bench] epoch {epoch + 1}/{epochs} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_options(parser)
    parser.add_argument("--test-size", type=int, help="class-balanced test subset (default: the whole test folder)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best median kept)")
    parser.add_argument("--workspace", default=os.environ.get("MEL_HOME", "/tmp/mel-bench-program"))
    add_output_option(parser, "exported_program")
    parser.set_defaults(train_size=DEFAULT_TRAIN_IMAGES)  # all 50,000 take about 6 minutes an epoch on 2 cores
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MEL_BENCH_THREADS", "2")))
    name = args.dataset or f"folder:{ensure_cifar(args.cifar_dir)}"
    progress = stderr_progress()
    dataset = load_dataset(DatasetSpec(name, args.train_size, args.test_size), Workspace.open(args.workspace), progress)

    model = BenchNet(dataset.channels, dataset.num_classes)
    train_seconds = train(model, dataset, args.epochs)
    model.eval()
    with tempfile.TemporaryDirectory(prefix="mel-bench-program-") as folder:
        path = Path(folder, "benchnet.pt2")
        started = time.perf_counter()
        example = dataset.normalize(dataset.train.images[:2])
        torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)), path)
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        program = read_program(path)
        read_seconds = time.perf_counter() - started
        with torch.no_grad():
            eager_predictions = torch.cat([model(dataset.normalize(chunk)).argmax(1) for chunk in dataset.test.images.split(500)])
        request = ProgramRequest(quantize="static", prune_amount=0.5, onnx=Path(folder, "benchnet.onnx"), onnx_int8=Path(folder, "benchnet-int8.onnx"), runtimes=True, rounds=args.rounds)
        started = time.perf_counter()
        report = run_program(program, dataset, request, progress)
        run_seconds = time.perf_counter() - started
    eager_accuracy = float((eager_predictions == dataset.test.labels).float().mean())
    figures = {
        "onnx_fp32_agreement": report["onnx"]["fp32"]["agreement_with_program"],
        "static_int8_agreement": report["static_int8"]["agreement_with_fp32"],
        "onnx_int8_agreement": report["onnx"]["int8"]["agreement_with_program"],
    }
    payload = {
        "target": "A .pt2 exported program of a model whose Python class the lab has never seen: evaluated, static int8, exported to ONNX, agreement >= 99% with its own fp32 on the test folder",
        "targets": TARGETS,
        "met": {
            "onnx_fp32_agreement": figures["onnx_fp32_agreement"] >= TARGETS["onnx_fp32_agreement_min"],
            "static_int8_agreement": figures["static_int8_agreement"] >= TARGETS["static_int8_agreement_min"],
            "program_accuracy_equals_the_eager_model": abs(report["accuracy"] - eager_accuracy) < 1e-9,
        },
        "figures": figures,
        "setup": {
            "dataset": dataset.summary(),
            "train_images": len(dataset.train),
            "test_images": len(dataset.test),
            "epochs": args.epochs,
            "train_seconds": train_seconds,
            "train_minutes": train_seconds / 60,
            "model": "BenchNet (this file): " + " ".join(BenchNet.__doc__.split()),
            "parameters": sum(p.numel() for p in model.parameters()),
            "eager_model_accuracy": eager_accuracy,
            "export_and_save_seconds": export_seconds,
            "read_seconds": read_seconds,
            "program_command_seconds": run_seconds,
        },
        "program_report": report,
    }
    out = write_results("exported_program", payload, args.output)
    print(f"[bench] wrote {out}: {figures}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

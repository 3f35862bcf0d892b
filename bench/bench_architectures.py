"""Each architecture of the model registry in every runtime the lab has, at 1 and 256 images (issue 26, item 6: speed where it is real).

    .venv/bin/python bench/bench_architectures.py [--threads 2] [--output bench/results/architectures.json]
    .venv/bin/python bench/bench_architectures.py --architectures simple_cnn,mobilenet_v2_x0_5 --runtimes "torch eager,ONNX Runtime (CPU)" --output /tmp/architectures.json   # smoke run

Targets: none of pass/fail; a table of what each architecture costs per runtime. The issue's
speed targets (pruned ResNet-18 >= 2.5x at batch 256, ResNet-18 int8 in OpenVINO >= 3x its fp32 on
VNNI/AMX, MobileNetV2 x0.5 int8 >= 2.5x) are measured on trained CIFAR-10 models elsewhere; this
script gives the fp32 and int8 figure of every registry entry side by side.

What is timed: build_model(name, 3, 32, 10) with random weights (latency does not depend on the
weights' values), on CIFAR-10's image shape (3 x 32 x 32, 10 classes). Every runner is the one
the Deploy tab and `python -m core runtimes` use (core.deploy.runtimes: torch eager,
torch.compile (inductor), ONNX Runtime, OpenVINO; fp32 and int8 with the same int8 recipes: PT2E
static int8 compiled for torch, ONNX Runtime's quantize_static for the ONNX runtimes), and every
figure comes from core.foundation.measures.latency.median_call_ms, the one timing function of the
product, in interleaved rounds (each runner keeps its best round's median) with torch's thread
count (--threads, default 2) given to every runtime. Int8 ranges come from random images, so the
int8 accuracy means nothing here and is not measured; its speed is what it is.

A runner that cannot be built (a runtime not installed, an int8 path a library cannot take for
that architecture) is recorded with its one-line reason, never a traceback. resnet18_imagenet is
the same network as resnet18 (only its starting weights differ), so it is not timed twice.

Budget (about 15 minutes on 2 cores): light architectures get the product's protocol (3 warm-up
calls, at least 5 timed calls and 0.2 s per figure, --rounds rounds); an architecture whose fp32
eager batch of 256 takes more than HEAVY_SECONDS gets 1 warm-up call, 2 timed calls and one round
(its figures are then the mean of 2 calls, noisier; the JSON names each architecture's protocol).
The quick runtimes (torch eager, ONNX Runtime, OpenVINO) go first for every architecture, cheapest
first; torch.compile, which compiles for a minute or more per architecture on 2 cores, comes after,
while --budget-minutes lasts: a runner or a figure not reached is recorded as not measured, with
that reason (one figure already started finishes, so the run may overrun by one heavy figure).
Writes bench/results/architectures.json (or --output) with the machine's CPU, ISA flags, threads
and load averages, and prints the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import add_output_option, write_results  # noqa: E402
from core.deploy.onnx_files import float_onnx, static_int8_onnx  # noqa: E402
from core.deploy.runtimes import ONNXRUNTIME, OPENVINO, PRECISIONS, RUNTIMES, DeployModel, RuntimeUnavailable, _runner, runtime_versions  # noqa: E402
from core.foundation.measures.latency import BATCH_SIZES, COMPILED, EAGER, ROUNDS, latency_budget_seconds, median_call_ms  # noqa: E402
from core.foundation.measures.metrics import count_macs, count_parameters  # noqa: E402
from core.foundation.models.names import ARCHITECTURES, RESNET18_IMAGENET  # noqa: E402
from core.foundation.models.registry import build_model  # noqa: E402
from core.quantization.pt2e import cpu_has_vnni  # noqa: E402

IMAGE_SHAPE = (3, 32, 32)  # CIFAR-10
NUM_CLASSES = 10
CALIBRATION_IMAGES = 64
HEAVY_SECONDS = 1.0  # fp32 eager, batch 256: above this, fewer repeats (see the docstring)
LIGHT_PROTOCOL = {"warmup": 3, "min_repeats": 5}  # median_call_ms's defaults, the product's protocol
HEAVY_PROTOCOL = {"warmup": 1, "min_repeats": 2, "budget_seconds": 0.0, "rounds": 1}
BUDGET_REASON = "not measured: the bench's time budget (--budget-minutes) ran out first"
SAME_NETWORK = {RESNET18_IMAGENET: "the same network as resnet18 (ImageNet starting weights); timed once, as resnet18"}


def one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"[:300]


def deploy_model(name: str) -> tuple[DeployModel, torch.Tensor, dict]:
    """The architecture with random weights as every runtime gets it (fp32 and static int8 ONNX files), its example image, and its size."""
    torch.manual_seed(0)
    model = build_model(name, IMAGE_SHAPE[0], IMAGE_SHAPE[1], NUM_CLASSES).eval()
    example = torch.randn(1, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(0))
    calibration = torch.randn(CALIBRATION_IMAGES, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(1))
    facts = {"params": count_parameters(model), "macs": count_macs(model, example), "int8_onnx_failure": ""}
    onnx_fp32 = float_onnx(model, example)
    onnx_int8 = None
    try:
        onnx_int8 = static_int8_onnx(onnx_fp32, calibration.numpy(), reduce_range=not cpu_has_vnni())
    except Exception as error:  # noqa: BLE001 - ONNX Runtime's quantizer on an architecture it cannot take: its one line is the result
        facts["int8_onnx_failure"] = f"ONNX Runtime's quantize_static failed: {one_line(error)}"
    return DeployModel(name, 0, model, model, onnx_fp32, onnx_int8, "static int8 made here from random images", "", calibration), example, facts


def eager_probe_seconds(model: torch.nn.Module, example: torch.Tensor) -> float:
    """One fp32 eager forward pass over the throughput batch (cold: a first call): decides light or heavy."""
    batch = example.expand(max(BATCH_SIZES), *IMAGE_SHAPE).contiguous()
    with torch.no_grad():
        started = time.perf_counter()
        model(batch)
    return time.perf_counter() - started


def time_runtimes(deploy: DeployModel, example: torch.Tensor, facts: dict, runtimes: tuple[str, ...], threads: int, protocol: dict, deadline: float) -> list[dict]:
    """The figures of `runtimes` x PRECISIONS x BATCH_SIZES for one architecture: its runners built
    (each failure one line), then timed in interleaved rounds by the product's median_call_ms."""
    runners, reasons, build_seconds = {}, {}, {}
    for runtime in runtimes:
        for precision in PRECISIONS:
            key = (runtime, precision)
            if time.perf_counter() > deadline:
                reasons[key] = BUDGET_REASON
                continue
            started = time.perf_counter()
            try:
                runners[key] = _runner(deploy, runtime, precision, example, threads)
            except RuntimeUnavailable as error:
                # An ONNX runtime's int8 has no file when quantize_static failed: that failure is the reason.
                reasons[key] = facts["int8_onnx_failure"] if precision == "int8" and deploy.onnx_int8 is None and facts["int8_onnx_failure"] else str(error)
            except Exception as error:  # noqa: BLE001 - e.g. torchao's quantizer on a residual pattern: recorded in one line, the bench goes on
                reasons[key] = one_line(error)
            build_seconds[key] = round(time.perf_counter() - started, 1)
    batches = {size: example.expand(size, *IMAGE_SHAPE).contiguous() for size in BATCH_SIZES}
    calls = {(key, size): runner.call_for(batches[size]) for key, runner in runners.items() for size in BATCH_SIZES}
    best: dict = {}
    counts: dict = {}
    for _ in range(protocol["rounds"]):
        for size in BATCH_SIZES:
            for key in runners:
                if time.perf_counter() > deadline:
                    continue  # not measured (or no further round): BUDGET_REASON
                milliseconds, count = median_call_ms(calls[(key, size)], warmup=protocol["warmup"], min_repeats=protocol["min_repeats"], budget_seconds=protocol["budget_seconds"])
                best[(key, size)] = min(milliseconds, best.get((key, size), float("inf")))
                counts[(key, size)] = counts.get((key, size), 0) + count
    figures = []
    for runtime in runtimes:
        for precision in PRECISIONS:
            key = (runtime, precision)
            for size in BATCH_SIZES:
                timed = (key, size) in best
                figures.append(
                    {
                        "runtime": runtime,
                        "precision": precision,
                        "batch_size": size,
                        "latency_ms": round(best[(key, size)], 4) if timed else None,
                        "per_image_ms": round(best[(key, size)] / size, 5) if timed else None,
                        "timed_calls": counts.get((key, size)),
                        "available": timed,
                        "reason": "" if timed else reasons.get(key, BUDGET_REASON),
                        "build_seconds": build_seconds.get(key),
                    }
                )
    return figures


def figure(entry: dict, runtime: str, precision: str, size: int) -> dict | None:
    return next((f for f in entry["figures"] if (f["runtime"], f["precision"], f["batch_size"]) == (runtime, precision, size)), None)


def table(entries: list[dict], runtimes: tuple[str, ...]) -> str:
    """One row per architecture and batch size: ms per call in each runtime and precision (— with a footnote where unavailable)."""
    columns = [(runtime, precision) for runtime in runtimes for precision in PRECISIONS]
    short = {EAGER: "eager", COMPILED: "compile", ONNXRUNTIME: "ORT", OPENVINO: "OpenVINO"}
    header = ["architecture", "MMACs", "batch", *(f"{short.get(runtime, runtime)} {precision}" for runtime, precision in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: dict[str, int] = {}
    for entry in entries:
        if "skipped" in entry:
            lines.append(
                f"| {entry['architecture']} | {entry['macs'] / 1e6:.0f} | | {entry['skipped']} |" + " |" * (len(columns) - 1)
                if "macs" in entry
                else f"| {entry['architecture']} | | | {entry['skipped']} |" + " |" * (len(columns) - 1)
            )
            continue
        for size in BATCH_SIZES:
            cells = [entry["architecture"] + (" (heavy: 2 calls)" if entry["heavy"] and size == BATCH_SIZES[0] else ""), f"{entry['macs'] / 1e6:.0f}" if size == BATCH_SIZES[0] else "", str(size)]
            for runtime, precision in columns:
                shown = figure(entry, runtime, precision, size)
                if shown is None:
                    cells.append("")
                elif shown["available"]:
                    cells.append(f"{shown['latency_ms']:.3g}")
                else:
                    number = notes.setdefault(shown["reason"], len(notes) + 1)
                    cells.append(f"— [{number}]")
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"[{number}] {reason}" for reason, number in notes.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", help="comma-separated registry names (default: every architecture of the registry)")
    parser.add_argument("--runtimes", help=f"comma-separated runtimes (default: all: {', '.join(RUNTIMES)})")
    parser.add_argument("--threads", type=int, default=2, help="threads for every runtime (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help=f"interleaved rounds for light architectures (default 2; the product's runtimes table uses {ROUNDS})")
    parser.add_argument("--budget-minutes", type=float, default=14.0, help="stop building runners after this long; what is left is recorded as not measured (default 14)")
    add_output_option(parser, "architectures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [a.name for a in ARCHITECTURES] if not args.architectures else [name.strip() for name in args.architectures.split(",") if name.strip()]
    unknown = [name for name in names if name not in {a.name for a in ARCHITECTURES}]
    if unknown:
        parser.error(f"unknown architecture(s) {', '.join(unknown)}; the registry has {', '.join(a.name for a in ARCHITECTURES)}")
    runtimes = RUNTIMES if not args.runtimes else tuple(name.strip() for name in args.runtimes.split(",") if name.strip())
    if set(runtimes) - set(RUNTIMES):
        parser.error(f"unknown runtime(s) {', '.join(sorted(set(runtimes) - set(RUNTIMES)))}; the lab has {', '.join(RUNTIMES)}")
    groups = {a.name: a.group for a in ARCHITECTURES}
    started = time.perf_counter()
    deadline = started + 60 * args.budget_minutes
    entries: dict[str, dict] = {}
    sizes = {}
    for name in names:
        if name in SAME_NETWORK and not args.architectures:
            entries[name] = {"architecture": name, "group": groups[name], "skipped": SAME_NETWORK[name]}
            continue
        model = build_model(name, IMAGE_SHAPE[0], IMAGE_SHAPE[1], NUM_CLASSES).eval()
        sizes[name] = count_macs(model, torch.zeros(1, *IMAGE_SHAPE))
    # Cheapest first, and the quick runtimes (torch eager, ONNX Runtime, OpenVINO) for every
    # architecture before torch.compile (a minute or more of compiling per architecture on 2 cores),
    # which then gets what is left of the budget.
    order = sorted(sizes, key=sizes.get)
    phases = [phase for phase in (tuple(r for r in runtimes if r != COMPILED), tuple(r for r in runtimes if r == COMPILED)) if phase]
    prepared = {}
    for phase in phases:
        for name in order:
            began = time.perf_counter()
            if name not in prepared:
                if time.perf_counter() > deadline:
                    entries[name] = {"architecture": name, "group": groups[name], "macs": sizes[name], "skipped": BUDGET_REASON}
                    continue
                deploy, example, facts = deploy_model(name)
                probe = eager_probe_seconds(deploy.fp32, example)
                heavy = probe > HEAVY_SECONDS
                protocol = HEAVY_PROTOCOL if heavy else {**LIGHT_PROTOCOL, "budget_seconds": latency_budget_seconds(), "rounds": args.rounds}
                prepared[name] = (deploy, example, facts)
                entries[name] = {
                    "architecture": name,
                    "group": groups[name],
                    **{key: value for key, value in facts.items() if key != "int8_onnx_failure"},
                    "heavy": heavy,
                    "eager_batch_256_probe_s": round(probe, 3),
                    "protocol": protocol,
                    "figures": [],
                    "seconds": 0.0,
                }
            if "skipped" in entries[name]:
                continue
            deploy, example, facts = prepared[name]
            entries[name]["figures"] += time_runtimes(deploy, example, facts, phase, args.threads, entries[name]["protocol"], deadline)
            entries[name]["seconds"] = round(entries[name]["seconds"] + time.perf_counter() - began, 1)
            print(f"{name}: {', '.join(phase)} done in {time.perf_counter() - began:.0f} s ({(time.perf_counter() - started) / 60:.1f} min so far)", file=sys.stderr, flush=True)
    for entry in entries.values():
        if "figures" in entry:
            entry["figures"].sort(key=lambda f: (runtimes.index(f["runtime"]), PRECISIONS.index(f["precision"]), f["batch_size"]))
    entries = [entries[name] for name in names if name in entries]
    text = table(entries, runtimes)
    payload = {
        "threads": args.threads,
        "image_shape": list(IMAGE_SHAPE),
        "num_classes": NUM_CLASSES,
        "weights": "random (latency does not depend on the weights' values); int8 ranges from random images, so no int8 accuracy is stated",
        "runtimes": list(runtimes),
        "versions": runtime_versions(),
        "heavy_seconds": HEAVY_SECONDS,
        "architectures": entries,
        "table_markdown": text,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = write_results("architectures", payload, args.output)
    print(text)
    print(f"wrote {path} in {payload['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

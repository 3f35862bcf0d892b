"""`python -m core program FILE.pt2`: a whole exported program of any architecture, evaluated and,
as asked, quantized (static int8), pruned (unstructured), exported to ONNX and timed in every
runtime. The file is read without running code from it (core/program/exported.py says why
torch.export.load is not used). The last stdout line is one JSON object; a bad file, a program that
does not fit the dataset, or a technique that cannot apply to a program exits 2 with one line."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.main import workspace_from_args
from core.foundation.errors import UserError
from core.foundation.progress import stderr_progress


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "program",
        parents=[common],
        help="evaluate, quantize, prune, export and time a whole exported program (.pt2 from torch.export.save) of any architecture",
        description="Read FILE.pt2 (torch.export.save of any network, checked so that nothing in it runs as code), evaluate it on --dataset's test set "
        "(inputs normalised as the lab normalises every model), then, as asked: static int8 by PT2E, unstructured L1 pruning, a checked ONNX file "
        "(and its int8 twin), latency in torch eager, ONNX Runtime and OpenVINO. Channel pruning and training need the network's Python class: "
        "bring a state dict with --model/--weights for those.",
    )
    parser.add_argument("file", metavar="FILE.pt2", help="an exported program saved by torch.export.save (with a free batch dimension)")
    parser.add_argument("--quantize", choices=("static", "qat"), help="static: int8 by torchao's PT2E (X86InductorQuantizer), calibrated on training images (qat is refused: it trains)")
    parser.add_argument("--calibration-size", type=int, default=256, metavar="N", help="training images for the int8 activation ranges (default: 256)")
    parser.add_argument("--prune-amount", type=float, metavar="A", help="unstructured L1 pruning of every float parameter of 2+ dimensions at amount A (0 <= A < 1)")
    parser.add_argument("--prune-scope", choices=("layer", "global"), default="layer", help="layer: amount A of each tensor (default); global: one threshold over all of them")
    parser.add_argument("--granularity", choices=("unstructured", "channel"), default="unstructured", help="unstructured (default); channel is refused: a program's graph is fixed")
    parser.add_argument("--onnx", metavar="OUT.onnx", help="write the program as a checked fp32 ONNX file (refused below 99%% agreement with the program)")
    parser.add_argument("--onnx-int8", metavar="OUT.onnx", help="also write its int8 twin (ONNX Runtime's static quantization, QDQ)")
    parser.add_argument("--runtimes", action="store_true", help="time the program at batch 1 and the protocol's throughput batch in torch eager, ONNX Runtime and OpenVINO, fp32 and int8")
    parser.add_argument("--rounds", type=int, metavar="R", help="interleaved timing rounds for --runtimes (default: the protocol's)")
    parser.set_defaults(handler=run_program_command)


def refuse_model_options(args: argparse.Namespace) -> None:
    """The common options that describe a network or its training mean nothing for a program."""
    from core.program.techniques import PROGRAM_LIMITS

    model_default = "simple_cnn"  # core.cli.options: --model's default (the parser is shared, so its default cannot change here)
    if getattr(args, "weights", None):
        raise UserError("--weights cannot go with an exported program: a .pt2 carries its own network and weights (use --weights with --model and `train`, `prune`, ... instead)")
    if getattr(args, "model", model_default) != model_default:
        raise UserError(f"--model cannot go with an exported program: a .pt2 carries its own network (it is not rebuilt from the registry's {args.model})")
    if getattr(args, "pretrained", False):
        raise UserError("--pretrained cannot go with an exported program: a .pt2 carries its own weights")
    if getattr(args, "epochs", None):
        raise UserError(f"--epochs cannot go with an exported program: {PROGRAM_LIMITS['training']}")
    if getattr(args, "device", "auto") not in ("auto", "cpu"):
        raise UserError(f"--device {args.device}: an exported program runs on the CPU here (its graph may name devices; the runtimes compared are CPU runtimes)")


def run_program_command(args: argparse.Namespace) -> dict:
    from core.foundation.data.datasets import DatasetSpec, load_dataset
    from core.program.exported import read_program
    from core.program.techniques import ProgramRequest, run_program

    refuse_model_options(args)
    request = ProgramRequest(
        quantize=args.quantize,
        prune_amount=args.prune_amount,
        prune_scope=args.prune_scope,
        granularity=args.granularity,
        onnx=Path(args.onnx) if args.onnx else None,
        onnx_int8=Path(args.onnx_int8) if args.onnx_int8 else None,
        runtimes=args.runtimes,
        rounds=args.rounds,
        calibration_size=args.calibration_size,
        seed=args.seed,
    )
    request.validate()  # before the file is read and the data loaded
    program = read_program(Path(args.file))
    progress = stderr_progress()
    workspace = workspace_from_args(args)
    dataset = load_dataset(DatasetSpec(args.dataset, args.train_size, args.test_size, 0, args.image_size), workspace, progress, allow_download=not args.no_download)
    return run_program(program, dataset, request, progress)

"""`python -m core export` and `python -m core runtimes`: the Deploy tab, headless. The last
stdout line is one JSON object; a bad run or path exits 2 with one line."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.main import workspace_from_args
from core.cli.options import recorded_run_options
from core.foundation.errors import UserError
from core.foundation.measures.latency import ROUNDS
from core.foundation.progress import stderr_progress

FORMATS = ("onnx",)


def register(subparsers, common: argparse.ArgumentParser) -> None:
    export = subparsers.add_parser(
        "export",
        help="write a run's model as a checked ONNX file",
        description="Export run N to ONNX (dynamic batch; int8 runs as QDQ int8, simulated low-bit runs dequantized). "
        "The file passes onnx.checker, runs in ONNX Runtime and is compared with torch on the test set before it is written.",
    )
    export.add_argument("--run", type=int, required=True, metavar="N", help="the run to export")
    export.add_argument("--format", choices=FORMATS, default="onnx", help="file format (default: onnx)")
    export.add_argument("--out", required=True, metavar="PATH", help="the file to write (a folder: model-run-N-TECHNIQUE.onnx inside it)")
    recorded_run_options(export)
    export.set_defaults(handler=run_export)
    runtimes = subparsers.add_parser(
        "runtimes",
        help="time runs in torch eager, torch.compile, ONNX Runtime and OpenVINO, fp32 and int8",
        description="Latency at batch 1 and 256 and test accuracy of each run's model in every runtime and precision, one thread count for all, interleaved rounds. Default: the run and its source.",
    )
    runtimes.add_argument("--run", type=int, action="append", required=True, metavar="N", help="a run to time; give --run again for more (default with one: the run and its source)")
    runtimes.add_argument("--rounds", type=int, metavar="R", help=f"interleaved timing rounds (default: {ROUNDS}, or $MEL_LATENCY_ROUNDS)")
    recorded_run_options(runtimes)
    runtimes.set_defaults(handler=run_runtimes)


def run_export(args: argparse.Namespace) -> dict:
    from core.deploy.export import export_run

    return export_run(workspace_from_args(args), args.run, Path(args.out))


def run_runtimes(args: argparse.Namespace) -> dict:
    from core.deploy.runtimes import default_runs, measure_runtimes

    if args.rounds is not None and args.rounds < 1:
        raise UserError(f"--rounds must be 1 or more, got {args.rounds}")
    workspace = workspace_from_args(args)
    run_ids = default_runs(workspace, args.run[0]) if len(args.run) == 1 else args.run
    return measure_runtimes(workspace, run_ids, rounds=args.rounds, progress=stderr_progress()).as_dict()

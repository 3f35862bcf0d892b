"""`python -m core diff` and `python -m core exemplars`: the per-example and per-layer comparisons
of the pages, headless. The last stdout line is one JSON object; a bad run exits 2 with one line."""

from __future__ import annotations

import argparse

from core.cli.main import workspace_from_args
from core.cli.options import recorded_run_options
from core.diff.exemplars import exemplars_for_baseline
from core.diff.runs import diff_runs
from core.foundation.errors import UserError
from core.foundation.progress import stderr_progress


def register(subparsers, common: argparse.ArgumentParser) -> None:
    diff = subparsers.add_parser(
        "diff",
        help="compare two runs example by example and layer by layer",
        description="Run A against run B (default: A's parent) on their common test set: top-1 agreement, the 2x2 table, per-class "
        "accuracy, the flipped images worst first, and every layer's output error. Predictions are cached in the workspace.",
    )
    diff.add_argument("--run", type=int, action="append", required=True, metavar="N", help="run A; give --run twice for run B (default: A's parent)")
    diff.add_argument("--details", type=int, default=50, metavar="K", help="flipped images described in full (default: 50; `flipped` always lists all)")
    diff.add_argument("--no-layers", action="store_true", help="skip the layer-by-layer error")
    recorded_run_options(diff)
    diff.set_defaults(handler=run_diff)
    exemplars = subparsers.add_parser(
        "exemplars",
        help="test images a baseline gets right and most of its compressed descendants get wrong",
        description="Compression-identified exemplars (Hooker et al. 2019) over every recorded descendant of --run.",
    )
    exemplars.add_argument("--run", type=int, required=True, metavar="N", help="the baseline run")
    exemplars.add_argument("--limit", type=int, default=100, metavar="K", help="exemplars listed (default: 100)")
    recorded_run_options(exemplars)
    exemplars.set_defaults(handler=run_exemplars)


def run_diff(args: argparse.Namespace) -> dict:
    if len(args.run) > 2:
        raise UserError(f"diff compares two runs; --run was given {len(args.run)} times")
    if args.details < 0:
        raise UserError(f"--details must be 0 or more, got {args.details}")
    workspace = workspace_from_args(args)
    run_b = args.run[1] if len(args.run) == 2 else None
    comparison = diff_runs(workspace, args.run[0], run_b, with_layers=not args.no_layers)
    payload = comparison.as_dict()
    payload["flipped_details"] = payload["flipped_details"][: args.details]
    return payload


def run_exemplars(args: argparse.Namespace) -> dict:
    if args.limit < 0:
        raise UserError(f"--limit must be 0 or more, got {args.limit}")
    report = exemplars_for_baseline(workspace_from_args(args), args.run, stderr_progress())
    return report.as_dict(limit=args.limit)

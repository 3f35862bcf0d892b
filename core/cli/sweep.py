"""`python -m core sweep`: many settings at once, on Ray, and the best model within a budget."""

from __future__ import annotations

import argparse

from core.cli.main import add_source_option, context_from_args, source_from_args, workspace_from_args
from core.sweep.frontier import OBJECTIVES
from core.sweep.grid import parse_grid
from core.sweep.run import EngineOptions, SweepSpec, run_sweep
from core.sweep.search import SEARCH_HELP, parse_search


def register(subparsers, common: argparse.ArgumentParser) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        parents=[common],
        help="run many compression settings as Ray tasks; the frontier and the best model within an accuracy budget",
        description="Each trial is one point of the grid: one technique, or a pipeline of the techniques the grid names (distill, prune, quantize, "
        "in that order), started from the source (the cached baseline, or --from-run N). Trials run on a local Ray cluster, or on the cluster at "
        "--address / $RAY_ADDRESS; every finished trial is a run in the history, so the same sweep started again runs only the missing trials. "
        "Progress on stderr; the last stdout line is one JSON object.",
    )
    add_source_option(sweep)
    sweep.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="TECHNIQUE.PARAM=VALUES",
        help="a parameter and its values: a range start:stop:step (prune.amount=0.5:0.9:0.1) or a list (quantize.bits=8,4); repeat for more",
    )
    sweep.add_argument("--search", default="grid", help=f"{SEARCH_HELP} (default: grid)")
    sweep.add_argument("--objective", default="size", choices=sorted(OBJECTIVES), help="what the recommendation minimises: size (file bytes), latency (batch 256) or macs (default: size)")
    sweep.add_argument("--budget-points", type=float, default=1.0, help="the largest accuracy drop allowed, in points on the full test set (default: 1)")
    sweep.add_argument("--address", help="an existing Ray cluster, host:port (default: $RAY_ADDRESS, else a local cluster on this machine)")
    sweep.add_argument("--cpus-per-trial", type=int, default=1, help="CPUs each trial asks Ray for; torch uses as many threads (default: 1)")
    sweep.set_defaults(handler=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> dict:
    # Everything the user typed is checked before the baseline is trained or Ray is started.
    spec = SweepSpec(parse_grid(args.grid), parse_search(args.search), args.objective, args.budget_points, args.seed)
    spec.validate()
    options = EngineOptions(args.address, args.cpus_per_trial)
    options.validate()
    workspace = workspace_from_args(args)
    source = source_from_args(args, workspace)
    state = run_sweep(source, spec, context_from_args(args, workspace), options)
    return state.as_json()

"""`python -m core distill`: the distillation race from the command line. The source (the baseline,
or --from-run N) is the model the distilled student replaces; flags come from DistillConfig."""

from __future__ import annotations

import argparse

from core.cli import add_source_option, context_from_args, source_from_args, workspace_from_args
from core.distillation.config import MAX_SEEDS, DistillConfig
from core.distillation.run import distill
from core.errors import UserError
from core.models import STUDENT_MODELS
from core.options import add_arguments, from_options
from core.record import record


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "distill",
        parents=[common],
        help="race a hard-label student against the same student distilled from a teacher",
        description="Train the student twice with the same data order, epochs and optimiser (hard labels, then distillation "
        "from a cached or freshly trained teacher) and report both accuracies and the gain. --epochs and --seed apply to the students; "
        "the source (the baseline, or --from-run N) is the model the student replaces.",
    )
    add_source_option(parser)
    add_arguments(parser, DistillConfig)
    parser.add_argument("--seeds", type=int, default=1, help=f"race this many seeds (--seed, --seed + 1, ...), 1..{MAX_SEEDS}, and report the gain's mean and spread (default: 1)")
    parser.set_defaults(handler=run_distill)


def config_from_args(args: argparse.Namespace, source_architecture: str) -> DistillConfig:
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be between 1 and {MAX_SEEDS}, got {args.seeds}")
    student = args.student or (source_architecture if source_architecture in STUDENT_MODELS else None)
    overrides = {"student": student} if student else {}
    return from_options(DistillConfig, args, **overrides, epochs=args.epochs, seeds=tuple(range(args.seed, args.seed + args.seeds)), device=args.device)


def run_distill(args: argparse.Namespace) -> dict:
    architecture = args.model
    config = config_from_args(args, architecture)  # before any data is loaded, so a bad T or alpha fails at once
    workspace = workspace_from_args(args)
    # --epochs is the students' budget; the baseline the student replaces keeps its classroom preset.
    source = source_from_args(argparse.Namespace(**{**vars(args), "epochs": None}), workspace)
    if args.from_run is not None and args.student is None:
        config = config_from_args(args, source.architecture)
    result = distill(source, config, context_from_args(args, workspace))
    record(result, workspace)
    return {**result.summary(), "dataset": source.dataset.summary()}

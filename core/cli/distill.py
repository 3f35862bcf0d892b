"""`python -m core distill`: the distillation race from the command line. The source (the baseline,
or --from-run N) is the model the distilled student replaces; flags come from DistillConfig."""

from __future__ import annotations

import argparse

from core.cli.main import add_source_option, baseline_config_from_args, context_from_args, source_from_args, workspace_from_args
from core.contract.options import add_arguments, from_options, given, spec
from core.contract.record import record
from core.contract.source import ModelSource
from core.distillation.config import DISTILL_PRESETS, MAX_SEEDS, DistillConfig, check_teacher_not_smaller, default_student
from core.distillation.run import distill
from core.distillation.teachers import grouped_names
from core.foundation.baseline.trained import get_baseline
from core.foundation.data.datasets import load_dataset
from core.foundation.errors import UserError
from core.foundation.progress import stderr_progress

MODEL_FIELDS = ("teacher", "student")


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
    add_arguments(parser, DistillConfig, skip=MODEL_FIELDS)
    for field in MODEL_FIELDS:  # the registry's offered list, grouped as the sidebar groups it
        option_spec = spec(DistillConfig, field)
        shown_default = option_spec.default if field == "teacher" else "the source's architecture when it is one of the lab's students, else " + option_spec.default
        parser.add_argument(
            option_spec.cli_flag,
            dest=option_spec.dest,
            choices=option_spec.choices,
            metavar="MODEL",
            help=f"{field} model, any of {grouped_names(option_spec.choices)} (default: {shown_default})",
        )
    parser.add_argument(
        "--preset",
        choices=list(DISTILL_PRESETS),
        help="start from a named setting (the page's presets; flags given beside it win): "
        + "; ".join(f"{name}: T={p.temperature:g}, alpha={p.alpha:g}, labelled fraction {p.labelled_fraction or 'all'}" for name, p in DISTILL_PRESETS.items()),
    )
    parser.add_argument("--seeds", type=int, default=1, help=f"race this many seeds (--seed, --seed + 1, ...), 1..{MAX_SEEDS}, and report the gain's mean and spread (default: 1)")
    parser.set_defaults(handler=run_distill)


def config_from_args(args: argparse.Namespace, source_architecture: str) -> DistillConfig:
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be between 1 and {MAX_SEEDS}, got {args.seeds}")
    overrides = {"student": args.student or default_student(source_architecture)}
    preset = {name: value for name, value in DISTILL_PRESETS[args.preset].config_fields().items() if name not in given(args, DistillConfig)} if args.preset else {}
    return from_options(DistillConfig, args, **preset, **overrides, epochs=args.epochs, seeds=tuple(range(args.seed, args.seed + args.seeds)), device=args.device)


def run_distill(args: argparse.Namespace) -> dict:
    architecture = args.model
    config = config_from_args(args, architecture)  # before any data is loaded, so a bad T or alpha fails at once
    workspace = workspace_from_args(args)
    # --epochs is the students' budget; the baseline the student replaces keeps its classroom preset.
    source_args = argparse.Namespace(**{**vars(args), "epochs": None})
    if args.from_run is None:
        # The teacher-versus-student size check needs only the data's shape: refuse before the baseline is trained.
        baseline_config = baseline_config_from_args(source_args, workspace)
        dataset = load_dataset(baseline_config.dataset, workspace, stderr_progress(), allow_download=not args.no_download)
        check_teacher_not_smaller(config, dataset)
        source = ModelSource.from_baseline(get_baseline(baseline_config, workspace, stderr_progress(), dataset=dataset))
    else:
        source = source_from_args(source_args, workspace)
    if args.from_run is not None and args.student is None:
        config = config_from_args(args, source.architecture)
    result = distill(source, config, context_from_args(args, workspace))
    record(result, workspace)
    return {**result.summary(), "dataset": source.dataset.summary()}

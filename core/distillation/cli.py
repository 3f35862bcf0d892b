"""`python -m core distill`: the distillation race from the command line."""

from __future__ import annotations

import argparse

from core.cli import baseline_config_from_args, workspace_from_args
from core.datasets import load_dataset
from core.distillation.race import DistillConfig, distill
from core.distillation.teachers import TEACHER_MODELS
from core.errors import UserError
from core.progress import stderr_progress


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "distill",
        parents=[common],
        help="race a hard-label student against the same student distilled from a teacher",
        description="Train the student twice with the same data order, epochs and optimiser (hard labels, then distillation "
        "from a cached or freshly trained teacher) and report both accuracies and the gain. --epochs and --seed apply to the students.",
    )
    parser.add_argument("--teacher", default="teacher", help=f"teacher model: {', '.join(TEACHER_MODELS)} (default: teacher)")
    parser.add_argument("--student", help="student model: simple_cnn, simple_cnn_narrow or simple_cnn_wide (default: --model)")
    parser.add_argument("--temperature", type=float, default=DistillConfig.temperature, help=f"softmax temperature T of the soft targets, > 0 (default: {DistillConfig.temperature:g})")
    parser.add_argument("--alpha", type=float, default=DistillConfig.alpha, help=f"weight of the soft loss, 0..1; 1 - alpha weighs the hard labels (default: {DistillConfig.alpha:g})")
    parser.add_argument("--seeds", type=int, default=1, help="race this many seeds (--seed, --seed + 1, ...) and report the gain's mean and spread (default: 1)")
    parser.add_argument("--learning-rate", type=float, help="the students' peak learning rate (default: the classroom preset)")
    parser.add_argument("--augment", choices=["none", "crop", "flip_crop"], help="the students' augmentation; crops make teacher logits uncacheable (default: none)")
    parser.add_argument("--teacher-seed", type=int, default=0, help="seed of the teacher's training (default: 0)")
    parser.add_argument("--teacher-epochs", type=int, help="teacher training epochs when it must be trained (default: its classroom preset)")
    parser.set_defaults(handler=run_distill)


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    return DistillConfig(
        teacher=args.teacher,
        student=args.student or args.model,
        temperature=args.temperature,
        alpha=args.alpha,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        augment=args.augment,
        seeds=tuple(range(args.seed, args.seed + args.seeds)),
        teacher_seed=args.teacher_seed,
        teacher_epochs=args.teacher_epochs,
        device=args.device,
    )


def run_distill(args: argparse.Namespace) -> dict:
    config = config_from_args(args)
    config.validate()  # before any data is loaded, so a bad T or alpha fails at once
    spec = baseline_config_from_args(args).dataset
    workspace = workspace_from_args(args)
    progress = stderr_progress()
    dataset = load_dataset(spec, workspace, progress, allow_download=not args.no_download)
    return distill(config, spec, workspace, progress, dataset=dataset).summary()

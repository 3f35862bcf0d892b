"""`python -m core COMMAND ...`: the headless twin of the dashboard, over the same core functions.

Progress goes to stderr; the last line on stdout is one JSON object. A mistake the user can fix
exits with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys

from core.baseline import Baseline, BaselineConfig, get_baseline
from core.datasets import DatasetSpec, load_dataset
from core.errors import UserError
from core.progress import stderr_progress
from core.workspace import DATA_DIR_ENV, Workspace

# Each technique module adds its own subcommand with register(subparsers, common_options).
TECHNIQUE_COMMAND_MODULES: list[str] = ["core.distillation.cli", "core.pruning.cli", "core.quantization.cli", "core.compare.cli"]


def common_options() -> argparse.ArgumentParser:
    """The options every command shares: which data, which baseline model, where to keep things."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    group.add_argument("--dataset", default="digits", help="digits, cifar10, mnist, fashion-mnist or folder:PATH (default: digits)")
    group.add_argument("--data-dir", help=f"where torchvision datasets are looked for and downloaded (default: WORKSPACE/data, or ${DATA_DIR_ENV})")
    group.add_argument("--model", default="simple_cnn", help="baseline model (default: simple_cnn)")
    group.add_argument("--epochs", type=int, help="training epochs (default: the dataset's classroom preset)")
    group.add_argument("--train-size", type=int, help="class-balanced training subset size (default: all)")
    group.add_argument("--test-size", type=int, help="class-balanced test subset size (default: all)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    group.add_argument("--workspace", help="workspace folder (default: ~/.cache/model-efficiency-lab, or $MEL_HOME)")
    group.add_argument("--no-download", action="store_true", help="never download; fail with the folder to put files in")
    return parser


def workspace_from_args(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.workspace, args.data_dir)


def baseline_config_from_args(args: argparse.Namespace) -> BaselineConfig:
    for flag in ("train_size", "test_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.epochs is not None and args.epochs < 0:
        raise UserError(f"--epochs must be 0 or more, got {args.epochs}")
    return BaselineConfig(DatasetSpec(args.dataset, args.train_size, args.test_size, 0), args.model, args.epochs, args.seed, args.device)


def baseline_from_args(args: argparse.Namespace, workspace: Workspace) -> Baseline:
    """The cached baseline the common options describe, trained first when it is missing."""
    config = baseline_config_from_args(args)
    dataset = load_dataset(config.dataset, workspace, stderr_progress(), allow_download=not args.no_download)
    return get_baseline(config, workspace, stderr_progress(), dataset=dataset)


def emit_json(payload: dict) -> None:
    """The machine-readable result: one line, the last on stdout (NaN becomes null)."""
    print(json.dumps(_finite(payload), sort_keys=True))


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def run_train(args: argparse.Namespace) -> dict:
    workspace = workspace_from_args(args)
    baseline = baseline_from_args(args, workspace)
    return {
        **baseline.metrics.as_dict(),
        "dataset": baseline.dataset.summary(),
        "recipe": baseline.recipe.as_dict(),
        "per_class_accuracy": baseline.evaluation.per_class_accuracy,
        "train_seconds": baseline.train_seconds,
        "from_cache": baseline.from_cache,
        "checkpoint": str(baseline.checkpoint),
        "run_id": baseline.run_id,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Model Efficiency Lab, headless.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    common = common_options()
    train = subparsers.add_parser("train", parents=[common], help="train (or load from the cache) a baseline model")
    train.set_defaults(handler=run_train)
    for module_name in TECHNIQUE_COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        emit_json(args.handler(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

"""`python -m core COMMAND ...`: the headless twin of the dashboard, over the same core functions.

Progress goes to stderr; the last line on stdout is one JSON object. A mistake the user can fix
exits with status 2 and a one-line message; Ctrl-C exits 130 and saves nothing unfinished.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from core.cli.options import common_options  # noqa: F401 (re-exported: each command module adds it)
from core.contract.context import RunContext
from core.contract.source import ModelSource
from core.foundation.baseline.trained import Baseline, BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.history import finite_for_json
from core.foundation.progress import stderr_progress
from core.foundation.workspace import Workspace

# Each module adds its own subcommand with register(subparsers, common_options).
COMMAND_MODULES: list[str] = [
    "core.cli.distill",
    "core.cli.prune",
    "core.cli.quantize",
    "core.cli.pipeline",
    "core.cli.sweep",
    "core.cli.compare",
    "core.cli.diff",
    "core.cli.deploy",
    "core.cli.jobs",
    "core.cli.report",
    "core.cli.program",
]


def add_source_option(parser: argparse.ArgumentParser) -> None:
    """For the commands that start from a model: --from-run N instead of the baseline."""
    parser.add_argument("--from-run", type=int, metavar="N", help="start from run N of the history (e.g. prune a distilled student, quantize a pruned model) instead of the baseline")


def workspace_from_args(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.workspace, args.data_dir)


def baseline_config_from_args(args: argparse.Namespace, workspace: Workspace | None = None) -> BaselineConfig:
    """The baseline the common options name. With --weights FILE the file is read, checked and kept
    in the workspace first (core.foundation.baseline.brought), so a bad file is refused before any data loads."""
    brought = {}
    if getattr(args, "weights", None):
        from core.foundation.baseline.brought import bring_weights_file

        weights = bring_weights_file(workspace or workspace_from_args(args), args.weights)
        brought = {"brought_weights_name": weights.name, "brought_weights_sha256": weights.sha256}
    pretrained = bool(getattr(args, "pretrained", False))  # torchvision's ImageNet weights as the start (core.foundation.models.pretrained)
    config = BaselineConfig(DatasetSpec(args.dataset, args.train_size, args.test_size, 0, args.image_size), args.model, args.epochs, args.seed, args.device, **brought, pretrained=pretrained)
    config.validate()
    return config


def baseline_from_args(args: argparse.Namespace, workspace: Workspace) -> Baseline:
    """The cached baseline the common options describe, trained first when it is missing."""
    config = baseline_config_from_args(args, workspace)
    if config.pretrained and args.no_download:
        from core.foundation.models.pretrained import require_on_disk

        require_on_disk(config.model)
    dataset = load_dataset(config.dataset, workspace, stderr_progress(), allow_download=not args.no_download)
    return get_baseline(config, workspace, stderr_progress(), dataset=dataset)


def source_from_args(args: argparse.Namespace, workspace: Workspace) -> ModelSource:
    """What a technique starts from: run --from-run N, else the baseline (trained first when missing)."""
    if getattr(args, "from_run", None) is not None:
        return ModelSource.from_run(workspace, args.from_run, device=args.device)
    return ModelSource.from_baseline(baseline_from_args(args, workspace))


def context_from_args(args: argparse.Namespace, workspace: Workspace) -> RunContext:
    return RunContext(workspace, stderr_progress())


def emit_json(payload: dict) -> None:
    """The machine-readable result: one line, the last on stdout (NaN becomes null)."""
    print(json.dumps(finite_for_json(payload), sort_keys=True, default=str))


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
        **({"brought_weights": {"name": baseline.config.brought_weights_name, "sha256": baseline.config.brought_weights_sha256}} if baseline.config.brought else {}),
    }


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse's own refusals (a value outside a flag's choices, a missing required flag) as a
    UserError: one line and exit status 2, like every other mistake, not a usage dump. Subcommand
    parsers inherit the class."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="python -m core", description="Model Efficiency Lab, headless.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    common = common_options()
    train = subparsers.add_parser("train", parents=[common], help="train (or load from the cache) a baseline model")
    train.set_defaults(handler=run_train)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        emit_json(args.handler(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # A run is written only once it has finished (checkpoint, history row), so the interrupted
        # one left nothing behind; runs finished before it (e.g. a teacher) stay saved.
        print("stopped by Ctrl-C; the unfinished run was not saved", file=sys.stderr)
        return 130
    return 0

"""`python -m core prune ...`: prune the cached baseline, fine-tune if asked, print one JSON line."""

from __future__ import annotations

import argparse

import torch

from core.cli import baseline_from_args, workspace_from_args
from core.models import build_model
from core.progress import stderr_progress
from core.pruning.config import GRANULARITIES, METHODS, SCOPES, PruneConfig, ScheduleConfig
from core.pruning.lab import LATENCY_BATCH_SIZE, run_pruning
from core.pruning.masks import chosen_layers, prunable_layers


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "prune",
        parents=[common],
        help="prune the baseline (masks or channel removal), optionally fine-tune, and measure what it buys",
        description="Prune a copy of the cached baseline (trained first when missing). The last stdout line is one JSON object.",
    )
    parser.add_argument("--method", choices=METHODS, default="l1", help="l1: smallest |w| (channels: filter L1 norm); ln: filter L2 norm (channel only); random (default: l1)")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="unstructured", help="unstructured: single weights; channel: whole filters/neurons (default: unstructured)")
    parser.add_argument("--amount", type=float, required=True, help="fraction to prune, in [0, 1)")
    parser.add_argument("--scope", choices=SCOPES, default="layer", help="layer: the amount of each layer; global: one threshold across layers (default: layer)")
    parser.add_argument("--layers", default="all", help="all, or comma-separated layer names such as conv1,conv2 (default: all)")
    parser.add_argument("--remove", action="store_true", help="channel pruning: cut the pruned channels out, giving a smaller dense model")
    parser.add_argument("--finetune-epochs", type=int, default=0, help="fine-tuning epochs after pruning, masks fixed (per step when iterative; default: 0)")
    parser.add_argument("--iterative-steps", type=int, default=1, help="prune in N steps up to the amount, fine-tuning after each (default: 1, one-shot)")
    parser.set_defaults(handler=run_prune)


def parse_layers(text: str) -> tuple[str, ...] | None:
    if text.strip() == "all":
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def run_prune(args: argparse.Namespace) -> dict:
    config = PruneConfig(args.method, args.granularity, args.amount, args.scope, parse_layers(args.layers), remove=args.remove, seed=args.seed)
    schedule = ScheduleConfig(args.finetune_epochs, args.iterative_steps)
    config.validate()
    schedule.validate()
    _check_layer_names(args.model, config)  # before a possibly long baseline training
    workspace = workspace_from_args(args)
    baseline = baseline_from_args(args, workspace)
    _, report = run_pruning(baseline, config, schedule, workspace, progress=stderr_progress(), latency_batch_size=LATENCY_BATCH_SIZE)
    return {**report.as_json(), "dataset": baseline.dataset.summary(), "baseline_checkpoint": str(baseline.checkpoint)}


def _check_layer_names(model_name: str, config: PruneConfig) -> None:
    """Layer names depend only on the architecture, so an untrained stand-in can check them."""
    stand_in = build_model(model_name, 3, 32, 10).eval()
    chosen_layers(stand_in, config, prunable_layers(stand_in, config.granularity, torch.zeros(1, 3, 32, 32)))

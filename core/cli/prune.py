"""`python -m core prune ...`: prune the source (the baseline, or --from-run N), fine-tune if asked,
record the run, print one JSON line. Flags come from PruneConfig's own option descriptions."""

from __future__ import annotations

import argparse

import torch

from core.cli.main import add_source_option, context_from_args, source_from_args, workspace_from_args
from core.contract.options import add_arguments, from_options
from core.contract.record import record
from core.foundation.models.registry import build_model
from core.pruning.config import PruneConfig, parse_layers
from core.pruning.masks import blocked_channel_layers, chosen_layers, prunable_layers
from core.pruning.run import prune


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "prune",
        parents=[common],
        help="prune the baseline or a run (masks or channel removal), optionally fine-tune, and measure what it buys",
        description="Prune a copy of the source (the cached baseline, trained first when missing, or --from-run N). The last stdout line is one JSON object.",
    )
    add_source_option(parser)
    add_arguments(parser, PruneConfig)
    parser.add_argument("--layers", default="all", help="all, or comma-separated layer names such as conv1,conv2 (default: all)")
    parser.set_defaults(handler=run_prune)


def run_prune(args: argparse.Namespace) -> dict:
    config = from_options(PruneConfig, args, layers=parse_layers(args.layers), seed=args.seed)
    if args.from_run is None:
        _check_layer_names(args.model, config)  # before a possibly long baseline training
    workspace = workspace_from_args(args)
    source = source_from_args(args, workspace)
    result = prune(source, config, context_from_args(args, workspace))
    record(result, workspace)
    return {**result.summary(), "dataset": source.dataset.summary()}


def _check_layer_names(model_name: str, config: PruneConfig) -> None:
    """Layer names depend only on the architecture, so an untrained stand-in can check them (a
    channel layer that cannot lose channels exactly is refused with the layer in the way)."""
    if config.layers is None and not config.layer_amounts:
        return
    stand_in = build_model(model_name, 3, 32, 10).eval()
    example = torch.zeros(1, 3, 32, 32)
    blocked = blocked_channel_layers(stand_in, example) if config.granularity == "channel" else {}
    chosen_layers(stand_in, config, prunable_layers(stand_in, config.granularity, example), blocked)

"""`python -m core quantize ...`: the quantization lab, headless.

The flags are the four mode configs' own option descriptions (core.quantization.config). A flag
the chosen mode would silently ignore is refused (exit 2, one line), so a run never reports a
setting it did not use.
"""

from __future__ import annotations

import argparse

from core.cli.main import add_source_option, context_from_args, source_from_args, workspace_from_args
from core.contract.options import add_argument_for, specs
from core.contract.record import record
from core.quantization.config import CONFIG_CLASSES, MODES, quantization_config
from core.quantization.run import quantize


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("quantize", parents=[common], help="quantize the baseline or a run: simulate low-bit, dynamic or static int8, or QAT")
    add_source_option(parser)
    parser.add_argument("--mode", required=True, choices=MODES, help="simulate (fake-quantize, 2..8 bits), dynamic (int8 Linear), static (PT2E int8), qat")
    add_mode_options(parser)
    parser.set_defaults(handler=run_quantize)


def add_mode_options(parser) -> None:
    """Each mode option once; its help names the default of every mode that has it."""
    seen: dict[str, list[tuple[str, object]]] = {}
    first = {}
    for mode, config_class in CONFIG_CLASSES.items():
        for option_spec in specs(config_class).values():
            if option_spec.cli:
                seen.setdefault(option_spec.dest, []).append((mode, option_spec.default))
                first.setdefault(option_spec.dest, (config_class, option_spec))
    for dest, (config_class, option_spec) in first.items():
        defaults = {default for _, default in seen[dest]}
        shown = str(option_spec.default) if len(defaults) == 1 else "; ".join(f"{mode}: {default}" for mode, default in seen[dest])
        add_argument_for(parser, config_class, option_spec, shown_default=shown)


def config_from_args(args: argparse.Namespace):
    return quantization_config(args.mode, {key: value for key, value in vars(args).items() if key != "mode"})


def run_quantize(args: argparse.Namespace) -> dict:
    config = config_from_args(args)
    workspace = workspace_from_args(args)
    source = source_from_args(args, workspace)
    result = quantize(source, config, context_from_args(args, workspace))
    record(result, workspace)
    return {**result.summary(), "dataset": source.dataset.summary()}

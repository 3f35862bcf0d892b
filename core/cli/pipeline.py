"""`python -m core pipeline`: distill -> prune -> quantize in one go, then the model zip."""

from __future__ import annotations

import argparse

from core.cli.main import add_source_option, context_from_args, source_from_args, workspace_from_args
from core.contract.options import add_arguments
from core.contract.record import record
from core.distillation.config import DistillConfig
from core.foundation.errors import UserError
from core.pipeline.config import PRESETS, STEP_ORDER, build_pipeline_config, pipeline_options
from core.pipeline.run import run_pipeline
from core.pruning.config import PruneConfig
from core.quantization.config import MODES


def register(subparsers, common: argparse.ArgumentParser) -> None:
    pipeline = subparsers.add_parser(
        "pipeline",
        parents=[common],
        help="distill -> prune -> quantize in one go, then the compressed encoding",
        description="Run the chosen steps in order on the source (the cached baseline, trained first when missing, or --from-run N), each recorded "
        "as a run whose parent is the previous step, then write the model zip (the honest compressed artifact). Step options are those of `distill`, "
        "`prune` and `quantize`, under the same names; a preset fills them in and any option given explicitly overrides it. The last stdout line is one JSON object.",
    )
    add_source_option(pipeline)
    pipeline.add_argument("--steps", help=f"comma-separated, in this order: {','.join(STEP_ORDER)} (default: the preset's)")
    pipeline.add_argument("--preset", choices=sorted(PRESETS), help="; ".join(f"{name}: {preset.title}" for name, preset in PRESETS.items()))
    add_step_options(pipeline)
    pipeline.set_defaults(handler=run_pipeline_command)


def add_step_options(parser: argparse.ArgumentParser) -> None:
    """Every step's options, made from the technique configs (each flag once)."""
    from core.cli.quantize import add_mode_options

    distill = parser.add_argument_group("distill step options (as in `python -m core distill`)")
    add_arguments(distill, DistillConfig)
    prune = parser.add_argument_group("prune step options (as in `python -m core prune`)")
    add_arguments(prune, PruneConfig)
    prune.add_argument("--layers", help="all, or comma-separated layer names such as conv1,conv2 (default: all)")
    quantize = parser.add_argument_group("quantize step options (as in `python -m core quantize`)")
    quantize.add_argument("--mode", choices=MODES, help="simulate, dynamic, static or qat")
    add_mode_options(quantize)


def run_pipeline_command(args: argparse.Namespace) -> dict:
    given = {key: value for key, value in vars(args).items() if key not in ("handler", "command", "preset")}
    options = pipeline_options(args.preset, given)
    if not options.get("steps"):
        raise UserError("choose the steps (--steps distill,prune,quantize, any of them in that order) or a --preset")
    steps = options["steps"].split(",") if isinstance(options["steps"], str) else list(options["steps"])
    if args.epochs is not None and "distill" not in steps:
        raise UserError("in a pipeline --epochs is the distill step's student budget (the source keeps its preset); add the distill step or leave --epochs out")
    if args.from_run is None:
        build_pipeline_config(options, args.model, args.seed, args.device)  # checked before any training
    workspace = workspace_from_args(args)
    # As in `distill`, --epochs is the students' budget; the baseline the pipeline starts from keeps its classroom preset.
    source = source_from_args(argparse.Namespace(**{**vars(args), "epochs": None}), workspace)
    config = build_pipeline_config(options, source.architecture, args.seed, args.device)
    result = run_pipeline(source, config, context_from_args(args, workspace))
    record(result, workspace)
    return {**result.summary(), "dataset": source.dataset.summary()}

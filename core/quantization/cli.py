"""`python -m core quantize ...`: the quantization lab, headless.

A flag the chosen mode would silently ignore is refused (exit 2, one line), so a run never reports
a setting it did not use.
"""

from __future__ import annotations

import argparse

from core.cli import baseline_from_args, workspace_from_args
from core.errors import UserError
from core.progress import stderr_progress
from core.quantization.apply import quantize
from core.quantization.config import DEFAULT_CALIBRATION_SIZE, MODES, DynamicInt8Config, QATConfig, QuantizationConfig, SimulateConfig, StaticInt8Config
from core.quantization.latency import LatencyComparison, measure_compiled_latency, unavailable
from core.quantization.pt2e import OBSERVERS
from core.quantization.runs import save_and_record


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("quantize", parents=[common], help="quantize the baseline: simulate low-bit, dynamic or static int8, or QAT")
    parser.add_argument("--mode", required=True, choices=MODES, help="simulate (fake-quantize, 2..8 bits), dynamic (int8 Linear), static (PT2E int8), qat")
    parser.add_argument("--bits", type=int, default=8, help="weight bit width, 2..8 for simulate and qat; dynamic and static are 8 only (default 8)")
    granularity = parser.add_mutually_exclusive_group()
    granularity.add_argument("--per-channel", dest="per_channel", action="store_const", const=True, help="one scale per output channel (default)")
    granularity.add_argument("--per-tensor", dest="per_channel", action="store_const", const=False, help="one scale per weight tensor")
    scheme = parser.add_mutually_exclusive_group()
    scheme.add_argument("--symmetric", dest="symmetric", action="store_const", const=True, help="zero maps to code 0 (default)")
    scheme.add_argument("--affine", dest="symmetric", action="store_const", const=False, help="a zero point shifts the range to the weights' min..max")
    parser.add_argument("--activations", action="store_true", help="also fake-quantize each layer's input (simulate, qat below 8 bits)")
    parser.add_argument("--calibration-size", type=int, help=f"training images for activation ranges (default {DEFAULT_CALIBRATION_SIZE})")
    parser.add_argument("--observer", choices=OBSERVERS, help="static only: activation observer (default histogram)")
    parser.add_argument("--qat-epochs", type=int, help="qat only: fine-tuning epochs (default 2)")
    parser.add_argument("--skip-latency", action="store_true", help="do not compile and time fp32 vs int8 (latency fields become null)")
    parser.set_defaults(handler=run_quantize)


def config_from_args(args: argparse.Namespace) -> QuantizationConfig:
    """The mode's config; refuses flags the mode would not use."""
    mode, bits = args.mode, args.bits
    fixed_scheme = mode in ("dynamic", "static") or (mode == "qat" and bits == 8)
    if mode in ("simulate", "qat") and not 2 <= bits <= 8:
        raise UserError(f"--bits must be between 2 and 8, got {bits}")
    if mode in ("dynamic", "static") and bits != 8:
        raise UserError(f"--mode {mode} is int8 only, got --bits {bits}; use --mode simulate or qat below 8 bits")
    if fixed_scheme and (args.per_channel is False or args.symmetric is False):
        raise UserError(f"--mode {mode} at 8 bits uses the backend's per-channel symmetric int8 weights; --per-tensor and --affine apply to simulate and to qat below 8 bits")
    if args.activations and fixed_scheme:
        raise UserError(f"--mode {mode} {'quantizes activations at run time' if mode == 'dynamic' else 'always quantizes activations to uint8'}; --activations applies to simulate and to qat below 8 bits")
    if args.observer is not None and mode != "static":
        raise UserError("--observer applies to --mode static only")
    if args.qat_epochs is not None and mode != "qat":
        raise UserError("--qat-epochs applies to --mode qat only")
    if args.calibration_size is not None and (mode == "dynamic" or (mode == "simulate" and not args.activations)):
        raise UserError("--calibration-size applies to static, qat, and simulate with --activations")
    per_channel = True if args.per_channel is None else args.per_channel
    symmetric = True if args.symmetric is None else args.symmetric
    calibration = DEFAULT_CALIBRATION_SIZE if args.calibration_size is None else args.calibration_size
    if mode == "simulate":
        return SimulateConfig(bits, per_channel, symmetric, args.activations, calibration)
    if mode == "dynamic":
        return DynamicInt8Config(bits)
    if mode == "static":
        return StaticInt8Config(bits, calibration, args.observer or "histogram")
    return QATConfig(bits, 2 if args.qat_epochs is None else args.qat_epochs, per_channel, symmetric, args.activations, calibration)


def run_quantize(args: argparse.Namespace) -> dict:
    config = config_from_args(args)
    config.validate()
    workspace = workspace_from_args(args)
    baseline = baseline_from_args(args, workspace)
    dataset = baseline.dataset
    result = quantize(baseline.model, dataset, config, base_recipe=baseline.recipe, progress=stderr_progress(), seed=args.seed, accuracy_before=baseline.evaluation.accuracy)
    report = result.report
    latency: LatencyComparison | None = None
    if report.simulated:
        latency = unavailable("simulated: the model computes in fp32 with fake-quantized values, so there is no integer kernel to time")
    elif not args.skip_latency:
        latency = measure_compiled_latency(baseline.fresh_copy().cpu(), result.model, baseline.example_input().cpu(), reference_inputs=dataset.normalize(dataset.test.images))
    run_id, folder = save_and_record(baseline, result, workspace, latency)
    return {
        **report.as_dict(),
        "size": report.size.as_dict(),
        "bits": config.bits,
        "latency_ms_fp32": latency.fp32_latency_ms if latency else None,
        "latency_ms_quantized": latency.quantized_latency_ms if latency else None,
        "latency": latency.as_dict() if latency else None,
        "baseline_run_id": baseline.run_id,
        "run_id": run_id,
        "artifact_path": str(folder),
    }

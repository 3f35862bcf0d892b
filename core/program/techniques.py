"""What the lab can do to a whole exported program whose Python class it has never seen.

- evaluate: the program's module on the dataset's test set, inputs normalised by the dataset
  (`Dataset.normalize`: pixels / 255, minus the training images' per-channel mean, over their std),
  exactly as every model of the lab is fed.
- static int8: torchao's PT2E on the program's module (prepare_pt2e with X86InductorQuantizer and
  its default config, calibrated on training images, convert_pt2e), as core.quantization does for
  the lab's own models after torch.export.
- unstructured pruning: L1 magnitude over every float parameter of two or more dimensions (conv
  and linear weights; biases and norms are left), per tensor (scope "layer", the lab's default) or
  with one threshold over all of them (scope "global"). The zeros are written into the weights:
  the graph reads its parameters directly, so torch.nn.utils.prune's forward hooks would never run.
- ONNX: the fp32 module through the lab's float_onnx (torch's dynamo exporter), checked with
  onnx.checker and ONNX Runtime and refused below ONNX_AGREEMENT_MIN agreement with the program's
  own predictions; its int8 twin by ONNX Runtime's static quantization (the lab's static_int8_onnx).
- runtimes: torch eager (the program's module), ONNX Runtime and OpenVINO, fp32 and int8, at the
  protocol's two batch sizes, timed with median_call_ms in interleaved rounds (core.deploy.runtimes' runners).

Not possible on a program (PROGRAM_LIMITS): removing channels or fine-tuning. Its graph is fixed
and it carries no Python class to rebuild smaller or to train; bring a state dict with
--model/--weights for those.

    program = read_program(path)                       # core.program.exported
    report = run_program(program, dataset, ProgramRequest(quantize="static", prune_amount=0.5))
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from core.foundation.measures.latency import batch_sizes, latency_budget_seconds, latency_rounds, median_call_ms
from core.foundation.progress import Progress, ProgressCallback, no_progress
from core.foundation.training.loop import evaluation_from_logits, predict_logits
from core.program.exported import ProgramFile
from core.quantization.pt2e import split_reused_call_sites

CPU = torch.device("cpu")
QUANTIZE_MODES = ("static", "qat")  # qat is refused: it trains
GRANULARITIES = ("unstructured", "channel")  # channel is refused: it removes channels
PRUNE_SCOPES = ("layer", "global")
DEFAULT_CALIBRATION_IMAGES = 256
ONNX_AGREEMENT_MIN = 0.99  # top-1 agreement with the program's own fp32 predictions an ONNX file must reach
NORMALIZATION = "Dataset.normalize: pixels / 255, minus the training images' per-channel mean, over their per-channel std"
PROGRAM_LIMITS = {
    "channel": "its graph is fixed, and removing channels needs the network's Python class to rebuild it smaller; bring its state dict with --model and --weights for channel pruning",
    "training": "it carries its network as a fixed graph, with no Python class to train (fine-tuning, QAT and --epochs need one); bring its state dict with --model and --weights instead",
}
_CONV_LINEAR = ("aten.conv1d.default", "aten.conv2d.default", "aten.conv3d.default", "aten.linear.default")


@dataclass(frozen=True)
class ProgramRequest:
    """What to do with a program, validated before the file is read."""

    quantize: str | None = None  # "static"
    prune_amount: float | None = None
    prune_scope: str = "layer"
    granularity: str = "unstructured"
    onnx: Path | None = None  # write the checked fp32 ONNX file here
    onnx_int8: Path | None = None  # and its int8 twin here
    runtimes: bool = False
    rounds: int | None = None
    calibration_size: int = DEFAULT_CALIBRATION_IMAGES
    seed: int = 0

    def validate(self) -> None:
        if self.granularity == "channel":
            raise UserError(f"channel pruning cannot apply to an exported program: {PROGRAM_LIMITS['channel']}")
        if self.granularity not in GRANULARITIES:
            raise UserError(f"--granularity must be one of {', '.join(GRANULARITIES)}, got {self.granularity}")
        if self.quantize == "qat":
            raise UserError(f"quantization-aware training cannot apply to an exported program: {PROGRAM_LIMITS['training']}")
        if self.quantize not in (None, "static"):
            raise UserError(f"--quantize must be static for an exported program, got {self.quantize}")
        if self.prune_amount is not None and not 0.0 <= self.prune_amount < 1.0:
            raise UserError(f"--prune-amount must be at least 0 and below 1, got {self.prune_amount}")
        if self.prune_scope not in PRUNE_SCOPES:
            raise UserError(f"--prune-scope must be one of {', '.join(PRUNE_SCOPES)}, got {self.prune_scope}")
        if self.calibration_size < 1:
            raise UserError(f"--calibration-size must be 1 or more, got {self.calibration_size}")
        if self.rounds is not None and self.rounds < 1:
            raise UserError(f"--rounds must be 1 or more, got {self.rounds}")
        for flag, path in (("--onnx", self.onnx), ("--onnx-int8", self.onnx_int8)):
            if path is not None and Path(path).is_dir():
                raise UserError(f"{flag} {path} is a folder; name the file to write (e.g. {Path(path) / 'program.onnx'})")


# ------------------------------------------------------------------------------------ evaluating


def check_program_fits(program: ProgramFile, dataset: Dataset) -> None:
    """One line when the program cannot classify the dataset's images: its forward fails on them
    (at batch 1 and 3: the timing protocol needs a free batch), or its output is not [N, classes]."""
    module = program.module()
    exported = f" (it was exported with an input of shape {program.example_input_shape})" if program.example_input_shape else ""
    for batch in (3, 1):
        images = dataset.normalize(dataset.test.images[:1].expand(batch, *dataset.test.images.shape[1:]).contiguous())
        shape = list(images.shape)
        try:
            with torch.no_grad():
                output = module(images)
        except Exception as error:  # whatever the user's graph raises on these inputs
            raise UserError(f"{program.name}: the program's forward fails on the {dataset.name} test images, float32 of shape {shape}{exported}: {_first_line(error)}") from None
        if not isinstance(output, torch.Tensor):
            kind = f"a {type(output).__name__} of {len(output)}" if isinstance(output, (tuple, list)) else f"a {type(output).__name__}"
            raise UserError(f"{program.name} gives {kind} for images of shape {shape}; the lab needs one tensor of logits [N, {dataset.num_classes}]")
        if list(output.shape) != [batch, dataset.num_classes] or not output.is_floating_point():
            raise UserError(
                f"{program.name} gives outputs of shape {list(output.shape)} ({output.dtype}) for images of shape {shape}; "
                f"{dataset.name} has {dataset.num_classes} classes, so it must give float logits [N, {dataset.num_classes}]"
            )


def program_logits(module: nn.Module, dataset: Dataset) -> torch.Tensor:
    with torch.no_grad():
        return predict_logits(module, dataset, dataset.test, CPU)


def agreement(predictions: np.ndarray | torch.Tensor, reference: torch.Tensor) -> float:
    predictions = torch.as_tensor(np.asarray(predictions))
    return float((predictions == reference).float().mean()) if len(reference) else 0.0


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"[:300]


# ------------------------------------------------------------------------------------ static int8


def static_int8(program: ProgramFile, dataset: Dataset, fp32_predictions: torch.Tensor, calibration_size: int = DEFAULT_CALIBRATION_IMAGES, seed: int = 0) -> tuple[dict, nn.Module]:
    """The program quantized by torchao's PT2E (X86InductorQuantizer, its default config), and its figures."""
    from core.quantization.apply import calibration_inputs
    from core.quantization.pt2e import activation_quant_max, calibrate, convert, read_converted, x86_quantizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    module = program.module()
    split_reused_call_sites(module)  # core.quantization.pt2e: no class, so weights are looked up in the program's module
    float_layers = sum(1 for node in module.graph.nodes if node.op == "call_function" and _aten_name(node.target) in _CONV_LINEAR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = prepare_pt2e(module, x86_quantizer("histogram"))
    except Exception as error:  # the quantizer's pattern matching on a graph it was not written for
        raise UserError(f"{program.name}: torchao's PT2E cannot prepare this program for static int8 ({_first_line(error)})") from None
    allow_exported_model_train_eval(prepared)
    inputs = calibration_inputs(dataset, calibration_size, seed)
    calibrate(prepared, inputs)
    converted = convert(prepared)
    contents = read_converted(converted)
    logits = program_logits(converted, dataset)
    int8_bytes = sum(w.codes.numel() * w.codes.element_size() + w.scale.numel() * 4 for w in contents.weights.values())
    float_bytes = sum(t.numel() * t.element_size() for t in contents.float_tensors.values())
    return {
        "method": "torchao prepare_pt2e/convert_pt2e with X86InductorQuantizer (get_default_x86_inductor_quantization_config), on the program's module",
        "accuracy": evaluation_from_logits(logits, dataset.test.labels, dataset.num_classes).accuracy,
        "agreement_with_fp32": agreement(logits.argmax(1), fp32_predictions),
        "calibration_images": len(inputs),
        "observer": "histogram",
        "int8_layers": len(contents.weights),
        "conv_linear_layers": float_layers,
        "activations_quantized": len(contents.activation_qparams),
        "activation_quant_max": activation_quant_max(),
        "weights": "int8 per output channel, symmetric",
        "size_bytes": int8_bytes + float_bytes,
        "size_measure": "int8 codes + fp32 per-channel scales + tensors left in fp32 (biases, folded norms)",
        "accuracy_note": "measured with the converted reference graph (integer rounding as in the int8 kernels)",
    }, converted


def _aten_name(target) -> str:
    """The name "aten.conv2d.default" for torch.ops.aten.conv2d.default, "" for anything else."""
    return str(target) if isinstance(target, torch._ops.OpOverload) else ""


# ------------------------------------------------------------------------------------ pruning


@torch.no_grad()
def prune_unstructured(program: ProgramFile, dataset: Dataset, fp32_predictions: torch.Tensor, amount: float, scope: str = "layer") -> tuple[dict, nn.Module]:
    """L1 magnitude pruning of every float parameter of two or more dimensions, zeros written in."""
    from torch.nn.utils import prune

    module = program.module()
    targets = [(name, parameter) for name, parameter in module.named_parameters() if parameter.dim() >= 2 and parameter.is_floating_point()]
    if not targets:
        raise UserError(f"{program.name} has no float parameter of two or more dimensions to prune")
    if scope == "global":
        scores = torch.cat([parameter.detach().abs().flatten() for _, parameter in targets])
        masks = prune.L1Unstructured(amount).compute_mask(scores, torch.ones_like(scores)).split([parameter.numel() for _, parameter in targets])
        for (_, parameter), mask in zip(targets, masks):
            parameter.mul_(mask.view_as(parameter))
    else:
        for _, parameter in targets:
            parameter.mul_(prune.L1Unstructured(amount).compute_mask(parameter.detach(), torch.ones_like(parameter)))
    pruned_total = sum(parameter.numel() for _, parameter in targets)
    zeros = sum(int((parameter == 0).sum()) for _, parameter in targets)
    all_parameters = list(module.parameters())
    logits = program_logits(module, dataset)
    return {
        "method": "l1 magnitude, unstructured (torch.nn.utils.prune.L1Unstructured masks written into the weights)",
        "scope": scope,
        "scope_meaning": "the amount of each tensor" if scope == "layer" else "one threshold over all pruned tensors together",
        "amount": amount,
        "tensors": len(targets),
        "tensors_chosen": "every float parameter of 2 or more dimensions (conv and linear weights; biases and norms left)",
        "sparsity": zeros / pruned_total,
        "sparsity_all_parameters": sum(int((p == 0).sum()) for p in all_parameters) / max(1, sum(p.numel() for p in all_parameters)),
        "sparsity_per_tensor": {name: float((parameter == 0).float().mean()) for name, parameter in targets},
        "nonzero_parameters": sum(int((p != 0).sum()) for p in all_parameters),
        "parameters": sum(p.numel() for p in all_parameters),
        "accuracy": evaluation_from_logits(logits, dataset.test.labels, dataset.num_classes).accuracy,
        "agreement_with_fp32": agreement(logits.argmax(1), fp32_predictions),
    }, module


# ------------------------------------------------------------------------------------ ONNX


@dataclass
class ProgramOnnx:
    fp32: bytes
    int8: bytes | None
    figures: dict


def onnx_files(
    program: ProgramFile, dataset: Dataset, fp32_predictions: torch.Tensor, with_int8: bool, calibration_size: int = DEFAULT_CALIBRATION_IMAGES, seed: int = 0, progress: ProgressCallback = no_progress
) -> ProgramOnnx:
    """The fp32 program as a checked ONNX file (refused below ONNX_AGREEMENT_MIN agreement), and its int8 twin when asked."""
    from core.deploy.onnx_files import check_onnx, float_onnx, ort_logits, static_int8_onnx, with_metadata
    from core.quantization.apply import calibration_inputs
    from core.quantization.pt2e import cpu_has_vnni

    threads = torch.get_num_threads()
    images = dataset.normalize(dataset.test.images).numpy()
    labels = dataset.test.labels.numpy()
    shape = tuple(dataset.test.images.shape[1:])
    progress(Progress("onnx", 0, 2 if with_int8 else 1, "exporting the program to ONNX (torch.onnx dynamo exporter)"))
    try:
        fp32 = float_onnx(_PlainModule(program.module()), dataset.normalize(dataset.test.images[:1]))
    except Exception as error:  # the exporter's many failure types for graphs it cannot translate
        raise UserError(f"{program.name}: torch's ONNX exporter cannot export this program ({_first_line(error)})") from None
    check_onnx(fp32, shape, dataset.num_classes)
    predictions = ort_logits(fp32, images, threads).argmax(1)
    fp32_agreement = agreement(predictions, fp32_predictions)
    if fp32_agreement < ONNX_AGREEMENT_MIN:
        raise UserError(
            f"{program.name}'s ONNX file agrees with the program's own predictions on only {fp32_agreement:.2%} of the {len(labels)} test images "
            f"(at least {ONNX_AGREEMENT_MIN:.0%} needed); it is not written"
        )
    metadata = _metadata(program, dataset)
    figures = {
        "exporter": "torch.onnx.export(dynamo=True) of the program's module, opset 18, free batch dimension",
        "checked": "onnx.checker (full check) and ONNX Runtime at batch 1 and 3",
        "fp32": {"accuracy_onnxruntime": float((predictions == labels).mean()), "agreement_with_program": fp32_agreement, "bytes": 0},
    }
    fp32 = with_metadata(fp32, {**metadata, "kind": "fp32", "agreement_with_program": f"{fp32_agreement:.6f}"})
    figures["fp32"]["bytes"] = len(fp32)
    int8 = None
    if with_int8:
        progress(Progress("onnx", 1, 2, "the int8 twin (ONNX Runtime's quantize_static)"))
        calibration = calibration_inputs(dataset, calibration_size, seed)
        int8 = static_int8_onnx(fp32, calibration.numpy(), reduce_range=not cpu_has_vnni())
        check_onnx(int8, shape, dataset.num_classes)
        int8_predictions = ort_logits(int8, images, threads).argmax(1)
        int8_agreement = agreement(int8_predictions, fp32_predictions)
        int8 = with_metadata(int8, {**metadata, "kind": "static int8 (ONNX Runtime quantize_static, QDQ)", "agreement_with_program": f"{int8_agreement:.6f}"})
        figures["int8"] = {
            "method": f"ONNX Runtime quantize_static (QDQ, int8 per-channel weights, uint8 activations), ranges from {len(calibration)} training images",
            "accuracy_onnxruntime": float((int8_predictions == labels).mean()),
            "agreement_with_program": int8_agreement,
            "bytes": len(int8),
        }
    return ProgramOnnx(fp32, int8, figures)


class _PlainModule(nn.Module):
    """The program's module behind a plain nn.Module: float_onnx chains `.cpu().eval()`, and the
    eval() torchao allows on an exported module returns None."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner(images)


def _metadata(program: ProgramFile, dataset: Dataset) -> dict[str, str]:
    import json

    return {
        "lab_source": f"exported program {program.name}",
        "program_sha256": program.sha256,
        "dataset": dataset.name,
        "input": f"float32 [batch, {dataset.channels}, {dataset.image_size}, {dataset.image_size}]: pixels / 255, minus mean, over std, per channel",
        "input_mean": json.dumps(list(dataset.mean)),
        "input_std": json.dumps(list(dataset.std)),
        "class_names": json.dumps(list(dataset.class_names)),
        "test_images": str(len(dataset.test)),
    }


# ------------------------------------------------------------------------------------ runtimes


def measure_program_runtimes(module: nn.Module, onnx: ProgramOnnx, dataset: Dataset, fp32_predictions: torch.Tensor, rounds: int | None = None, progress: ProgressCallback = no_progress) -> dict:
    """The program in torch eager, ONNX Runtime and OpenVINO, fp32 and int8, at the protocol's two
    batch sizes: each runner's accuracy and agreement on the whole test set, then interleaved
    rounds of median_call_ms (each runner keeps its best round's median)."""
    from core.deploy.runtimes import EAGER, EAGER_INT8_REASON, ONNXRUNTIME, OPENVINO, OnnxRuntimeRunner, OpenVinoRunner, RuntimeUnavailable, TorchEagerRunner, machine_summary, runtime_versions

    rounds = latency_rounds() if rounds is None else rounds
    threads = torch.get_num_threads()
    images = dataset.normalize(dataset.test.images).contiguous()
    shape = tuple(images.shape[1:])
    labels = dataset.test.labels.numpy()

    def build(runtime: str, precision: str):
        if runtime == EAGER:
            if precision == "int8":
                raise RuntimeUnavailable(EAGER_INT8_REASON)
            return TorchEagerRunner(copy.deepcopy(module))
        onnx_bytes = onnx.fp32 if precision == "fp32" else onnx.int8
        if onnx_bytes is None:
            raise RuntimeUnavailable("no int8 ONNX file")
        return OnnxRuntimeRunner(onnx_bytes, threads) if runtime == ONNXRUNTIME else OpenVinoRunner(onnx_bytes, threads, shape)

    keys = [(runtime, precision) for runtime in (EAGER, ONNXRUNTIME, OPENVINO) for precision in ("fp32", "int8")]
    runners, reasons, accuracy, agreements = {}, {}, {}, {}
    for index, key in enumerate(keys):
        progress(Progress("runtimes", index, len(keys), f"{key[0]}, {key[1]}: building and checking accuracy"))
        try:
            runner = build(*key)
            predicted = runner.predict(images)
            accuracy[key] = float((predicted == labels).mean())
            agreements[key] = agreement(predicted, fp32_predictions)
            runners[key] = runner
        except RuntimeUnavailable as error:
            reasons[key] = str(error)
    sizes = batch_sizes(images.shape[-1])
    calls = {(key, size): runner.call_for(images[:1].expand(size, *shape).contiguous()) for key, runner in runners.items() for size in sizes}
    best: dict[tuple, float] = {}
    started = time.perf_counter()
    for round_index in range(rounds):
        progress(Progress("timing", round_index, rounds, f"round {round_index + 1} of {rounds}"))
        for size in sizes:
            for key in runners:
                milliseconds, _ = median_call_ms(calls[(key, size)], budget_seconds=latency_budget_seconds())
                best[(key, size)] = min(milliseconds, best.get((key, size), float("inf")))
    rows = []
    for key in keys:
        for size in sizes:
            available = key in runners
            latency = best[(key, size)] if available else None
            rows.append(
                {
                    "runtime": key[0],
                    "precision": key[1],
                    "batch_size": size,
                    "latency_ms": latency,
                    "per_image_ms": None if latency is None else latency / size,
                    "accuracy": accuracy.get(key),
                    "agreement_with_fp32": agreements.get(key),
                    "available": available,
                    "reason": reasons.get(key, ""),
                }
            )
    return {
        "rows": rows,
        "batch_sizes": list(sizes),
        "threads": threads,
        "rounds": rounds,
        "timing": "median_call_ms per runner, batch size and round, best round kept (core.foundation.measures.latency)",
        "timing_seconds": time.perf_counter() - started,
        "int8_source": "ONNX Runtime's quantize_static of the fp32 ONNX file (OpenVINO runs the same QDQ file as int8)",
        "machine": machine_summary(),
        "versions": runtime_versions(),
    }


# ------------------------------------------------------------------------------------ all of it


def run_program(program: ProgramFile, dataset: Dataset, request: ProgramRequest, progress: ProgressCallback = no_progress) -> dict:
    """Every technique `request` asks for, on one program; one dict (the CLI's JSON line)."""
    from core.foundation.workspace import atomic_write_bytes

    request.validate()
    started = time.perf_counter()
    progress(Progress("program", 0, 1, f"checking {program.name} on {dataset.name}'s images"))
    check_program_fits(program, dataset)
    module = program.module()
    logits = program_logits(module, dataset)
    fp32_predictions = logits.argmax(1)
    evaluation = evaluation_from_logits(logits, dataset.test.labels, dataset.num_classes)
    report: dict = {
        "program": program.summary(),
        "dataset": dataset.summary(),
        "normalization": {"method": NORMALIZATION, "mean": list(dataset.mean), "std": list(dataset.std)},
        "device": "cpu",
        "accuracy": evaluation.accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "test_images": len(dataset.test),
        "size_bytes": program.weights_bytes,
        "size_measure": "bytes of the parameters and buffers stored in the .pt2 (raw tensors)",
        "not_possible": PROGRAM_LIMITS,
    }
    if request.quantize == "static":
        progress(Progress("quantize", 0, 1, f"static int8 (PT2E), calibrating on {min(request.calibration_size, len(dataset.train))} training images"))
        report["static_int8"], _ = static_int8(program, dataset, fp32_predictions, request.calibration_size, request.seed)
    if request.prune_amount is not None:
        progress(Progress("prune", 0, 1, f"unstructured L1 pruning, amount {request.prune_amount} ({request.prune_scope})"))
        report["prune"], _ = prune_unstructured(program, dataset, fp32_predictions, request.prune_amount, request.prune_scope)
    if request.onnx is not None or request.onnx_int8 is not None or request.runtimes:
        exported = onnx_files(
            program, dataset, fp32_predictions, with_int8=request.onnx_int8 is not None or request.runtimes, calibration_size=request.calibration_size, seed=request.seed, progress=progress
        )
        if request.onnx is not None:
            atomic_write_bytes(Path(request.onnx), exported.fp32)
            exported.figures["fp32"]["path"] = str(request.onnx)
        if request.onnx_int8 is not None and exported.int8 is not None:
            atomic_write_bytes(Path(request.onnx_int8), exported.int8)
            exported.figures["int8"]["path"] = str(request.onnx_int8)
        report["onnx"] = exported.figures
        if request.runtimes:
            report["runtimes"] = measure_program_runtimes(module, exported, dataset, fp32_predictions, request.rounds, progress)
    report["seconds"] = time.perf_counter() - started
    return report

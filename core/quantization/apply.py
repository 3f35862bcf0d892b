"""quantize_model(model, dataset, config): the one verb on a bare model (core.quantization.run wraps it into the technique contract). Returns the quantized (or simulated) model and a
report with accuracy before and after, honest size, which layers were quantized and each layer's
weight error. All modes run on the CPU, where the int8 kernels are.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from core.foundation.baseline.trained import TrainingStopped
from core.foundation.data.datasets import Dataset, ImageSplit, class_balanced_subset
from core.foundation.measures.metrics import effective_tensors, state_dict_size_bytes
from core.foundation.progress import Progress, ProgressCallback, StopFlag, no_progress
from core.foundation.training.loop import EpochRecord, TrainRecipe, evaluate, evaluation_from_logits, predict_logits, train_model
from core.quantization import dynamic, pt2e
from core.quantization.config import DynamicInt8Config, QATConfig, QuantizationConfig, SimulateConfig, StaticInt8Config
from core.quantization.fake_quant import (
    ActivationFakeQuant,
    QuantizedTensor,
    QuantSpec,
    WeightFakeQuant,
    attach_activation_quantizers,
    calibrate_activations,
    fake_quantize,
    quantizable_layers,
    quantize_tensor,
)
from core.quantization.size import SizeReport, TensorStorage, float_storage, size_report

CPU = torch.device("cpu")


@dataclass
class LayerReport:
    name: str
    kind: str  # "conv" or "linear"
    quantized: bool
    weight_numel: int
    bits: int | None  # None: left in fp32
    scheme: str  # e.g. "8-bit per-channel symmetric", or "fp32"
    mse: float | None  # mean squared error of the dequantized weight vs the fp32 weight it came from
    sqnr_db: float | None  # signal-to-quantization-noise ratio of the weight, in dB


@dataclass
class QuantizationReport:
    mode: str
    config: dict
    method: str  # which library path produced the model, in words
    simulated: bool  # True: fp32 model computing with fake-quantized values (no integer kernels)
    accuracy_before: float
    accuracy_after: float
    eval_images: int
    size_bytes_before: int  # fp32 deployed bytes (4 per parameter and buffer value)
    artifact_bytes_before: int  # the fp32 safetensors file (core.foundation.measures.metrics.state_dict_size_bytes)
    size: SizeReport  # after quantization
    quantized_layers: list[str]
    fp32_layers: list[str]
    layers: list[LayerReport]
    activations_quantized: str  # "no", "static (calibrated)", "dynamic (at run time)", "trained ranges"
    notes: list[str]
    quantize_seconds: float
    post_training_accuracy: float | None = None  # QAT only: post-training quantization at the same setting
    train_history: list[EpochRecord] = field(default_factory=list)

    @property
    def size_bytes_after(self) -> int:
        return self.size.deployed_bytes

    @property
    def compression_ratio(self) -> float:
        return self.size_bytes_before / self.size_bytes_after

    @property
    def error_per_layer(self) -> dict[str, dict]:
        return {layer.name: {"mse": layer.mse, "sqnr_db": layer.sqnr_db} for layer in self.layers if layer.quantized}

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "size_bytes_after": self.size_bytes_after,
            "compression_ratio": self.compression_ratio,
            "error_per_layer": self.error_per_layer,
        }


@dataclass
class QuantizationResult:
    model: nn.Module  # what computes the quantized outputs (a PT2E graph, a torchao model, or fp32 with fake-quantized weights)
    report: QuantizationReport
    reference_weights: dict[str, torch.Tensor]  # the fp32 weight each quantized layer was quantized from
    quantized_weights: dict[str, QuantizedTensor]  # its integer codes, scales and zero points
    artifact_tensors: dict[str, torch.Tensor]  # what the saved safetensors file holds


def weight_error(reference: torch.Tensor, dequantized: torch.Tensor) -> tuple[float, float]:
    """(MSE, SQNR in dB) of a dequantized weight against its fp32 original."""
    noise = (reference.float() - dequantized.float()).pow(2)
    signal_power, noise_power = float(reference.float().pow(2).sum()), float(noise.sum())
    sqnr = math.inf if noise_power == 0 else 10.0 * math.log10(max(signal_power, 1e-30) / noise_power)
    return float(noise.mean()), sqnr


class _ChannelsLastInput(nn.Module):
    """Feeds a model channels-last images: oneDNN's CPU convolutions run about twice as fast so,
    which keeps the simulate mode's re-render near a second on CIFAR-10."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def simulated_accuracy(model: nn.Module, dataset: Dataset, split: ImageSplit) -> float:
    """Accuracy of an eager (fp32 or fake-quantized) model on `split`, evaluated channels-last in
    batches of 250 (measured faster than 1,000 on a 2-core CPU: the activations stay in cache)."""
    logits = predict_logits(_ChannelsLastInput(model), dataset, split, CPU, batch_size=250)
    return evaluation_from_logits(logits, split.labels, dataset.num_classes).accuracy


def calibration_inputs(dataset: Dataset, size: int, seed: int = 0) -> torch.Tensor:
    """A class-balanced set of `size` training images, standardised, for observers to watch."""
    subset = class_balanced_subset(dataset.train, min(size, len(dataset.train)), dataset.num_classes, seed, "train")
    return dataset.normalize(subset.images)


def quantize_model(
    model: nn.Module,
    dataset: Dataset,
    config: QuantizationConfig,
    eval_split: ImageSplit | None = None,
    base_recipe: TrainRecipe | None = None,
    progress: ProgressCallback = no_progress,
    stop: StopFlag | None = None,
    seed: int = 0,
    accuracy_before: float | None = None,
) -> QuantizationResult:
    """Quantize a copy of `model` as `config` says; `model` itself is not changed.

    `eval_split` (default: the test split) is what both accuracies are measured on; pass
    `accuracy_before` when it is already known for that split. `base_recipe` is the baseline's
    training recipe, which QAT fine-tunes with at a tenth of its learning rate."""
    config.validate()
    started = time.perf_counter()
    eval_split = eval_split if eval_split is not None else dataset.test
    fp32 = copy.deepcopy(model).to(CPU).eval()
    if accuracy_before is None:
        accuracy_before = evaluate(fp32, dataset, eval_split, CPU).accuracy
    if isinstance(config, SimulateConfig):
        result = _simulate(fp32, dataset, config, eval_split, seed)
    elif isinstance(config, DynamicInt8Config):
        result = _dynamic(fp32, dataset, eval_split)
    elif isinstance(config, StaticInt8Config):
        result = _static(fp32, dataset, config, eval_split, seed)
    elif isinstance(config, QATConfig):
        result = _qat(fp32, dataset, config, eval_split, base_recipe, progress, stop, seed)
    else:
        raise TypeError(f"not a quantization config: {config!r}")
    result.report.accuracy_before = accuracy_before
    result.report.quantize_seconds = time.perf_counter() - started
    return result


# ---- building blocks shared by the modes ----------------------------------------------------


def _layer_kind(layer: nn.Module) -> str:
    return "conv" if isinstance(layer, nn.Conv2d) else "linear"


def _layer_reports(fp32: nn.Module, quantized: dict[str, QuantizedTensor], references: dict[str, torch.Tensor]) -> list[LayerReport]:
    reports = []
    for name, layer in quantizable_layers(fp32).items():
        if name not in quantized:
            reports.append(LayerReport(name, _layer_kind(layer), False, layer.weight.numel(), None, "fp32", None, None))
            continue
        weight = quantized[name]
        mse, sqnr = weight_error(references[name], weight.dequantize()) if name in references else (None, None)
        reports.append(LayerReport(name, _layer_kind(layer), True, layer.weight.numel(), weight.spec.bits, weight.spec.describe(), mse, sqnr))
    return reports


def _weight_storage(name: str, weight: QuantizedTensor) -> TensorStorage:
    zero_points = 0 if weight.spec.symmetric else weight.zero_point.numel()
    return TensorStorage(name, weight.codes.numel(), weight.spec.bits, weight.scale.numel(), zero_points, quantized=True)


def _weight_artifact(name: str, weight: QuantizedTensor) -> dict[str, torch.Tensor]:
    tensors = {f"{name}.codes": weight.codes, f"{name}.scale": weight.scale.float()}
    if not weight.spec.symmetric:
        tensors[f"{name}.zero_point"] = weight.zero_point.to(torch.int32)
    return tensors


def _module_accounting(fp32: nn.Module, quantized: dict[str, QuantizedTensor], activation_qparams: dict[str, tuple[float, int]]) -> tuple[list[TensorStorage], dict[str, torch.Tensor]]:
    """Storage and artifact for an eager model: quantized layer weights as codes, all else as is."""
    weight_names = {f"{layer}.weight": layer for layer in quantized}
    storages, artifact = [], {}
    for name, tensor in effective_tensors(fp32).items():
        if name in weight_names:
            storages.append(_weight_storage(name, quantized[weight_names[name]]))
            artifact.update(_weight_artifact(name, quantized[weight_names[name]]))
        else:
            storages.append(float_storage(name, tensor))
            artifact[name] = tensor
    _add_activations(storages, artifact, activation_qparams)
    return storages, artifact


def _add_activations(storages: list[TensorStorage], artifact: dict[str, torch.Tensor], activation_qparams: dict[str, tuple[float, int]]) -> None:
    """Each quantized activation stores one fp32 scale and one int32 zero point (affine uint8)."""
    for name, (scale, zero_point) in activation_qparams.items():
        storages.append(TensorStorage(f"{name}.input", 0, 8, scales=1, zero_points=1, quantized=True))
        artifact[f"{name}.input_scale"] = torch.tensor([scale], dtype=torch.float32)
        artifact[f"{name}.input_zero_point"] = torch.tensor([zero_point], dtype=torch.int32)


def _result(
    model: nn.Module,
    fp32: nn.Module,
    eval_split: ImageSplit,
    accuracy_after: float,
    accounting: tuple[list[TensorStorage], dict[str, torch.Tensor]],
    quantized: dict[str, QuantizedTensor],
    references: dict[str, torch.Tensor],
    *,
    mode: str,
    config: dict,
    method: str,
    simulated: bool,
    activations: str,
    notes: list[str],
    **extra,
) -> QuantizationResult:
    """What every mode returns: `model` (quantized from `fp32`, `accuracy_after` on `eval_split`)
    with its report. `accounting` is (storages, artifact), what the model stores; `quantized` and
    `references` are each quantized layer's integer codes and the fp32 weight they came from."""
    storages, artifact = accounting
    layers = _layer_reports(fp32, quantized, references)
    report = QuantizationReport(
        mode=mode,
        config=config,
        method=method,
        simulated=simulated,
        accuracy_before=float("nan"),
        accuracy_after=accuracy_after,
        eval_images=len(eval_split),
        size_bytes_before=sum(float_storage(n, t).total_bytes for n, t in effective_tensors(fp32).items()),
        artifact_bytes_before=state_dict_size_bytes(fp32),
        size=size_report(storages, artifact),
        quantized_layers=[layer.name for layer in layers if layer.quantized],
        fp32_layers=[layer.name for layer in layers if not layer.quantized],
        layers=layers,
        activations_quantized=activations,
        notes=notes,
        quantize_seconds=0.0,
        **extra,
    )
    return QuantizationResult(model, report, references, quantized, artifact)


def fake_quantize_weights(model: nn.Module, spec: QuantSpec) -> tuple[dict[str, torch.Tensor], dict[str, QuantizedTensor]]:
    """Replace every conv/linear weight of `model` in place by its fake-quantized value (torch's
    fake-quantize op); return the fp32 originals and the integer codes a deployed model stores."""
    references, quantized = {}, {}
    with torch.no_grad():
        for name, layer in quantizable_layers(model).items():
            references[name] = layer.weight.detach().clone()
            quantized[name] = quantize_tensor(references[name], spec)
            layer.weight.copy_(fake_quantize(references[name], spec))
    return references, quantized


def _activation_qparams(quantizers: dict[str, ActivationFakeQuant]) -> dict[str, tuple[float, int]]:
    params = {}
    for name, quantizer in quantizers.items():
        scale, zero_point = quantizer.qparams()
        params[name] = (float(scale), int(zero_point))
    return params


# ---- the four modes -----------------------------------------------------------------------------


def _simulate(fp32: nn.Module, dataset: Dataset, config: SimulateConfig, eval_split: ImageSplit, seed: int) -> QuantizationResult:
    simulated = copy.deepcopy(fp32)
    references, quantized = fake_quantize_weights(simulated, config.weight_spec)
    quantizers = {}
    if config.activations:
        quantizers = attach_activation_quantizers(simulated, config.bits)
        calibrate_activations(simulated, quantizers, calibration_inputs(dataset, config.calibration_size, seed))
    accuracy = simulated_accuracy(simulated, dataset, eval_split)
    notes = [
        f"Simulated: weights rounded to {config.weight_spec.describe()} levels with torch's fake-quantize ops; the model still computes in fp32, so it is no faster.",
        f"Size counts the values packed at {config.bits} bits, as a deployed low-bit model would store them.",
    ]
    if config.activations:
        notes.append(f"Each conv/linear input is fake-quantized to {config.bits}-bit per-tensor affine, with ranges from {min(config.calibration_size, len(dataset.train))} training images.")
    return _result(
        simulated,
        fp32,
        eval_split,
        accuracy,
        _module_accounting(fp32, quantized, _activation_qparams(quantizers)),
        quantized,
        references,
        mode="simulate",
        config=config.as_dict(),
        method="torch.fake_quantize_per_channel_affine / per_tensor_affine",
        simulated=True,
        activations="static (calibrated)" if config.activations else "no",
        notes=notes,
    )


def _dynamic(fp32: nn.Module, dataset: Dataset, eval_split: ImageSplit) -> QuantizationResult:
    model = dynamic.quantize_linears_dynamic(fp32)
    quantized = dynamic.dynamic_weights(model)
    references = {name: layer.weight.detach().clone() for name, layer in quantizable_layers(fp32).items() if name in quantized}
    accuracy = evaluate(model, dataset, eval_split, CPU).accuracy
    convs = [name for name, layer in quantizable_layers(fp32).items() if isinstance(layer, nn.Conv2d)]
    notes = (
        [
            f"Only Linear layers are quantized (int8 weights, activations quantized at run time). Dynamic quantization has no convolution kernel, so {', '.join(convs) or 'no convolution'} stay{'s' if len(convs) == 1 else ''} fp32."
        ]
        if convs
        else ["Only Linear layers are quantized (int8 weights, activations quantized at run time)."]
    )
    return _result(
        model,
        fp32,
        eval_split,
        accuracy,
        _module_accounting(fp32, quantized, {}),
        quantized,
        references,
        mode="dynamic",
        config=DynamicInt8Config().as_dict(),
        method="torchao quantize_(Int8DynamicActivationInt8WeightConfig), Linear only",
        simulated=False,
        activations="dynamic (at run time)",
        notes=notes,
    )


def _converted_accounting(converted: pt2e.ConvertedGraph) -> tuple[list[TensorStorage], dict[str, torch.Tensor]]:
    storages, artifact = [], {}
    for layer, weight in converted.weights.items():
        storages.append(_weight_storage(f"{layer}.weight", weight))
        artifact.update(_weight_artifact(f"{layer}.weight", weight))
    for name, tensor in converted.float_tensors.items():
        storages.append(float_storage(name, tensor))
        artifact[name] = tensor
    _add_activations(storages, artifact, converted.activation_qparams)
    return storages, artifact


def _finish_pt2e(mode: str, config: dict, fp32: nn.Module, dataset: Dataset, eval_split: ImageSplit, prepared, notes: list[str], method: str, **extra) -> QuantizationResult:
    references = pt2e.prepared_float_weights(prepared)
    converted = pt2e.convert(prepared)
    contents = pt2e.read_converted(converted)
    pt2e.assert_all_layers_quantized(contents, fp32)
    accuracy = evaluate(converted, dataset, eval_split, CPU).accuracy
    notes = notes + [
        f"All {len(contents.weights)} convolution and linear layers hold int8 weights (per-channel symmetric); {len(contents.activation_qparams)} activations are quantized to uint8 with calibrated scales.",
        "Accuracy is measured with the converted reference graph (integer rounding as in the int8 kernels); the speed comes from compiling it (Real latency).",
    ]
    if contents.activation_quant_max == 127:
        notes.append("This CPU has no VNNI, so activations use 7 bits (0..127), as the x86 backend advises: its int8 kernels would otherwise saturate int16 sums.")
    return _result(
        converted,
        fp32,
        eval_split,
        accuracy,
        _converted_accounting(contents),
        contents.weights,
        references,
        mode=mode,
        config=config,
        method=method,
        simulated=False,
        activations="static (calibrated)" if mode == "static" else "trained ranges",
        notes=notes,
        **extra,
    )


def _static(fp32: nn.Module, dataset: Dataset, config: StaticInt8Config, eval_split: ImageSplit, seed: int) -> QuantizationResult:
    example = dataset.normalize(eval_split.images[:1])
    prepared = pt2e.prepare_static(fp32, example, config.observer)
    inputs = calibration_inputs(dataset, config.calibration_size, seed)
    pt2e.calibrate(prepared, inputs)
    notes = [f"Activation ranges calibrated on {len(inputs)} training images with the {config.observer} observer."]
    return _finish_pt2e("static", config.as_dict(), fp32, dataset, eval_split, prepared, notes, "torch.export + torchao prepare_pt2e/convert_pt2e with X86InductorQuantizer")


def _qat_recipe(config: QATConfig, base: TrainRecipe | None) -> TrainRecipe:
    base = base or TrainRecipe(epochs=config.epochs)
    learning_rate = config.learning_rate or base.learning_rate / 10
    return dataclasses.replace(base, epochs=config.epochs, learning_rate=learning_rate)


def _train(model: nn.Module, dataset: Dataset, eval_split: ImageSplit, recipe: TrainRecipe, progress: ProgressCallback, stop: StopFlag | None, seed: int) -> list[EpochRecord]:
    result = train_model(model, dataclasses.replace(dataset, test=eval_split), recipe, CPU, seed, progress, stop, stage="qat")
    if result.stopped:
        raise TrainingStopped(f"QAT stopped after {len(result.history)} of {recipe.epochs} epochs; nothing was saved")
    return result.history


def _qat(
    fp32: nn.Module, dataset: Dataset, config: QATConfig, eval_split: ImageSplit, base_recipe: TrainRecipe | None, progress: ProgressCallback, stop: StopFlag | None, seed: int
) -> QuantizationResult:
    recipe = _qat_recipe(config, base_recipe)
    if config.converts_to_int8:
        progress(Progress("qat", 0, 1, "post-training int8 for comparison"))
        ptq = _static(fp32, dataset, StaticInt8Config(calibration_size=config.calibration_size), eval_split, seed)
        prepared = pt2e.prepare_qat(copy.deepcopy(fp32), dataset.normalize(eval_split.images[:1]))
        history = _train(prepared, dataset, eval_split, recipe, progress, stop, seed)
        notes = [f"Fine-tuned {config.epochs} epoch(s) with the backend's fake quantization (prepare_qat_pt2e), then converted to the real int8 model (convert_pt2e)."]
        return _finish_pt2e(
            "qat",
            config.as_dict(),
            fp32,
            dataset,
            eval_split,
            prepared,
            notes,
            "torch.export + torchao prepare_qat_pt2e/convert_pt2e with X86InductorQuantizer",
            post_training_accuracy=ptq.report.accuracy_after,
            train_history=history,
        )

    simulate = SimulateConfig(config.bits, config.per_channel, config.symmetric, config.activations, config.calibration_size)
    progress(Progress("qat", 0, 1, f"post-training {config.bits}-bit for comparison"))
    ptq_accuracy = _simulate(fp32, dataset, simulate, eval_split, seed).report.accuracy_after
    trained = copy.deepcopy(fp32)
    quantizers = {}
    if config.activations:
        quantizers = attach_activation_quantizers(trained, config.bits)
        calibrate_activations(trained, quantizers, calibration_inputs(dataset, config.calibration_size, seed))
        for quantizer in quantizers.values():
            quantizer.observing = True  # ranges keep following the weights as they train
    for layer in quantizable_layers(trained).values():
        parametrize.register_parametrization(layer, "weight", WeightFakeQuant(config.weight_spec))
    history = _train(trained, dataset, eval_split, recipe, progress, stop, seed)
    for layer in quantizable_layers(trained).values():
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    for quantizer in quantizers.values():
        quantizer.observing = False
    references, quantized = fake_quantize_weights(trained, config.weight_spec)
    accuracy = simulated_accuracy(trained, dataset, eval_split)
    notes = [
        f"Fine-tuned {config.epochs} epoch(s) with {config.weight_spec.describe()} fake-quantized weights{' and inputs' if config.activations else ''} (straight-through gradients).",
        f"No CPU kernel runs {config.bits}-bit weights, so the result stays simulated (fp32 compute, no speed-up); its size is the packed {config.bits}-bit storage a low-bit runtime would load.",
    ]
    return _result(
        trained,
        fp32,
        eval_split,
        accuracy,
        _module_accounting(fp32, quantized, _activation_qparams(quantizers)),
        quantized,
        references,
        mode="qat",
        config=config.as_dict(),
        method="fake-quantize parametrization + core.foundation.training.loop.train_model",
        simulated=True,
        activations="trained ranges" if config.activations else "no",
        notes=notes,
        post_training_accuracy=ptq_accuracy,
        train_history=history,
    )


# ---- sweeps for the charts -----------------------------------------------------------------------


def accuracy_by_bits(
    model: nn.Module,
    dataset: Dataset,
    eval_split: ImageSplit,
    per_channel: bool = True,
    symmetric: bool = True,
    activations: bool = False,
    calibration_size: int = 512,
    bits: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2),
) -> dict[int, float]:
    """Post-training (simulated) accuracy at each bit width: the curve QAT is compared against."""
    fp32 = copy.deepcopy(model).to(CPU).eval()
    return {b: _simulate(fp32, dataset, SimulateConfig(b, per_channel, symmetric, activations, calibration_size), eval_split, 0).report.accuracy_after for b in bits}


@dataclass
class GranularityError:
    layer: str
    per_tensor_mse: float
    per_channel_mse: float
    per_tensor_sqnr_db: float
    per_channel_sqnr_db: float


def error_by_granularity(model: nn.Module, bits: int, symmetric: bool = True) -> list[GranularityError]:
    """Each layer's weight error at `bits`, with one scale per tensor versus one per output channel."""
    rows = []
    for name, layer in quantizable_layers(model).items():
        weight = layer.weight.detach().cpu()
        tensor_mse, tensor_sqnr = weight_error(weight, fake_quantize(weight, QuantSpec(bits, False, symmetric)))
        channel_mse, channel_sqnr = weight_error(weight, fake_quantize(weight, QuantSpec(bits, True, symmetric)))
        rows.append(GranularityError(name, tensor_mse, channel_mse, tensor_sqnr, channel_sqnr))
    return rows

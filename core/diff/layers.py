"""Where the error enters, layer by layer (as ONNX Runtime's qdq_loss_debug and AIMET show it).

The reference model (the source) and the model under study run the same fixed batch of test
images; every convolution's and linear layer's output is captured in network order and compared:
relative error ||b - a|| / ||a|| and SQNR 10 log10(||a||^2 / ||b - a||^2) in dB. A layer whose
channels were physically removed is compared in the full architecture's channel positions (a
removed channel counts as an output of zero), so a class sees the error that removal causes.

For a quantized model the same is measured twice: with its weights quantized only, and with
weights and each layer's input quantized, which shows how much the activations add.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from core.contract.artifact import ModelPackage
from core.foundation.data.datasets import Dataset, class_balanced_subset
from core.foundation.errors import UserError

LAYER_BATCH_IMAGES = 256  # class-balanced test images, the same for every comparison
LAYER_BATCH_SEED = 0
MAX_SQNR_DB = 200.0  # an identical output has infinite SQNR; JSON and charts get this cap instead


@dataclass
class LayerError:
    layer: str  # module name, as in the architecture
    kind: str  # "conv" or "linear"
    relative_error: float
    sqnr_db: float
    weights_only_relative_error: float | None = None  # quantized models: weights quantized, inputs in fp32
    weights_only_sqnr_db: float | None = None


@dataclass
class LayerErrorReport:
    reference_label: str
    model_label: str
    images: int
    layers: list[LayerError]
    note: str = ""  # one sentence on what was compared

    @property
    def has_weights_only(self) -> bool:
        return any(layer.weights_only_relative_error is not None for layer in self.layers)

    def as_dict(self) -> dict:
        return {"reference": self.reference_label, "model": self.model_label, "images": self.images, "note": self.note, "layers": [dataclasses.asdict(layer) for layer in self.layers]}


def layer_batch(dataset: Dataset, images: int = LAYER_BATCH_IMAGES) -> torch.Tensor:
    """The fixed batch every layer comparison runs: class-balanced test images, standardised."""
    split = class_balanced_subset(dataset.test, min(images, len(dataset.test)), dataset.num_classes, LAYER_BATCH_SEED, "test")
    return dataset.normalize(split.images)


@torch.no_grad()
def layer_outputs(model: nn.Module, inputs: torch.Tensor, removed: dict[str, list[int]] | None = None, full_widths: dict[str, int] | None = None) -> dict[str, torch.Tensor]:
    """Each conv/linear layer's output, in the order the forward pass reaches them; a layer with
    removed channels is widened back to `full_widths` with zeros where its channels were."""
    removed, full_widths = removed or {}, full_widths or {}
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(lambda module, args, output, name=name: outputs.setdefault(name, output.detach().float().cpu())))
    try:
        model.eval()
        device = next((parameter.device for parameter in model.parameters()), torch.device("cpu"))
        model(inputs.to(device))
    finally:
        for handle in handles:
            handle.remove()
    return {name: _widen(output, removed.get(name, []), full_widths.get(name, output.shape[1])) for name, output in outputs.items()}


def _widen(output: torch.Tensor, removed: list[int], width: int) -> torch.Tensor:
    if output.shape[1] == width:
        return output
    kept = [index for index in range(width) if index not in set(removed)]
    if len(kept) != output.shape[1]:
        raise UserError(f"a layer has {output.shape[1]} channels, but its record leaves {len(kept)} of {width}")
    full = output.new_zeros((output.shape[0], width, *output.shape[2:]))
    full[:, kept] = output
    return full


def output_error(reference: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
    """(relative error, SQNR in dB) of `other` against `reference`."""
    signal = float(reference.double().pow(2).sum())
    noise = float((other.double() - reference.double()).pow(2).sum())
    relative = math.sqrt(noise / signal) if signal > 0 else (0.0 if noise == 0 else math.inf)
    sqnr = MAX_SQNR_DB if noise == 0 else min(MAX_SQNR_DB, 10 * math.log10(signal / noise)) if signal > 0 else -MAX_SQNR_DB
    return relative, sqnr


def full_widths(architecture_model: nn.Module) -> dict[str, int]:
    """Output channels (or features) of each conv/linear layer in the unpruned architecture."""
    return {name: module.out_channels if isinstance(module, nn.Conv2d) else module.out_features for name, module in architecture_model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}


def compare_layers(
    reference: nn.Module,
    model: nn.Module,
    inputs: torch.Tensor,
    widths: dict[str, int],
    reference_removed: dict[str, list[int]] | None = None,
    model_removed: dict[str, list[int]] | None = None,
    weights_only: nn.Module | None = None,
    reference_label: str = "source",
    model_label: str = "model",
    note: str = "",
) -> LayerErrorReport:
    """The error of every layer of `model` (and of `weights_only`, its weights-only twin) against `reference`."""
    expected = layer_outputs(reference, inputs, reference_removed, widths)
    observed = layer_outputs(model, inputs, model_removed, widths)
    twin = layer_outputs(weights_only, inputs, model_removed, widths) if weights_only is not None else {}
    kinds = {name: "conv" if isinstance(module, nn.Conv2d) else "linear" for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}
    layers = []
    for name, output in expected.items():
        if name not in observed:
            continue
        if observed[name].shape != output.shape:
            raise UserError(f"layer {name} gives {list(observed[name].shape)} in {model_label} but {list(output.shape)} in {reference_label}: not the same architecture")
        relative, sqnr = output_error(output, observed[name])
        layer = LayerError(name, kinds.get(name, "conv"), relative, sqnr)
        if name in twin:
            layer.weights_only_relative_error, layer.weights_only_sqnr_db = output_error(output, twin[name])
        layers.append(layer)
    return LayerErrorReport(reference_label, model_label, int(inputs.shape[0]), layers, note)


def compare_packages(reference: ModelPackage, model: ModelPackage, dataset: Dataset, reference_label: str, model_label: str) -> LayerErrorReport:
    """Layer errors of one saved model against another of the same architecture: a quantized
    package also gets its weights-only twin (the same codes, fp32 inputs)."""
    if reference.architecture != model.architecture:
        raise UserError(f"{model_label} is a {model.architecture} and {reference_label} a {reference.architecture}: layer by layer, only the same architecture compares")
    from core.foundation.models.registry import build_model

    widths = full_widths(build_model(model.architecture, dataset.channels, dataset.image_size, dataset.num_classes))
    weights_only = dataclasses.replace(model, activation_quant={}).build_model() if model.activation_quant else None
    if weights_only is not None:
        detail = "; weights only: the integer codes in the weights, every layer's input left in fp32."
    elif model.quantized_weights:
        detail = "; its layer inputs are not quantized, so the weights are the whole error."
    else:
        detail = "."
    note = f"Output of every convolution and linear layer of {model_label} against {reference_label} on {min(LAYER_BATCH_IMAGES, len(dataset.test))} test images{detail}"
    return compare_layers(
        reference.build_model(), model.build_model(), layer_batch(dataset), widths, reference.pruned_channels, model.pruned_channels, weights_only, reference_label, model_label, note
    )

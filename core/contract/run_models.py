"""The model a recorded run produced, read back from its artifact, as a package for the model zip."""

from __future__ import annotations

import copy
import json
from dataclasses import fields

import torch
from torch import nn

from core.contract.artifact import ActivationQuant, ModelPackage, QuantizedWeight, package_from_model, read_model_zip
from core.contract.folded import express_folded_batch_norms, folded_biases
from core.contract.run_summary import summarize
from core.foundation import history
from core.foundation.data.datasets import Dataset, DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.models.registry import build_model
from core.foundation.training.loop import TrainRecipe, classroom_recipe
from core.foundation.workspace import META_FILE, Workspace, load_checkpoint


def package_for_run(run: RunRecord, workspace: Workspace, dataset: Dataset | None = None) -> ModelPackage:
    """Rebuild the run's final model from its saved artifact (a checkpoint folder or a model zip)."""
    path = workspace.resolve_artifact(run.artifact_path)
    if path is None or not path.exists():
        raise UserError(f"run #{run.id} ({run.technique}) has no saved model at {path or 'any path'}; it may have been deleted")
    if path.is_file() and path.suffix == ".zip":
        return read_model_zip(path.read_bytes(), path.name)
    loaded = load_checkpoint(path)
    if loaded is None:
        raise UserError(f"run #{run.id}: {path} holds no complete checkpoint (missing or changed files)")
    state_dict, meta = loaded
    dataset = dataset or dataset_for_run(run, workspace)
    summary = summarize(run)
    info = {
        "run_id": run.id,
        "technique": run.technique,
        "accuracy": summary.accuracy,
        "eval_images": summary.eval_images or len(dataset.test),
        "params": run.params,
    }
    architecture = meta.get("architecture")
    if meta.get("technique") == "prune":
        from core.contract.pruned_artifact import load_pruned_model

        model = load_pruned_model(path)
        removed = meta.get("pruned_channels", {}) if meta.get("channels_removed") else {}
        return package_from_model(model, architecture, dataset, info, removed)
    if architecture is None:
        raise UserError(f"run #{run.id}: {path / META_FILE} does not say which architecture its weights belong to")
    model = build_model(architecture, dataset.channels, dataset.image_size, dataset.num_classes)
    model.load_state_dict(state_dict)
    return package_from_model(model.eval(), architecture, dataset, info)


def dataset_for_run(run: RunRecord, workspace: Workspace) -> Dataset:
    """The dataset the run's lineage was trained on (the spec its root training run recorded)."""
    for ancestor in reversed(history.lineage(workspace.history_db, run.id) or [run]):
        spec = ancestor.params.get("dataset")
        if isinstance(spec, dict) and spec.get("name") == run.dataset:
            return load_dataset(DatasetSpec(**spec), workspace, allow_download=False)
    artifact = workspace.resolve_artifact(run.artifact_path)
    meta_path = artifact / META_FILE if artifact is not None else None
    if meta_path is not None and meta_path.is_file():
        spec = json.loads(meta_path.read_text()).get("dataset")
        if isinstance(spec, dict):
            return load_dataset(DatasetSpec(**spec), workspace, allow_download=False)
    return load_dataset(DatasetSpec(run.dataset), workspace, allow_download=False)


def recipe_for_run(run: RunRecord, workspace: Workspace, dataset: Dataset, architecture: str) -> TrainRecipe:
    """The recipe the run's model was trained with: the nearest distillation's student recipe or
    training run's recipe along its lineage; else the architecture's classroom preset."""
    names = {field.name for field in fields(TrainRecipe)}
    for ancestor in reversed(history.lineage(workspace.history_db, run.id) or [run]):
        if ancestor.technique == "distill" and isinstance(ancestor.params.get("recipe"), dict):
            return TrainRecipe(**{key: value for key, value in ancestor.params["recipe"].items() if key in names})
        if ancestor.technique == "train" and names <= set(ancestor.params):
            return TrainRecipe(**{key: ancestor.params[key] for key in names})
    return classroom_recipe(dataset, architecture)


def package_from_quantized(fp32_model: nn.Module, result, architecture: str, dataset: Dataset, info: dict, pruned_channels: dict[str, list[int]] | None = None) -> ModelPackage:
    """A quantization result (core.quantization.quantize) as a package: each quantized layer's int8
    codes and scales, the tensors it left in floating point, and the input quantization its int8
    graph (or fake-quantized model) applies before each layer."""
    if result.report.mode == "dynamic":
        raise UserError("dynamic int8 quantizes activations afresh on every call, which a saved file cannot reproduce; package a static or simulated quantization instead")
    package = package_from_model(fp32_model, architecture, dataset, info, pruned_channels)
    for layer, weight in result.quantized_weights.items():
        name = f"{layer}.weight"
        if name not in package.float_tensors:
            raise UserError(f"quantized layer {layer} is not in {architecture}")
        del package.float_tensors[name]
        zero_point = None if weight.spec.symmetric else weight.zero_point.to(torch.int32)
        package.quantized_weights[name] = QuantizedWeight(weight.codes.detach().cpu(), weight.scale.detach().float().cpu(), zero_point)
    biases = folded_biases(result.artifact_tensors)
    if biases:  # batch norms folded into the int8 convolutions: expressed in the architecture's own layout
        package.float_tensors = express_folded_batch_norms(package.float_tensors, biases, copy.deepcopy(fp32_model).cpu(), package.input_shape, architecture)
    package.activation_quant = input_quantization(result.model)
    package.info = {**package.info, "quantization": result.report.config, "quantization_method": result.report.method}
    return package


def input_quantization(model: nn.Module) -> dict[str, ActivationQuant]:
    """Per layer, the (scale, zero point, range) its input is quantized with: read from a converted
    PT2E graph (the dequantize node feeding each conv/linear) or from the fake-quantizers attached
    by core.quantization's simulate/QAT modes."""
    found: dict[str, ActivationQuant] = {}
    if isinstance(model, torch.fx.GraphModule):
        dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
        layers = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)
        for node in model.graph.nodes:
            if node.op == "call_function" and node.target in layers:
                source = node.args[0]
                if isinstance(source, torch.fx.Node) and source.target == dequantize:
                    layer = list(node.meta["nn_module_stack"].values())[-1][0]
                    _, scale, zero_point, quant_min, quant_max = source.args[:5]
                    found[layer] = ActivationQuant(float(scale), int(zero_point), int(quant_min), int(quant_max))
        return found
    for name, module in model.named_modules():
        quantizer = getattr(module, "input_quantizer", None)
        if quantizer is not None and getattr(quantizer, "enabled", False):
            scale, zero_point = quantizer.qparams()
            found[name] = ActivationQuant(float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0]), quantizer.spec.quant_min, quantizer.spec.quant_max)
    return found

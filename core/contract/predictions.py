"""Every recorded run's predictions on its test set, computed once and kept in the workspace.

A comparison of two runs needs both models' logits on every test image. Rebuilding a model from its
artifact and running 10,000 CIFAR-10 images through it takes seconds; reading 400 KB of logits
back takes milliseconds. So the logits of each run are saved (safetensors) under
WORKSPACE/predictions/, named after the run and its test set, and stamped with a fingerprint of the
run's artifact: when the artifact's bytes change, the stamp no longer matches and the logits are
computed again.

    predictions = run_predictions(workspace, run_id)     # cached, or computed now and cached
    predictions.logits, predictions.labels, predictions.from_cache
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from core.contract.artifact import ActivationQuant, ModelPackage, QuantizedWeight
from core.contract.folded import express_folded_batch_norms, folded_biases
from core.contract.run_models import dataset_for_run, package_for_run
from core.foundation import history
from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.workspace import META_FILE, WEIGHTS_FILE, Workspace, atomic_save_tensors, file_sha256, load_checkpoint

PREDICTIONS_DIR = "predictions"
CACHE_VERSION = "1"


@dataclass
class RunPredictions:
    run_id: int
    logits: torch.Tensor  # float32 [test images, classes], in test-set order
    labels: torch.Tensor  # int64 [test images]
    class_names: list[str]
    test_set_id: str  # equal ids: the same images with the same labels, in the same order
    from_cache: bool
    seconds: float  # what getting them took (reading the cache, or rebuilding and predicting)

    @property
    def predicted(self) -> torch.Tensor:
        return self.logits.argmax(1)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).float().mean()) if len(self.labels) else 0.0


def fingerprint_test_split(dataset: Dataset) -> str:
    """A short hash of the test images and labels: two runs compare only when theirs are equal."""
    digest = hashlib.sha256()
    digest.update(str(tuple(dataset.test.images.shape)).encode())
    digest.update(dataset.test.labels.to(torch.int64).contiguous().numpy().tobytes())
    digest.update(dataset.test.images.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def artifact_fingerprint(workspace: Workspace, run: RunRecord) -> str:
    """sha256 over the bytes of the run's saved model (checkpoint folder or zip)."""
    path = workspace.resolve_artifact(run.artifact_path)
    if path is None or not path.exists():
        raise UserError(f"run #{run.id} ({run.technique}) has no saved model at {path or 'any path'}; it may have been deleted")
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, META_FILE):
        member = path / name
        if not member.is_file():
            raise UserError(f"run #{run.id}: {path} holds no complete checkpoint (missing {name})")
        digest.update(file_sha256(member).encode())
    return digest.hexdigest()


def predictions_path(workspace: Workspace, run_id: int, test_id: str) -> Path:
    return workspace.root / PREDICTIONS_DIR / f"run-{run_id}-{test_id}.safetensors"


def run_predictions(workspace: Workspace, run_id: int, dataset: Dataset | None = None) -> RunPredictions:
    """The run's logits on its test set: from the cache when its stamp matches the artifact, else
    rebuilt from the artifact (never unpickled), predicted and cached."""
    started = time.perf_counter()
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        raise UserError(f"no run #{run_id} in {workspace.history_db}; `python -m core runs` lists them")
    dataset = dataset or dataset_for_run(run, workspace)
    test_id = fingerprint_test_split(dataset)
    fingerprint = artifact_fingerprint(workspace, run)
    path = predictions_path(workspace, run.id, test_id)
    cached = _read(path, fingerprint, len(dataset.test), dataset.num_classes)
    if cached is not None:
        return RunPredictions(run.id, cached, dataset.test.labels, list(dataset.class_names), test_id, True, time.perf_counter() - started)
    model = model_for_run(workspace, run, dataset)
    logits = logits_on_test_split(model, dataset)
    _write(path, logits, fingerprint)
    return RunPredictions(run.id, logits, dataset.test.labels, list(dataset.class_names), test_id, False, time.perf_counter() - started)


def store_predictions(workspace: Workspace, run_id: int, model: nn.Module, dataset: Dataset) -> Path:
    """Predict with a model still in memory and cache it as run `run_id`'s predictions: the exact
    model a quantize run measured (its int8 graph), which its file rebuilds only approximately."""
    run = history.get_run(workspace.history_db, run_id)
    logits = logits_on_test_split(model, dataset)
    path = predictions_path(workspace, run_id, fingerprint_test_split(dataset))
    _write(path, logits, artifact_fingerprint(workspace, run))
    return path


@torch.no_grad()
def logits_on_test_split(model: nn.Module, dataset: Dataset, batch_size: int = 1000) -> torch.Tensor:
    """The model's logits on every test image, on the device its weights are on. Unlike
    core.foundation.training.loop.predict_logits it never moves the model: an int8 model cannot be moved."""
    model.eval()
    device = next((parameter.device for parameter in model.parameters()), torch.device("cpu"))
    outputs = [model(dataset.normalize(chunk.to(device))).float().cpu() for chunk in dataset.test.images.split(batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0, dataset.num_classes)


def _read(path: Path, fingerprint: str, images: int, classes: int) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            stamp = handle.metadata() or {}
        if stamp.get("artifact_sha256") != fingerprint or stamp.get("version") != CACHE_VERSION:
            return None
        logits = load_file(path)["logits"]
    except (SafetensorError, OSError, KeyError):
        return None
    return logits if tuple(logits.shape) == (images, classes) else None


def _write(path: Path, logits: torch.Tensor, fingerprint: str) -> None:
    atomic_save_tensors(path, {"logits": logits.float()}, metadata={"artifact_sha256": fingerprint, "version": CACHE_VERSION})


# ------------------------------------------------------------------------ a run's model, rebuilt


def model_for_run(workspace: Workspace, run: RunRecord, dataset: Dataset) -> nn.Module:
    """The run's final model as an eager module with the source architecture's layer names."""
    return package_for_any_run(workspace, run, dataset).build_model().eval()


def package_for_any_run(workspace: Workspace, run: RunRecord, dataset: Dataset, allow_dynamic: bool = False) -> ModelPackage:
    """package_for_run, and also for a quantize run's checkpoint (int8 or low-bit codes, scales,
    each layer's input quantization): its parent's model with the codes in place of the weights.
    A dynamic int8 run is refused unless `allow_dynamic` (its weights, without the per-call
    activation quantization, are what an ONNX export starts from)."""
    if run.technique != "quantize":
        return package_for_run(run, workspace, dataset)
    path = workspace.resolve_artifact(run.artifact_path)
    loaded = load_checkpoint(path) if path is not None and path.is_dir() else None
    if loaded is None:
        raise UserError(f"run #{run.id}: {path} holds no complete checkpoint (missing or changed files)")
    tensors, meta = loaded
    mode = (meta.get("report") or {}).get("mode")
    if mode == "dynamic" and not allow_dynamic:
        raise UserError(f"run #{run.id} is dynamic int8, which quantizes activations afresh on every call: its file cannot reproduce its predictions")
    parent = history.get_run(workspace.history_db, run.parent_id) if run.parent_id is not None else None
    if parent is None:
        raise UserError(f"run #{run.id}: the run it quantized is gone from the history, so its model cannot be rebuilt")
    base = package_for_run(parent, workspace, dataset)
    quantized = {
        name[: -len(".codes")]: QuantizedWeight(codes, tensors[name[: -len(".codes")] + ".scale"].float(), tensors.get(name[: -len(".codes")] + ".zero_point"))
        for name, codes in tensors.items()
        if name.endswith(".codes")
    }
    floats = {name: tensors.get(name, tensor) for name, tensor in base.float_tensors.items() if name not in quantized}
    biases = folded_biases(tensors)
    if biases:  # int8 with its batch norms folded into the convolutions (core.contract.folded)
        floats = express_folded_batch_norms(floats, biases, base.build_model(), base.input_shape, base.architecture)
    return dataclasses.replace(base, float_tensors=floats, quantized_weights=quantized, activation_quant=_input_quantization(run, tensors, meta))


def _input_quantization(run: RunRecord, tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, ActivationQuant]:
    """Each layer's input quantization: recorded by layer since issue 13; older eager (simulated)
    runs keyed their input scales by layer too, with the range their bit width gives."""
    recorded = meta.get("input_quantization")
    if isinstance(recorded, dict):
        return {layer: ActivationQuant(float(q["scale"]), int(q["zero_point"]), int(q["quant_min"]), int(q["quant_max"])) for layer, q in recorded.items()}
    scales = {name[: -len(".input_scale")]: value for name, value in tensors.items() if name.endswith(".input_scale")}
    if not scales:
        return {}
    report = meta.get("report") or {}
    if not report.get("simulated"):
        raise UserError(f"run #{run.id} was recorded before its int8 input quantization was saved by layer; quantize again to compare it example by example")
    bits = int((report.get("config") or {}).get("bits", 8))
    return {layer: ActivationQuant(float(scale.reshape(-1)[0]), int(tensors[f"{layer}.input_zero_point"].reshape(-1)[0]), 0, 2**bits - 1) for layer, scale in scales.items()}

"""Any recorded run as one ONNX file a stakeholder can ship, checked before it is offered.

How each kind of run becomes a file (`DeployForm`):
- fp32 runs (baselines, students, fine-tuned, masked or physically smaller pruned models): the
  model as it is, fp32.
- static int8 and 8-bit QAT runs: an int8 QDQ file made by ONNX Runtime's static quantization
  from the run's weights (already on the int8 grid) with ranges from the same number of training
  images the run used; the lab's torch int8 graph has no exporter of its own to ONNX.
- dynamic int8 runs: ONNX Runtime's dynamic quantization (int8 linear weights).
- simulated low-bit runs: no ONNX integer type holds fewer than 8 bits, so the weights are stored
  dequantized (fp32 values on the low-bit grid), the inputs' fake quantization as plain arithmetic.

Every file passes onnx.checker, runs in ONNX Runtime, and is compared with torch on the whole test
set: fp32 files must agree on >= 99.9% of the images, int8 files stay within 1 point of the torch
run's accuracy. The checked bytes are cached under WORKSPACE/exports/, stamped with the run's
artifact, so the page's download button and `python -m core export` hand out the same bytes.

    exported = onnx_for_run(workspace, run_id)   # cached, or exported, checked and cached now
    exported.onnx_bytes, exported.summary()
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.contract.predictions import artifact_fingerprint, fingerprint_test_split, package_for_any_run, run_predictions
from core.contract.run_summary import summarize
from core.deploy.onnx_files import (
    OPSET,
    attach_exportable_input_quantization,
    check_onnx,
    dynamic_int8_onnx,
    float_onnx,
    ort_logits,
    static_int8_onnx,
    with_metadata,
)
from core.diff.runs import dataset_loader
from core.foundation import history
from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.workspace import Workspace, atomic_write_bytes, atomic_write_json, load_checkpoint

EXPORTS_DIR = "exports"
EXPORT_VERSION = "1"  # bump when the files made here change, so cached ones are made again
FP32_AGREEMENT_MIN = 0.999  # top-1 agreement with torch an fp32 file must reach
INT8_ACCURACY_TOLERANCE = 0.01  # an int8 file's accuracy stays within 1 point of the torch run's
DEFAULT_CALIBRATION_IMAGES = 512  # the lab's static int8 default (core.quantization.config)


@dataclass(frozen=True)
class DeployForm:
    """What a run's ONNX file is."""

    kind: str  # "fp32", "static int8", "dynamic int8" or "dequantized"
    note: str  # one sentence for the page and the file's metadata
    calibration_images: int = 0  # static int8: training images whose ranges set the activation scales

    @property
    def int8(self) -> bool:
        return self.kind in ("static int8", "dynamic int8")


@dataclass
class OnnxExport:
    run_id: int
    onnx_bytes: bytes
    form: DeployForm
    accuracy: float  # the file's, in ONNX Runtime, on the test set
    torch_accuracy: float  # the run's own model, in torch, on the same images
    agreement: float | None  # top-1 agreement with torch (None where torch cannot replay the run: dynamic int8)
    test_images: int
    from_cache: bool
    seconds: float

    def summary(self, path: Path | None = None) -> dict:
        """The JSON `python -m core export` prints (and the page shows)."""
        return {
            "path": str(path) if path is not None else None,
            "bytes": len(self.onnx_bytes),
            "opset": OPSET,
            "int8": self.form.int8,
            "kind": self.form.kind,
            "note": self.form.note,
            "agreement": self.agreement,
            "accuracy": self.accuracy,
            "torch_accuracy": self.torch_accuracy,
            "test_images": self.test_images,
            "run_id": self.run_id,
            "sha256": hashlib.sha256(self.onnx_bytes).hexdigest(),
            "from_cache": self.from_cache,
            "seconds": self.seconds,
        }


def file_name(run: RunRecord) -> str:
    return f"model-run-{run.id}-{run.technique}.onnx"


def onnx_for_run(workspace: Workspace, run_id: int, dataset: Dataset | None = None) -> OnnxExport:
    """The run's checked ONNX file: from the cache when its stamp matches the run's artifact, else
    exported, checked against torch and cached."""
    started = time.perf_counter()
    run = _run(workspace, run_id)
    dataset = dataset or dataset_loader(workspace)(run)
    stamp = {"artifact_sha256": artifact_fingerprint(workspace, run), "test_set": fingerprint_test_split(dataset), "version": EXPORT_VERSION}
    cached = _read_cache(workspace, run.id, stamp)
    if cached is not None:
        cached.seconds = time.perf_counter() - started
        return cached
    form, model, onnx_float, calibration = _deploy_model(workspace, run, dataset)
    if form.kind == "static int8":
        onnx_bytes = static_int8_onnx(onnx_float, calibration, reduce_range=not _cpu_has_vnni())
    elif form.kind == "dynamic int8":
        onnx_bytes = dynamic_int8_onnx(onnx_float)
    else:
        onnx_bytes = onnx_float
    check_onnx(onnx_bytes, tuple(dataset.test.images.shape[1:]), dataset.num_classes)
    threads = torch.get_num_threads()
    logits = ort_logits(onnx_bytes, dataset.normalize(dataset.test.images).numpy(), threads)
    labels = dataset.test.labels.numpy()
    accuracy = float((logits.argmax(1) == labels).mean())
    agreement, torch_accuracy = _torch_reference(workspace, run, dataset, logits)
    _check_against_torch(run, form, accuracy, torch_accuracy, agreement, len(labels))
    onnx_bytes = with_metadata(onnx_bytes, _metadata(run, dataset, form, accuracy, torch_accuracy, agreement))
    exported = OnnxExport(run.id, onnx_bytes, form, accuracy, torch_accuracy, agreement, len(labels), False, 0.0)
    _write_cache(workspace, exported, stamp)
    exported.seconds = time.perf_counter() - started
    return exported


def cached_export(workspace: Workspace, run_id: int) -> OnnxExport | None:
    """The run's checked file if one is cached for its current artifact, without exporting or
    loading its dataset (a page lists many runs); None otherwise. onnx_for_run also checks the
    test set's fingerprint, so a dataset changed on disk is exported again when downloaded."""
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        return None
    try:
        artifact = artifact_fingerprint(workspace, run)
    except UserError:
        return None
    _, json_path = _cache_paths(workspace, run.id)
    try:
        stamp = json.loads(json_path.read_text()).get("stamp") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if stamp.get("artifact_sha256") != artifact or stamp.get("version") != EXPORT_VERSION:
        return None
    return _read_cache(workspace, run.id, stamp)


def export_run(workspace: Workspace, run_id: int, out_path: Path) -> dict:
    """Write the run's ONNX file to `out_path`; its summary with the path."""
    exported = onnx_for_run(workspace, run_id)
    out_path = Path(out_path).expanduser()
    if out_path.is_dir():
        out_path = out_path / file_name(_run(workspace, run_id))
    try:
        atomic_write_bytes(out_path, exported.onnx_bytes)
    except OSError as error:
        raise UserError(f"cannot write {out_path}: {error.strerror or error}") from error
    return exported.summary(out_path)


# ------------------------------------------------------------------------------ how a run deploys


def deploy_form(workspace: Workspace, run: RunRecord) -> DeployForm:
    """What the run's ONNX file will be, read from its checkpoint's metadata."""
    if run.technique != "quantize":
        return DeployForm("fp32", "fp32 weights and compute, as the run's model.")
    report = _quantize_report(workspace, run)
    config = report.get("config") or {}
    if report.get("mode") == "dynamic":
        return DeployForm("dynamic int8", "int8 linear weights, activations quantized on every call (ONNX Runtime's dynamic quantization: MatMulInteger); convolutions fp32, as in the run.")
    if not report.get("simulated", True):
        images = int(config.get("calibration_size", DEFAULT_CALIBRATION_IMAGES))
        return DeployForm(
            "static int8",
            f"int8 QDQ (QuantizeLinear/DequantizeLinear around every Conv and Gemm, int8 weights per output channel, uint8 activations), "
            f"made by ONNX Runtime's static quantization from the run's int8 weights with ranges from {images} training images.",
            images,
        )
    bits = int(config.get("bits", 8))
    activations = " Each layer's input is fake-quantized as in the run, in plain arithmetic." if report.get("activations_quantized", "no") != "no" else ""
    return DeployForm("dequantized", f"{bits}-bit weights have no ONNX integer type: stored dequantized (fp32 values on the {bits}-bit grid), computed in fp32.{activations}")


def _deploy_model(workspace: Workspace, run: RunRecord, dataset: Dataset):
    """(form, the fp32 torch model the file starts from, its fp32 ONNX bytes, calibration images)."""
    form = deploy_form(workspace, run)
    package = package_for_any_run(workspace, run, dataset, allow_dynamic=True)
    model = dataclasses.replace(package, activation_quant={}).build_model()
    if form.kind == "dequantized":
        attach_exportable_input_quantization(model, package.activation_quant)
    example = dataset.normalize(dataset.test.images[:1])
    calibration = None
    if form.kind == "static int8":
        from core.quantization.apply import calibration_inputs

        calibration = calibration_inputs(dataset, form.calibration_images, seed=0).numpy()
    return form, model, float_onnx(model, example), calibration


def _quantize_report(workspace: Workspace, run: RunRecord) -> dict:
    path = workspace.resolve_artifact(run.artifact_path)
    loaded = load_checkpoint(path) if path is not None and path.is_dir() else None
    if loaded is None:
        raise UserError(f"run #{run.id}: {path} holds no complete checkpoint (missing or changed files)")
    return loaded[1].get("report") or {}


def _torch_reference(workspace: Workspace, run: RunRecord, dataset: Dataset, logits: np.ndarray) -> tuple[float | None, float]:
    """(agreement with the torch model's predictions, torch's accuracy). A dynamic run cannot be
    replayed from its file (activations are quantized afresh per call), so its recorded accuracy
    stands in and there is no agreement."""
    if deploy_form(workspace, run).kind == "dynamic int8":
        recorded = summarize(run).accuracy
        if recorded is None:
            raise UserError(f"run #{run.id} recorded no accuracy to check its export against")
        return None, float(recorded)
    predictions = run_predictions(workspace, run.id, dataset)
    torch_predicted = predictions.predicted.numpy()
    return float((logits.argmax(1) == torch_predicted).mean()), predictions.accuracy


def _check_against_torch(run: RunRecord, form: DeployForm, accuracy: float, torch_accuracy: float, agreement: float | None, images: int) -> None:
    if form.int8:
        # Both accuracies are counts of the same images over `images`, one of them a float32 mean:
        # 0.96 - 0.95 is 0.0100000119 there, yet one image in a hundred is exactly the 1 point
        # allowed. Half an image of slack absorbs the rounding and never admits a whole image more.
        if abs(accuracy - torch_accuracy) > INT8_ACCURACY_TOLERANCE + 0.5 / images:
            raise UserError(f"run #{run.id}'s int8 ONNX file scores {accuracy:.2%} against torch's {torch_accuracy:.2%}, more than {INT8_ACCURACY_TOLERANCE:.0%} apart; it is not offered")
    elif agreement is not None and agreement < FP32_AGREEMENT_MIN:
        raise UserError(f"run #{run.id}'s ONNX file agrees with torch on only {agreement:.2%} of the test images (at least {FP32_AGREEMENT_MIN:.1%} needed); it is not offered")


def _metadata(run: RunRecord, dataset: Dataset, form: DeployForm, accuracy: float, torch_accuracy: float, agreement: float | None) -> dict[str, str]:
    return {
        "lab_run_id": str(run.id),
        "lab_technique": run.technique,
        "lab_model": run.model,
        "dataset": run.dataset,
        "kind": form.kind,
        "note": form.note,
        "int8": str(form.int8).lower(),
        "input": f"float32 [batch, {dataset.channels}, {dataset.image_size}, {dataset.image_size}]: pixels / 255, minus mean, over std, per channel",
        "input_mean": json.dumps(list(dataset.mean)),
        "input_std": json.dumps(list(dataset.std)),
        "class_names": json.dumps(list(dataset.class_names)),
        "accuracy_onnxruntime": f"{accuracy:.6f}",
        "accuracy_torch": f"{torch_accuracy:.6f}",
        "agreement_with_torch": "" if agreement is None else f"{agreement:.6f}",
        "test_images": str(len(dataset.test)),
    }


def _cpu_has_vnni() -> bool:
    from core.quantization.pt2e import cpu_has_vnni

    return cpu_has_vnni()


def _run(workspace: Workspace, run_id: int) -> RunRecord:
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        raise UserError(f"no run #{run_id} in {workspace.history_db}; `python -m core runs` lists them")
    return run


# ---------------------------------------------------------------------------------------- cache


def _cache_paths(workspace: Workspace, run_id: int) -> tuple[Path, Path]:
    folder = workspace.root / EXPORTS_DIR
    return folder / f"run-{run_id}.onnx", folder / f"run-{run_id}.json"


def _read_cache(workspace: Workspace, run_id: int, stamp: dict) -> OnnxExport | None:
    onnx_path, json_path = _cache_paths(workspace, run_id)
    try:
        record = json.loads(json_path.read_text())
        onnx_bytes = onnx_path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("stamp") != stamp or record.get("sha256") != hashlib.sha256(onnx_bytes).hexdigest():
        return None  # a changed artifact, an older exporter, or a file damaged since: export again
    try:
        form = DeployForm(**record["form"])
        return OnnxExport(
            run_id,
            onnx_bytes,
            form,
            float(record["accuracy"]),
            float(record["torch_accuracy"]),
            None if record["agreement"] is None else float(record["agreement"]),
            int(record["test_images"]),
            True,
            0.0,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _write_cache(workspace: Workspace, exported: OnnxExport, stamp: dict) -> None:
    onnx_path, json_path = _cache_paths(workspace, exported.run_id)
    atomic_write_bytes(onnx_path, exported.onnx_bytes)
    atomic_write_json(
        json_path,
        {
            "stamp": stamp,
            "sha256": hashlib.sha256(exported.onnx_bytes).hexdigest(),
            "form": dataclasses.asdict(exported.form),
            "accuracy": exported.accuracy,
            "torch_accuracy": exported.torch_accuracy,
            "agreement": exported.agreement,
            "test_images": exported.test_images,
        },
    )

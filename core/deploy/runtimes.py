"""The same models in every runtime people deploy with, side by side, under one protocol.

For each model: torch eager, torch.compile (inductor), ONNX Runtime (CPU) and OpenVINO (CPU), in
fp32 and in int8 where the runtime has an int8 path, at batch 1 and batch 256, with the thread
count torch runs with here given to every runtime, interleaved rounds (each runner keeps its best
round's median, so a burst of outside load cannot favour whichever ran last) and each runner's
accuracy on the whole test set next to its time.

Which models: a run stands for its fp32 model and an int8 twin.
- An int8 quantize run (static, 8-bit QAT, dynamic) stands for its source: fp32 is the model it
  quantized, int8 is the run itself (its ONNX export; in torch, a PT2E graph of its int8 weights).
- Any other run is fp32 as recorded, and its int8 twin is made here with the lab's static int8
  defaults (ONNX Runtime's static quantization for the ONNX runtimes, PT2E for torch).
A runtime that is not installed, or cannot run a model on this CPU, gives rows marked unavailable
with the reason, never a traceback.

    report = measure_runtimes(workspace, [run_id])     # also cached: cached_runtime_report(...)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from core.contract.predictions import artifact_fingerprint, model_for_run
from core.deploy.export import DEFAULT_CALIBRATION_IMAGES, deploy_form, onnx_for_run
from core.deploy.onnx_files import INPUT_NAME, float_onnx, ort_session, static_int8_onnx
from core.diff.runs import dataset_loader
from core.foundation import history
from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from core.foundation.history import RunRecord
from core.foundation.measures.latency import COMPILED, EAGER, batch_sizes, latency_budget_seconds, latency_rounds, median_call_ms, throughput_batch_size
from core.foundation.progress import Progress, ProgressCallback, no_progress
from core.foundation.workspace import Workspace, atomic_write_json

ONNXRUNTIME = "ONNX Runtime (CPU)"
OPENVINO = "OpenVINO (CPU)"
RUNTIMES = (EAGER, COMPILED, ONNXRUNTIME, OPENVINO)
PRECISIONS = ("fp32", "int8")
REPORTS_DIR = "deploy"
REPORT_VERSION = "1"
EAGER_INT8_REASON = "torch has int8 CPU kernels only through torch.compile (inductor); eager would run the int8 graph's fp32 reference ops"


class RuntimeUnavailable(Exception):
    """This runtime cannot run this model here; the message says why, in one line."""


@dataclass
class RuntimeFigure:
    model: str  # e.g. "run #2 (prune)"
    run_id: int  # the run whose fp32 model this is
    precision: str  # "fp32" or "int8"
    runtime: str
    batch_size: int
    latency_ms: float | None  # one call over batch_size images, best round's median
    accuracy: float | None  # on the whole test set, in this runtime
    available: bool
    reason: str  # why not available ("" when it is)

    @property
    def per_image_ms(self) -> float | None:
        return None if self.latency_ms is None else self.latency_ms / self.batch_size

    def as_dict(self) -> dict:
        return {**asdict(self), "name": self.runtime, "per_image_ms": self.per_image_ms}


@dataclass
class RuntimeReport:
    run_ids: list[int]
    figures: list[RuntimeFigure]
    int8_sources: dict[str, str]  # model label -> where its int8 twin comes from
    threads: int
    rounds: int
    test_images: int
    machine: dict
    versions: dict[str, str]
    seconds: float
    measured_at: str
    from_cache: bool = False

    def figure(self, model: str, runtime: str, precision: str, batch_size: int) -> RuntimeFigure | None:
        return next((f for f in self.figures if (f.model, f.runtime, f.precision, f.batch_size) == (model, runtime, precision, batch_size)), None)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(f.model for f in self.figures))

    def ratio(self, model: str, runtime: str, batch_size: int) -> float | None:
        """fp32 latency over int8 latency of one model in one runtime (above 1: int8 is faster)."""
        fp32, int8 = self.figure(model, runtime, "fp32", batch_size), self.figure(model, runtime, "int8", batch_size)
        if fp32 is None or int8 is None or fp32.latency_ms is None or int8.latency_ms is None:
            return None
        return fp32.latency_ms / int8.latency_ms

    def as_dict(self) -> dict:
        return {
            "run_ids": self.run_ids,
            "runtimes": [f.as_dict() for f in self.figures],
            "int8_sources": self.int8_sources,
            "threads": self.threads,
            "rounds": self.rounds,
            "test_images": self.test_images,
            "machine": self.machine,
            "versions": self.versions,
            "seconds": self.seconds,
            "measured_at": self.measured_at,
            "from_cache": self.from_cache,
        }

    @classmethod
    def from_dict(cls, payload: dict) -> RuntimeReport:
        figures = [RuntimeFigure(**{k: row[k] for k in ("model", "run_id", "precision", "runtime", "batch_size", "latency_ms", "accuracy", "available", "reason")}) for row in payload["runtimes"]]
        return cls(
            list(payload["run_ids"]),
            figures,
            dict(payload["int8_sources"]),
            int(payload["threads"]),
            int(payload["rounds"]),
            int(payload["test_images"]),
            dict(payload["machine"]),
            dict(payload["versions"]),
            float(payload["seconds"]),
            str(payload["measured_at"]),
            True,
        )


# ------------------------------------------------------------------------------------ the models


@dataclass
class DeployModel:
    """One model in both precisions, as every runtime gets it."""

    label: str
    run_id: int
    fp32: nn.Module
    int8_weights_from: nn.Module  # the fp32 module torch's PT2E int8 graph is made from
    onnx_fp32: bytes
    onnx_int8: bytes | None
    int8_source: str  # in words, for the table's caption
    torch_int8_reason: str = ""  # why torch has no int8 runner for it ("" when it has)
    calibration: torch.Tensor = field(default_factory=lambda: torch.empty(0))


def deploy_models(workspace: Workspace, run_ids: list[int], progress: ProgressCallback = no_progress) -> tuple[list[DeployModel], Dataset]:
    """Each run as a DeployModel (see the module docstring for which model a run stands for)."""
    from core.quantization.apply import calibration_inputs
    from core.quantization.pt2e import cpu_has_vnni

    runs = [_run(workspace, run_id) for run_id in dict.fromkeys(run_ids)]
    load = dataset_loader(workspace)
    datasets = [load(run) for run in runs]
    if any(d.test.images.shape != datasets[0].test.images.shape or not torch.equal(d.test.labels, datasets[0].test.labels) for d in datasets[1:]):
        raise UserError("these runs were evaluated on different test sets; compare runtimes of runs made on the same test set")
    dataset = datasets[0]
    example = dataset.normalize(dataset.test.images[:1])
    models: list[DeployModel] = []
    for index, run in enumerate(runs):
        progress(Progress("prepare", index, len(runs), f"run #{run.id}: models and ONNX files"))
        form = deploy_form(workspace, run)
        if form.int8:
            parent = _run(workspace, run.parent_id) if run.parent_id is not None else None
            if parent is None:
                raise UserError(f"run #{run.id}: the run it quantized is gone from the history, so its fp32 model cannot be timed")
            fp32 = model_for_run(workspace, parent, dataset)
            label = f"run #{parent.id} ({parent.technique})"
            exported = onnx_for_run(workspace, run.id, dataset)
            calibration = calibration_inputs(dataset, form.calibration_images or DEFAULT_CALIBRATION_IMAGES, seed=0)
            weights = _float_form(workspace, run, dataset) if form.kind == "static int8" else fp32
            reason = "" if form.kind == "static int8" else "a dynamic int8 run is timed in torch on the Quantization page; here only its ONNX file runs int8"
            models.append(DeployModel(label, parent.id, fp32, weights, float_onnx(fp32, example), exported.onnx_bytes, f"run #{run.id} ({form.kind})", reason, calibration))
        else:
            fp32 = _float_form(workspace, run, dataset) if run.technique == "quantize" else model_for_run(workspace, run, dataset)
            calibration = calibration_inputs(dataset, DEFAULT_CALIBRATION_IMAGES, seed=0)
            onnx_fp32 = float_onnx(fp32, example)
            onnx_int8 = static_int8_onnx(onnx_fp32, calibration.numpy(), reduce_range=not cpu_has_vnni())
            source = f"made here: static int8, ranges from {len(calibration)} training images (ONNX Runtime's quantize_static; PT2E in torch)"
            models.append(DeployModel(f"run #{run.id} ({run.technique})", run.id, fp32, fp32, onnx_fp32, onnx_int8, source, "", calibration))
    return models, dataset


def _float_form(workspace: Workspace, run: RunRecord, dataset: Dataset) -> nn.Module:
    """A quantize run's weights as an fp32 module (dequantized codes, no input fake quantization)."""
    import dataclasses

    from core.contract.predictions import package_for_any_run

    package = package_for_any_run(workspace, run, dataset, allow_dynamic=True)
    return dataclasses.replace(package, activation_quant={}).build_model()


def default_runs(workspace: Workspace, run_id: int) -> list[int]:
    """The run and its source: a pruned run beside the model it pruned; an int8 run already
    stands for its source, so it is timed alone."""
    run = _run(workspace, run_id)
    if run.parent_id is None or deploy_form(workspace, run).int8 or history.get_run(workspace.history_db, run.parent_id) is None:
        return [run.id]
    return [run.parent_id, run.id]


# ----------------------------------------------------------------------------------- the runners


class Runner(Protocol):
    """One model in one runtime and precision: a timing call per batch (the input prepared once,
    outside the timed call), and class predictions for the accuracy."""

    def call_for(self, batch: torch.Tensor) -> Callable[[], object]: ...

    def predict(self, images: torch.Tensor) -> np.ndarray: ...


class TorchEagerRunner:
    def __init__(self, model: nn.Module):
        self.model = model.eval()

    def call_for(self, batch):
        def call():
            with torch.no_grad():
                self.model(batch)

        return call

    @torch.no_grad()
    def predict(self, images):
        return torch.cat([self.model(chunk).argmax(1) for chunk in images.split(predict_batch(images))]).numpy()


class TorchCompiledRunner:
    """One compiled graph per batch size (as core.foundation.measures.latency compiles), freezing on."""

    def __init__(self, model: nn.Module, example: torch.Tensor):
        from core.foundation.measures.compile import try_compile

        self.compiled = {}
        for size in batch_sizes(example.shape[-1]):
            attempt = try_compile(model, example, size)
            if isinstance(attempt, str):
                raise RuntimeUnavailable(attempt)
            self.compiled[size] = attempt[0]

    def call_for(self, batch):
        compiled = self.compiled[len(batch)]

        def call():
            with torch.no_grad():
                compiled(batch)

        return call

    @torch.no_grad()
    def predict(self, images):
        from core.foundation.measures.compile import compiled_predictions

        return compiled_predictions(self.compiled[predict_batch(images)], images, predict_batch(images)).numpy()


class OnnxRuntimeRunner:
    def __init__(self, onnx_bytes: bytes, threads: int):
        try:
            self.session = ort_session(onnx_bytes, threads, spinning=False)
        except ImportError as error:
            raise RuntimeUnavailable(f"onnxruntime is not installed ({error})") from error
        except Exception as error:  # onnxruntime raises its own exception types for a model it cannot load
            raise RuntimeUnavailable(f"ONNX Runtime cannot load this model: {_first_line(error)}") from error

    def call_for(self, batch):
        feed = {INPUT_NAME: np.ascontiguousarray(batch.numpy())}
        return lambda: self.session.run(None, feed)

    def predict(self, images):
        array = images.numpy()
        step = predict_batch(images)
        return np.concatenate([self.session.run(None, {INPUT_NAME: np.ascontiguousarray(array[i : i + step])})[0].argmax(1) for i in range(0, len(array), step)])


class OpenVinoRunner:
    """The ONNX file read by OpenVINO and compiled for the CPU once per batch shape, fp32 inference
    precision asked for explicitly (on CPUs with bf16 it would otherwise compute fp32 models in bf16)."""

    def __init__(self, onnx_bytes: bytes, threads: int, input_shape: tuple[int, ...]):
        try:
            import openvino
        except ImportError as error:
            raise RuntimeUnavailable(f"openvino is not installed ({error})") from error
        self.compiled = {}
        try:
            core = openvino.Core()
            with tempfile.TemporaryDirectory(prefix="mel-openvino-") as folder:
                path = Path(folder, "model.onnx")
                path.write_bytes(onnx_bytes)
                for size in batch_sizes(input_shape[-1]):
                    model = core.read_model(str(path))
                    model.reshape({model.inputs[0]: [size, *input_shape]})
                    self.compiled[size] = core.compile_model(
                        model,
                        "CPU",
                        {
                            "INFERENCE_NUM_THREADS": threads,
                            "INFERENCE_PRECISION_HINT": "f32",
                            "PERFORMANCE_HINT": "LATENCY",
                            "NUM_STREAMS": 1,
                        },
                    )
        except Exception as error:  # OpenVINO raises RuntimeError subclasses of its own for unsupported models or devices
            raise RuntimeUnavailable(f"OpenVINO cannot compile this model for the CPU: {_first_line(error)}") from error

    def call_for(self, batch):
        compiled, array = self.compiled[len(batch)], np.ascontiguousarray(batch.numpy())
        return lambda: compiled(array)

    def predict(self, images):
        step = predict_batch(images)
        compiled, array = self.compiled[step], images.numpy()
        predictions = []
        for start in range(0, len(array), step):
            chunk = array[start : start + step]
            count = len(chunk)
            if count < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], step - count, axis=0)])
            predictions.append(compiled(np.ascontiguousarray(chunk))[0][:count].argmax(1))
        return np.concatenate(predictions)


def predict_batch(images) -> int:
    """Accuracy runs at the protocol's throughput batch for these images, the last batch padded."""
    return throughput_batch_size(images.shape[-1])


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"[:300]


def _runner(model: DeployModel, runtime: str, precision: str, example: torch.Tensor, threads: int) -> Runner:
    """A runner, or RuntimeUnavailable with the reason."""
    if runtime == EAGER:
        if precision == "int8":
            raise RuntimeUnavailable(EAGER_INT8_REASON)
        return TorchEagerRunner(copy.deepcopy(model.fp32).cpu())
    if runtime == COMPILED:
        if precision == "fp32":
            return TorchCompiledRunner(copy.deepcopy(model.fp32).cpu(), example)
        if model.torch_int8_reason:
            raise RuntimeUnavailable(model.torch_int8_reason)
        from core.foundation.measures.compile import backend_unavailable_reason
        from core.quantization.pt2e import calibrate, convert, prepare_static

        reason = backend_unavailable_reason()
        if reason:
            raise RuntimeUnavailable(reason)
        prepared = prepare_static(copy.deepcopy(model.int8_weights_from).cpu(), example, "histogram")
        calibrate(prepared, model.calibration)
        return TorchCompiledRunner(convert(prepared), example)
    onnx_bytes = model.onnx_fp32 if precision == "fp32" else model.onnx_int8
    if onnx_bytes is None:
        raise RuntimeUnavailable("no int8 ONNX file for this model")
    if runtime == ONNXRUNTIME:
        return OnnxRuntimeRunner(onnx_bytes, threads)
    if runtime == OPENVINO:
        return OpenVinoRunner(onnx_bytes, threads, tuple(example.shape[1:]))
    raise ValueError(f"unknown runtime {runtime}")


# ------------------------------------------------------------------------------------ measuring


def measure_runtimes(workspace: Workspace, run_ids: list[int], rounds: int | None = None, runtimes: tuple[str, ...] = RUNTIMES, progress: ProgressCallback = no_progress) -> RuntimeReport:
    """Every model of `run_ids` in every runtime and precision; also saved for the page and report.
    `rounds`: interleaved timing rounds (default: the protocol's, core.foundation.measures.latency_protocol)."""
    rounds = latency_rounds() if rounds is None else rounds
    if rounds < 1:
        raise UserError(f"rounds must be 1 or more, got {rounds}")
    started = time.perf_counter()
    models, dataset = deploy_models(workspace, run_ids, progress)
    threads = torch.get_num_threads()
    images = dataset.normalize(dataset.test.images).contiguous()
    example = images[:1]
    runners: dict[tuple[str, str, str], Runner] = {}
    unavailable: dict[tuple[str, str, str], str] = {}
    accuracy: dict[tuple[str, str, str], float] = {}
    keys = [(m.label, runtime, precision) for m in models for runtime in runtimes for precision in PRECISIONS]
    by_label = {m.label: m for m in models}
    for index, key in enumerate(keys):
        progress(Progress("runtimes", index, len(keys), f"{key[0]}: {key[1]}, {key[2]}: building and checking accuracy"))
        try:
            runner = _runner(by_label[key[0]], key[1], key[2], example, threads)
            accuracy[key] = float((runner.predict(images) == dataset.test.labels.numpy()).mean())
            runners[key] = runner
        except RuntimeUnavailable as error:
            unavailable[key] = str(error)
    best: dict[tuple[str, str, str, int], float] = {}
    sizes = batch_sizes(images.shape[-1])
    calls = {(key, size): runner.call_for(images[:1].expand(size, *images.shape[1:]).contiguous()) for key, runner in runners.items() for size in sizes}
    for round_index in range(rounds):
        progress(Progress("timing", round_index, rounds, f"round {round_index + 1} of {rounds}"))
        for size in sizes:
            for key in runners:
                milliseconds, _ = median_call_ms(calls[(key, size)], budget_seconds=latency_budget_seconds())
                best[(*key, size)] = min(milliseconds, best.get((*key, size), float("inf")))
    progress(Progress("timing", rounds, rounds, "done"))
    figures = []
    for key in keys:
        for size in sizes:
            model = by_label[key[0]]
            if key in runners:
                figures.append(RuntimeFigure(key[0], model.run_id, key[2], key[1], size, best[(*key, size)], accuracy[key], True, ""))
            else:
                figures.append(RuntimeFigure(key[0], model.run_id, key[2], key[1], size, None, None, False, unavailable[key]))
    report = RuntimeReport(
        list(dict.fromkeys(run_ids)),
        figures,
        {m.label: m.int8_source for m in models},
        threads,
        rounds,
        len(images),
        machine_summary(),
        runtime_versions(),
        time.perf_counter() - started,
        time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    _save(workspace, report)
    return report


def machine_summary() -> dict:
    """The CPU a report was measured on, as its caption states it."""
    model = ""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    from core.quantization.pt2e import cpu_has_vnni

    return {"cpu_model": model or platform.processor() or platform.machine(), "cores": os.cpu_count(), "vnni": cpu_has_vnni(), "avx512": "avx512f" in flags, "amx": "amx_int8" in flags}


def runtime_versions() -> dict[str, str]:
    versions = {"torch": torch.__version__}
    for name in ("onnx", "onnxruntime", "openvino"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    return versions


# ------------------------------------------------------------------------------ the saved reports


def _report_path(workspace: Workspace, run_ids: list[int]) -> Path:
    key = hashlib.sha256(json.dumps([int(r) for r in dict.fromkeys(run_ids)]).encode()).hexdigest()[:16]
    return workspace.root / REPORTS_DIR / f"runtimes-{key}.json"


def _stamps(workspace: Workspace, run_ids: list[int]) -> dict[str, str]:
    return {str(run_id): artifact_fingerprint(workspace, _run(workspace, run_id)) for run_id in dict.fromkeys(run_ids)}


def _save(workspace: Workspace, report: RuntimeReport) -> None:
    atomic_write_json(_report_path(workspace, report.run_ids), {"version": REPORT_VERSION, "stamps": _stamps(workspace, report.run_ids), "report": report.as_dict()})


def cached_runtime_report(workspace: Workspace, run_ids: list[int]) -> RuntimeReport | None:
    """The last measurement of exactly these runs, if their artifacts have not changed since."""
    path = _report_path(workspace, run_ids)
    try:
        saved = json.loads(path.read_text())
        if saved.get("version") != REPORT_VERSION or saved.get("stamps") != _stamps(workspace, run_ids):
            return None
        return RuntimeReport.from_dict(saved["report"])
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None


def _run(workspace: Workspace, run_id: int) -> RunRecord:
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        raise UserError(f"no run #{run_id} in {workspace.history_db}; `python -m core runs` lists them")
    return run


# ------------------------------------------------------------------------------------ the table


def baseline_figure(report: RuntimeReport, batch_size: int) -> RuntimeFigure | None:
    """The reference every speed-up is against: the first model's fp32 in torch eager."""
    return report.figure(report.models[0], EAGER, "fp32", batch_size) if report.models else None


def table_rows(report: RuntimeReport) -> list[dict]:
    """One row per model, runtime, precision and batch size, as the Deploy tab, the report and the
    README show them. Speed-ups are per image, above 1 when faster."""
    rows = []
    for figure in report.figures:
        reference = baseline_figure(report, figure.batch_size)
        same_runtime_fp32 = report.figure(figure.model, figure.runtime, "fp32", figure.batch_size)
        speedup = reference.latency_ms / figure.latency_ms if figure.available and reference and reference.latency_ms else None
        int8_speedup = same_runtime_fp32.latency_ms / figure.latency_ms if figure.precision == "int8" and figure.available and same_runtime_fp32 and same_runtime_fp32.latency_ms else None
        rows.append(
            {
                "model": figure.model,
                "runtime": figure.runtime,
                "precision": figure.precision,
                "batch_size": figure.batch_size,
                "latency_ms": figure.latency_ms,
                "per_image_ms": figure.per_image_ms,
                "speedup_vs_fp32_eager": speedup,
                "int8_speedup_same_runtime": int8_speedup,
                "accuracy": figure.accuracy,
                "status": "available" if figure.available else f"unavailable: {figure.reason}",
            }
        )
    return rows

"""The combined pipeline: a plain loop over technique steps (distill -> prune -> quantize, any of
them in that order), each recorded as a run whose parent is the step before, then the compressed
encoding: the model zip, whose bytes are the pipeline's honest size.

    config = build_pipeline_config(pipeline_options("deep-compression", {}), source.architecture)
    result = run_pipeline(source, config, context)      # core.contract.result.TechniqueResult, not yet recorded

Every step's model is also weighed in the model-zip encoding (before entropy coding), so the
waterfall's bars are real bytes of one encoding; the last bar is the zip itself, and its accuracy is
measured on the model rebuilt from that zip.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from core.contract.artifact import ModelPackage, evaluate_package, load_model_zip, package_from_model, quick_model_zip, weigh_encoding, write_model_zip
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.result import Artifact, TechniqueResult, build_headline, latency_pair
from core.contract.run_models import package_from_quantized
from core.contract.source import ModelSource
from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_macs, count_nonzero_parameters, count_parameters, state_dict_size_bytes
from core.foundation.progress import Progress, ProgressCallback
from core.pipeline.config import PipelineConfig
from core.pipeline.techniques import run_technique

SIZE_MEASURE_BEFORE = "fp32 safetensors file"


@dataclass
class StepResult:
    """The model after one step, weighed the same way for every step (the waterfall's bars)."""

    step: str  # "baseline", "distill", "prune", "quantize" or "encode"
    run_id: int | None
    accuracy: float
    size_bytes: int  # this step's model in the model-zip encoding, before entropy coding (the zip itself for "encode")
    size_measure: str
    dense_fp32_bytes: int
    params: int
    nonzero_params: int
    macs: int | None
    latency_ms: float | None = None  # as the step's technique measured it, at its throughput batch
    latency_batch_size: int | None = None
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class PipelineStopped(UserError):
    """The pipeline was stopped; the steps already finished stay recorded."""


def run_pipeline(source: ModelSource, config: PipelineConfig, context: RunContext, record_steps: bool = True) -> TechniqueResult:
    """Run each step on the model the step before made (recording each), then encode the last one.

    `record_steps=False` keeps the intermediate models out of the history (a sweep's trial, run
    where only the driver writes): the pipeline's result is then the one run, child of the source."""
    started = time.perf_counter()
    config.validate()
    total = len(config.steps) + 1  # the steps, then the encoding
    steps = [_weigh("baseline", source.run_id, source.model, source.accuracy, _float_package(source), source, 0.0, None)]
    current, last = source, None
    for index, step in enumerate(config.steps, start=1):
        if context.stop is not None and context.stop.is_set():
            raise PipelineStopped(f"the pipeline was stopped before {step}; {index - 1} finished step(s) stay recorded")
        step_context = RunContext(context.workspace, _prefixed(context.progress, f"step {index}/{len(config.steps)} {step}", index - 1, total), context.stop)
        last = run_technique(step, current, config.config_for(step), step_context)
        run_id = record(last, context.workspace) if record_steps else None
        current = ModelSource.from_result(last, run_id)
        package = _package_of(last) if last.quantized else _float_package(current)
        steps.append(_weigh(step, run_id, last.source.model if last.quantized else last.model, last.headline.accuracy_after, package, source, last.seconds, last))

    context.progress(Progress("encode", total - 1, total, "encoding the model zip and timing it"))
    encode_started = time.perf_counter()
    package = _package_of(last) if last.quantized else _float_package(current)
    package.info.update({"technique": "pipeline", "accuracy": None, "eval_images": len(source.dataset.test), "params": config.as_dict(), "source_run_id": source.run_id})
    rebuilt, rebuilt_package = load_model_zip(quick_model_zip(package), "the pipeline's zip")
    accuracy_after = evaluate_package(rebuilt, rebuilt_package, source.dataset).accuracy  # of the model rebuilt from the zip's bytes
    package.info["accuracy"] = accuracy_after
    zip_bytes, encoding = write_model_zip(package)  # the same weights, now with their measured accuracy
    final_model = last.model
    final_fp32 = last.source.model if last.quantized else last.model  # same parameter and MAC counts as the int8 graph
    steps.append(
        StepResult(
            "encode",
            None,
            accuracy_after,
            encoding.zip_bytes,
            f"model zip ({encoding.zip_compression})",
            encoding.dense_fp32_bytes,
            steps[-1].params,
            steps[-1].nonzero_params,
            steps[-1].macs,
            seconds=time.perf_counter() - encode_started,
            details=encoding.as_dict(),
        )
    )
    int8 = last.quantized and not last.report.report.simulated
    before = copy.deepcopy(source.model).cpu().eval() if last.quantized else source.model  # int8 models run on the CPU
    latency = latency_pair(before, final_model, source.example_input().cpu() if last.quantized else source.example_input(), compiled=int8)
    headline = build_headline(
        source,
        final_fp32,
        source.accuracy,
        accuracy_after,
        len(source.dataset.test),
        size_bytes_before=state_dict_size_bytes(source.model),
        size_bytes_after=encoding.zip_bytes,
        size_measure_before=SIZE_MEASURE_BEFORE,
        size_measure=f"model zip ({encoding.zip_compression}: int8 codes and bitmasks in safetensors, entropy-coded)",
        latency=latency,
        nonzero_params_after=steps[-1].nonzero_params,
    )
    details = {"steps": [step.as_dict() for step in steps], "encoding": encoding.as_dict(), "step_run_ids": [step.run_id for step in steps[1:-1]]}
    context.progress(Progress("done", total, total, f"{headline.compression_ratio:.1f}x smaller"))
    return TechniqueResult(
        technique="pipeline",
        config=config.as_dict(),
        headline=headline,
        details=details,
        artifact=Artifact(zip_bytes=zip_bytes, meta={}),
        model=final_model,
        architecture=current.architecture,
        source=source,
        pruned_channels=dict(current.pruned_channels),
        quantized=last.quantized,
        report=steps,
        seconds=time.perf_counter() - started,
        parent_run_id=current.run_id,
    )


def _float_package(source: ModelSource) -> ModelPackage:
    return package_from_model(source.model, source.architecture, source.dataset, {}, source.pruned_channels)


def _package_of(result: TechniqueResult) -> ModelPackage:
    """A quantize step's package: its int8 codes and scales and each layer's input quantization."""
    source = result.source
    return package_from_quantized(source.model, result.report, source.architecture, source.dataset, {}, source.pruned_channels)


def _weigh(name: str, run_id: int | None, model: nn.Module, accuracy: float, package: ModelPackage, source: ModelSource, seconds: float, result: TechniqueResult | None) -> StepResult:
    """Size the step's model in the shared encoding (real bytes of its safetensors file)."""
    encoded_bytes, dense_fp32_bytes = weigh_encoding(package)
    step = StepResult(
        name,
        run_id,
        accuracy,
        encoded_bytes,
        "cheapest encoding per tensor (safetensors, no entropy coding)",
        dense_fp32_bytes,
        count_parameters(model),
        count_nonzero_parameters(model),
        count_macs(model, source.example_input()),
        result.headline.latency_ms_after if result else None,
        result.headline.latency_batch_size if result else None,
        seconds,
    )
    if package.quantized_weights:
        step.nonzero_params = sum(int(torch.count_nonzero(w.codes)) for w in package.quantized_weights.values()) + sum(
            int(torch.count_nonzero(t)) for n, t in package.float_tensors.items() if t.is_floating_point() and n.endswith((".weight", ".bias"))
        )
    return step


def _prefixed(progress: ProgressCallback, label: str, step_index: int, total: int) -> ProgressCallback:
    def report(event: Progress) -> None:
        progress(Progress(event.stage, event.done, event.total, f"{label}: {event.message}".strip(), {**event.metrics, "pipeline_stage": step_index + 1, "pipeline_stages": total}))

    return report

"""The combined pipeline: distill -> prune -> quantize (any of them, in that order), then the
compressed encoding, each step done by its technique module's own function and recorded as a run
whose parent is the previous step.

    options = {**step_option_defaults(), **PRESETS["deep-compression"].options}
    result = run_pipeline(baseline, build_pipeline_config(options, baseline), workspace, progress)

The model after every step is packaged the same way (core.compare.artifact), so the waterfall's
sizes are all real bytes of one encoding; the last bar is the model zip itself, entropy coded, and
its accuracy is measured on the model rebuilt from that zip.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from core import history
from core.baseline import Baseline, BaselineConfig
from core.compare.artifact import EncodingSizes, ModelPackage, evaluate_package, load_model_zip, package_from_model, write_model_zip
from core.compare.sources import package_from_quantized
from core.datasets import Dataset
from core.distillation.race import DistillConfig, distill
from core.errors import UserError
from core.metrics import count_macs, count_nonzero_parameters, count_parameters, measure_latency, measure_model
from core.progress import Progress, ProgressCallback, StopFlag, no_progress
from core.pruning.config import PruneConfig, ScheduleConfig
from core.pruning.lab import run_pruning
from core.pruning.masks import plain_copy
from core.quantization.apply import quantize
from core.quantization.config import QuantizationConfig
from core.quantization.latency import measure_compiled_latency
from core.quantization.runs import save_and_record
from core.training import evaluate
from core.workspace import Workspace, atomic_write_bytes, config_key

STEP_ORDER = ("distill", "prune", "quantize")
LATENCY_BATCH_SIZE = 256
LATENCY_ROUNDS = 3


@dataclass(frozen=True)
class PipelinePreset:
    title: str
    description: str
    options: dict  # step options by flag name (dest), as the CLI spells them


PRESETS: dict[str, PipelinePreset] = {
    "deep-compression": PipelinePreset(
        "Deep Compression style",
        "Prune 90% of the weights (smallest magnitudes, one global threshold), fine-tune with the masks fixed, "
        "quantize to int8 (static, PT2E), then store the nonzero int8 codes with a bitmask and entropy-code the file (Han et al., 2016).",
        {"steps": ("prune", "quantize"), "method": "l1", "granularity": "unstructured", "scope": "global", "amount": 0.9, "finetune_epochs": 1, "iterative_steps": 2, "remove": False, "mode": "static"},
    ),
    "smallest-fast": PipelinePreset(
        "Smallest fast model",
        "Distill the teacher into the student, remove half of its channels (L2 filter norm; the network physically shrinks "
        "to about the narrow student's width), fine-tune, then static int8 so convolutions and linears run on int8 kernels.",
        {"steps": ("distill", "prune", "quantize"), "student": "simple_cnn", "method": "ln", "granularity": "channel", "scope": "layer", "amount": 0.5, "remove": True, "finetune_epochs": 2, "iterative_steps": 1, "mode": "static"},
    ),
}


@dataclass(frozen=True)
class PipelineConfig:
    steps: tuple[str, ...]
    distill: DistillConfig | None = None
    prune: PruneConfig | None = None
    schedule: ScheduleConfig | None = None
    quantize: QuantizationConfig | None = None
    measure_latency: bool = True
    preset: str = "custom"

    def validate(self) -> None:
        check_steps(self.steps)
        for step, config in (("distill", self.distill), ("prune", self.prune), ("quantize", self.quantize)):
            if step in self.steps and config is None:
                raise UserError(f"the {step} step has no settings")
        if self.distill is not None and "distill" in self.steps:
            self.distill.validate()
            if len(self.distill.seeds) != 1:
                raise UserError("a pipeline distills one student; give a single seed (--seeds 1)")
        if self.prune is not None and "prune" in self.steps:
            self.prune.validate()
            (self.schedule or ScheduleConfig()).validate()
        if self.quantize is not None and "quantize" in self.steps:
            self.quantize.validate()
            if self.quantize.mode == "dynamic":
                raise UserError("a pipeline ends in a saved model zip, and dynamic int8 quantizes activations afresh on every call, which a file cannot hold; use static, simulate or qat")

    def as_dict(self) -> dict:
        return {
            "preset": self.preset,
            "steps": list(self.steps),
            "distill": self.distill.as_dict() if self.distill and "distill" in self.steps else None,
            "prune": self.prune.as_dict() if self.prune and "prune" in self.steps else None,
            "schedule": self.schedule.as_dict() if self.schedule and "prune" in self.steps else None,
            "quantize": self.quantize.as_dict() if self.quantize and "quantize" in self.steps else None,
        }


def parse_steps(text: str | tuple | list) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text.split(",") if isinstance(text, str) else text) if part and part.strip())


def check_steps(steps: tuple[str, ...]) -> None:
    if not steps:
        raise UserError(f"choose at least one step from {', '.join(STEP_ORDER)}")
    unknown = [step for step in steps if step not in STEP_ORDER]
    if unknown:
        raise UserError(f"unknown pipeline step '{unknown[0]}'; choose from {', '.join(STEP_ORDER)}")
    if len(set(steps)) != len(steps) or list(steps) != sorted(steps, key=STEP_ORDER.index):
        raise UserError(f"steps run once each, in the order {' -> '.join(STEP_ORDER)}; got {' -> '.join(steps)}")


def build_pipeline_config(options: dict, baseline_model: str, seed: int = 0, epochs: int | None = None, device: str = "auto") -> PipelineConfig:
    """Typed step configs from flag-named options (the CLI's namespace or the page's widgets),
    built by the technique modules' own CLI helpers so a setting means the same everywhere."""
    from core.distillation.cli import config_from_args as distill_config_from_args
    from core.pruning.cli import parse_layers
    from core.quantization.cli import config_from_args as quantize_config_from_args

    steps = parse_steps(options.get("steps") or ())
    check_steps(steps)
    namespace = argparse.Namespace(**{**options, "model": baseline_model, "seed": seed, "epochs": epochs, "device": device})
    distill_config = distill_config_from_args(namespace) if "distill" in steps else None
    prune_config = schedule = None
    if "prune" in steps:
        if options.get("amount") is None:
            raise UserError("the prune step needs an amount (--amount, in [0, 1))")
        prune_config = PruneConfig(options["method"], options["granularity"], float(options["amount"]), options["scope"], parse_layers(options.get("layers") or "all"), remove=bool(options.get("remove")), seed=seed)
        schedule = ScheduleConfig(int(options.get("finetune_epochs") or 0), int(options.get("iterative_steps") or 1))
    quantize_config = None
    if "quantize" in steps:
        if not options.get("mode"):
            raise UserError("the quantize step needs a mode (--mode simulate, dynamic, static or qat)")
        quantize_config = quantize_config_from_args(namespace)
    config = PipelineConfig(steps, distill_config, prune_config, schedule, quantize_config, measure_latency=not options.get("skip_latency"), preset=str(options.get("preset") or "custom"))
    config.validate()
    return config


@dataclass
class StepResult:
    """The model after one step, measured the same way for every step."""

    step: str  # "baseline", "distill", "prune", "quantize" or "encode"
    run_id: int | None
    accuracy: float
    size_bytes: int  # bytes of this step's model in the model-zip encoding, before entropy coding (the zip itself for "encode")
    size_measure: str
    dense_fp32_bytes: int
    params: int
    nonzero_params: int
    macs: int | None
    latency_ms: float | None = None  # as the step's technique measured it (None when it did not)
    latency_batch_size: int | None = None
    seconds: float = 0.0
    details: dict = field(default_factory=dict)  # the technique's own headline figures

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PipelineResult:
    config: PipelineConfig
    steps: list[StepResult]
    accuracy_before: float
    accuracy_after: float  # of the model rebuilt from the zip
    size_bytes_before: int  # the fp32 baseline's safetensors file
    size_bytes_after: int  # the model zip: the honest compressed artifact
    latency_ms_before: float | None
    latency_ms_after: float | None
    latency_batch_size: int
    latency_runtime: str  # how both latencies were measured, in words
    latency_threads: int
    encoding: EncodingSizes
    artifact_path: str
    run_id: int
    baseline_run_id: int | None
    model: nn.Module | None = field(default=None, repr=False)  # the final model (as the last step left it)

    @property
    def compression_ratio(self) -> float:
        return self.size_bytes_before / self.size_bytes_after

    @property
    def speedup(self) -> float | None:
        if self.latency_ms_before and self.latency_ms_after:
            return self.latency_ms_before / self.latency_ms_after
        return None

    def summary(self) -> dict:
        """The CLI's JSON payload and the pipeline run's metrics."""
        return {
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "accuracy_change_points": 100.0 * (self.accuracy_after - self.accuracy_before),
            "size_bytes_before": self.size_bytes_before,
            "size_bytes_after": self.size_bytes_after,
            "compression_ratio": self.compression_ratio,
            "latency_ms_before": self.latency_ms_before,
            "latency_ms_after": self.latency_ms_after,
            "speedup": self.speedup,
            "latency_batch_size": self.latency_batch_size,
            "latency_runtime": self.latency_runtime,
            "latency_threads": self.latency_threads,
            "encoding": self.encoding.as_dict(),
            "steps": [step.as_dict() for step in self.steps],
            "config": self.config.as_dict(),
            "artifact_path": self.artifact_path,
            "run_id": self.run_id,
            "baseline_run_id": self.baseline_run_id,
        }


@dataclass
class _StepInput(Baseline):
    """A step's input model dressed as a Baseline, so each technique's own function can start
    from it (and record its run as that model's child). Its copy keeps the model's real shape."""

    def fresh_copy(self) -> nn.Module:
        return copy.deepcopy(self.model).to(self.device).eval()


class PipelineStopped(UserError):
    """The pipeline was stopped; the steps already finished stay recorded."""


def run_pipeline(baseline: Baseline, config: PipelineConfig, workspace: Workspace, progress: ProgressCallback = no_progress, stop: StopFlag | None = None) -> PipelineResult:
    config.validate()
    quantized_architecture = config.distill.student if "distill" in config.steps else baseline.config.model
    if "quantize" in config.steps and any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in baseline.model.modules()) and quantized_architecture == baseline.config.model:
        raise UserError(f"{baseline.config.model} has batch norm, which int8 conversion folds away, so its quantized model cannot be saved as a model zip; quantize a student (add the distill step) or choose simple_cnn")
    started_at = time.time()
    dataset = baseline.dataset
    total = len(config.steps) + 2  # the steps, the encoding, the latency
    stage = _StepInput(**{f.name: getattr(baseline, f.name) for f in dataclasses.fields(Baseline)})
    stage.model = baseline.fresh_copy()
    pruned_channels: dict[str, list[int]] = {}
    package = _float_package(stage.model, baseline.config.model, dataset, {})
    steps = [_measure_step("baseline", baseline.run_id, stage.model, baseline.evaluation.accuracy, package, baseline.example_input(), 0.0, baseline.metrics.latency_ms, baseline.metrics.latency_batch_size, {"checkpoint": str(baseline.checkpoint)})]

    for index, step in enumerate(config.steps, start=1):
        if stop is not None and stop.is_set():
            raise PipelineStopped(f"the pipeline was stopped before {step}; {index - 1} finished step(s) stay recorded")
        step_progress = _prefixed(progress, f"step {index}/{len(config.steps)} {step}", index - 1, total)
        step_started = time.perf_counter()
        if step == "distill":
            report = distill(config.distill, baseline.config.dataset, workspace, step_progress, stop, dataset=dataset)
            if stage.run_id is not None:
                history.set_parent(workspace.history_db, report.run_id, stage.run_id)  # in a pipeline the student replaces the baseline
            student = report.model.eval()
            stage = _next_stage(stage, student, config.distill.student, report.run_id, Path(report.checkpoint), report.distilled_runs[0].accuracy)
            package = _float_package(student, stage.config.model, dataset, {})
            steps.append(_measure_step("distill", report.run_id, student, stage.evaluation.accuracy, package, baseline.example_input(), time.perf_counter() - step_started, report.student_metrics.latency_ms, report.student_metrics.latency_batch_size,
                                       {"teacher": config.distill.teacher, "student": config.distill.student, "teacher_accuracy": report.teacher_accuracy, "hard_label_accuracy": report.student_accuracy, "gain": report.gain}))
        elif step == "prune":
            final, report = run_pruning(stage, config.prune, config.schedule or ScheduleConfig(), workspace, progress=step_progress, stop=stop)
            if report.pruned_channels and config.prune.remove:
                pruned_channels = {name: list(indices) for name, indices in report.pruned_channels.items()}
            plain = plain_copy(final).eval()  # masks folded into the weights: what the next step quantizes
            stage = _next_stage(stage, plain, stage.config.model, report.run_id, Path(report.artifact_path), report.accuracy_after)
            package = _float_package(plain, stage.config.model, dataset, pruned_channels)
            steps.append(_measure_step("prune", report.run_id, plain, report.accuracy_after, package, baseline.example_input(), time.perf_counter() - step_started, report.latency_ms_after, report.latency_batch_size,
                                       {"sparsity": report.sparsity, "accuracy_oneshot": report.accuracy_oneshot, "size_bytes_sparse": report.size_bytes_sparse, "channels_after": report.channels_after}))
        elif step == "quantize":
            quantized_result = quantize(stage.model, dataset, config.quantize, base_recipe=stage.recipe, progress=step_progress, stop=stop, seed=baseline.config.seed, accuracy_before=stage.evaluation.accuracy)
            run_id, folder = save_and_record(stage, quantized_result, workspace, None)
            package = package_from_quantized(stage.model, quantized_result, stage.config.model, dataset, {}, pruned_channels)
            fp32_input = stage.model
            stage = _next_stage(stage, quantized_result.model, stage.config.model, run_id, folder, quantized_result.report.accuracy_after)
            steps.append(_measure_step("quantize", run_id, fp32_input, quantized_result.report.accuracy_after, package, baseline.example_input(), time.perf_counter() - step_started, None, None,
                                       {"mode": quantized_result.report.mode, "simulated": quantized_result.report.simulated, "deployed_bytes": quantized_result.report.size.deployed_bytes, "artifact_bytes": quantized_result.report.size.artifact_bytes}))

    progress(Progress("encode", total - 2, total, "encoding the model zip"))
    encode_started = time.perf_counter()
    package.info.update({"technique": "pipeline", "accuracy": None, "eval_images": len(dataset.test), "params": config.as_dict(), "baseline_run_id": baseline.run_id})
    rebuilt, rebuilt_package = load_model_zip(write_model_zip(package)[0], "the pipeline's zip")
    accuracy_after = evaluate_package(rebuilt, rebuilt_package, dataset).accuracy  # of the model rebuilt from the zip's bytes
    package.info["accuracy"] = accuracy_after
    zip_bytes, encoding = write_model_zip(package)  # the same weights, now with their measured accuracy
    folder = workspace.checkpoint_dir / "pipelines"
    artifact = folder / f"pipeline-{baseline.config.model}-{config_key({'baseline': baseline.checkpoint.name, 'config': config.as_dict(), 'at': started_at})}.zip"
    atomic_write_bytes(artifact, zip_bytes)
    last = steps[-1]
    steps.append(StepResult("encode", None, accuracy_after, encoding.zip_bytes, f"model zip ({encoding.zip_compression})", last.dense_fp32_bytes, last.params, last.nonzero_params, last.macs, seconds=time.perf_counter() - encode_started, details=encoding.as_dict()))

    progress(Progress("latency", total - 1, total, "timing the baseline and the final model"))
    latency = _latency_pair(baseline, stage.model, config.measure_latency)
    result = PipelineResult(
        config=config, steps=steps, accuracy_before=baseline.evaluation.accuracy, accuracy_after=accuracy_after,
        size_bytes_before=baseline.metrics.size_bytes, size_bytes_after=encoding.zip_bytes,
        latency_ms_before=latency[0], latency_ms_after=latency[1], latency_batch_size=LATENCY_BATCH_SIZE, latency_runtime=latency[2], latency_threads=torch.get_num_threads(),
        encoding=encoding, artifact_path=str(artifact), run_id=-1, baseline_run_id=baseline.run_id, model=stage.model,
    )
    result.run_id = _record(result, baseline, stage, workspace, started_at, artifact)
    progress(Progress("done", total, total, f"{result.compression_ratio:.1f}x smaller"))
    return result


def _float_package(model: nn.Module, architecture: str, dataset: Dataset, pruned_channels: dict[str, list[int]]) -> ModelPackage:
    return package_from_model(model, architecture, dataset, {}, pruned_channels)


def _measure_step(name: str, run_id: int | None, model: nn.Module, accuracy: float, package: ModelPackage, example: torch.Tensor, seconds: float, latency_ms: float | None, latency_batch_size: int | None, details: dict) -> StepResult:
    """Size the step's model in the shared encoding (real bytes of its safetensors file)."""
    _, sizes = write_model_zip(package)
    result = StepResult(
        name, run_id, accuracy, sizes.encoded_bytes, "cheapest encoding per tensor (safetensors, no entropy coding)", sizes.dense_fp32_bytes,
        count_parameters(model), count_nonzero_parameters(model), count_macs(model, example.cpu()) if not isinstance(model, torch.fx.GraphModule) else None,
        latency_ms, latency_batch_size, seconds, details,
    )
    if package.quantized_weights:
        result.nonzero_params = sum(int(torch.count_nonzero(w.codes)) for w in package.quantized_weights.values()) + sum(int(torch.count_nonzero(t)) for n, t in package.float_tensors.items() if t.is_floating_point() and n.endswith((".weight", ".bias")))
    return result


def _next_stage(stage: _StepInput, model: nn.Module, architecture: str, run_id: int, checkpoint: Path, accuracy: float) -> _StepInput:
    """The next step's input: this step's model, its run id (the next run's parent) and accuracy."""
    evaluation = dataclasses.replace(stage.evaluation, accuracy=accuracy)
    if isinstance(model, torch.fx.GraphModule):
        metrics = stage.metrics  # a converted int8 graph is the last step; nothing measures it as a baseline
    else:
        metrics = measure_model(model, accuracy, stage.example_input().to(next(model.parameters()).device))
    return dataclasses.replace(stage, config=dataclasses.replace(stage.config, model=architecture), model=model, metrics=metrics, evaluation=evaluation, checkpoint=checkpoint, run_id=run_id)


def _latency_pair(baseline: Baseline, final: nn.Module, wanted: bool) -> tuple[float | None, float | None, str]:
    """Baseline and final model timed alike: both compiled (inductor) when the final model is an
    int8 graph, both eager otherwise; interleaved rounds, batch LATENCY_BATCH_SIZE."""
    if not wanted:
        return None, None, "not measured (--skip-latency)"
    example = baseline.example_input().cpu()
    fp32 = baseline.fresh_copy().cpu().eval()
    if isinstance(final, torch.fx.GraphModule):
        comparison = measure_compiled_latency(fp32, final, example, batch_size=LATENCY_BATCH_SIZE, rounds=LATENCY_ROUNDS)
        if not comparison.available:
            # Inductor's on-disk cache is shared with other processes; one retry rides out a clash there.
            comparison = measure_compiled_latency(fp32, final, example, batch_size=LATENCY_BATCH_SIZE, rounds=LATENCY_ROUNDS)
        if comparison.available:
            return comparison.fp32_latency_ms, comparison.quantized_latency_ms, f"both compiled ({comparison.runtime}), batch {LATENCY_BATCH_SIZE}, interleaved"
        reason = comparison.reason
    else:
        reason = ""
    before, after = [], []
    for _ in range(LATENCY_ROUNDS):
        before.append(measure_latency(fp32, example, batch_size=LATENCY_BATCH_SIZE).latency_ms)
        after.append(measure_latency(final.cpu(), example, batch_size=LATENCY_BATCH_SIZE).latency_ms)
    runtime = f"both eager PyTorch, batch {LATENCY_BATCH_SIZE}, interleaved" + (f" (compiling was not possible: {reason})" if reason else "")
    return min(before), min(after), runtime


def _record(result: PipelineResult, baseline: Baseline, stage: _StepInput, workspace: Workspace, started_at: float, artifact: Path) -> int:
    summary = result.summary()
    final_step = result.steps[-1]
    metrics = {
        **{key: value for key, value in summary.items() if key not in ("config", "artifact_path", "run_id")},
        "accuracy": result.accuracy_after,
        "size_bytes_compressed": result.size_bytes_after,
        "size_bytes_dense": final_step.dense_fp32_bytes,
        "params": final_step.params,
        "nonzero_params": final_step.nonzero_params,
        "macs": final_step.macs,
        "latency_device": "cpu",
        "before_run_id": baseline.run_id,  # latency_ms_before and accuracy_before are the baseline's
        "eval_images": len(baseline.dataset.test),
    }
    return history.record_run(
        workspace.history_db, technique="pipeline", dataset=baseline.config.dataset.name, model=stage.config.model,
        params=result.config.as_dict(), metrics=metrics, parent_id=stage.run_id, artifact_path=artifact, started_at=started_at,
    )


def _prefixed(progress: ProgressCallback, label: str, step_index: int, total: int) -> ProgressCallback:
    def report(event: Progress) -> None:
        progress(Progress(event.stage, event.done, event.total, f"{label}: {event.message}".strip(), {**event.metrics, "pipeline_stage": step_index + 1, "pipeline_stages": total}))

    return report

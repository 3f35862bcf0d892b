"""What each kind of job does, as a function of its JSON configuration. Runs in a Ray worker.

A technique job's configuration names everything the work depends on, so identical requests are
one job and the worker needs nothing from the page:

    {"source": {"baseline": asdict(BaselineConfig)} or {"run_id": N, "device": "auto"},
     "quantization": QATConfig(...).as_dict(),   # kind "quantize" (any mode; the page queues QAT)
     "distill": DistillConfig(...).as_dict(),     # kind "distill"
     "prune": PruneConfig(...).as_dict(),         # kind "prune" (the Pruning page's fine-tuning run)
     "sweep": SweepSpec(...).as_dict(), "cpus_per_trial": 1,   # kind "sweep" (the Explore page's sweep)
     "seed": source.seed}

Each runs the same core function as the page and the CLI and records the run with core.contract.record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.contract.context import RunContext
from core.foundation.errors import UserError
from core.foundation.progress import ProgressCallback, StopFlag
from core.foundation.workspace import Workspace

if TYPE_CHECKING:
    from core.contract.result import TechniqueResult
    from core.contract.source import ModelSource
    from core.pipeline.techniques import TechniqueConfig


def _baseline_config(fields: dict):
    from core.foundation.baseline.config import BaselineConfig  # torch-free: a job's size is read in the server before it is queued
    from core.foundation.data.names import DatasetSpec

    fields = dict(fields)
    baseline_config = BaselineConfig(DatasetSpec(**fields.pop("dataset")), **fields)
    baseline_config.validate()
    return baseline_config


def train_baseline_job(config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag) -> dict:
    """The sidebar's "Train baseline": the cached baseline for this configuration, trained if missing."""
    from core.foundation.baseline.trained import get_baseline

    baseline = get_baseline(_baseline_config(config), workspace, progress, stop=stop)
    return {"run_id": baseline.run_id, "accuracy": baseline.metrics.accuracy, "checkpoint": str(baseline.checkpoint), "from_cache": baseline.from_cache}


def job_source(source: dict, seed: int, workspace: Workspace, progress: ProgressCallback, stop: StopFlag):
    """The ModelSource a page started from: the sidebar's baseline (by its configuration, as the
    page's from_baseline) or a run of the history (as the page's from_run); `seed` is the page's."""
    from core.contract.source import ModelSource
    from core.foundation.baseline.trained import get_baseline

    if "baseline" in source:
        model_source = ModelSource.from_baseline(get_baseline(_baseline_config(source["baseline"]), workspace, progress, stop=stop))
    else:
        model_source = ModelSource.from_run(workspace, int(source["run_id"]), device=source.get("device", "auto"))
    return dataclasses.replace(model_source, seed=int(seed))


def recorded_technique_run(
    technique: str, technique_config: Callable[[ModelSource], TechniqueConfig], config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag
) -> tuple[TechniqueResult, dict]:
    """What every technique job does: the job's source, `technique` (a name in core.pipeline.techniques)
    run on it with the configuration technique_config(source) reads from the job's (once the source is
    there, so it can be checked against it), and the result recorded. Returns the result and the job's
    answer, {"run_id", "accuracy"}."""
    from core.contract.record import record
    from core.pipeline.techniques import run_technique

    source = job_source(config["source"], config["seed"], workspace, progress, stop)
    result = run_technique(technique, source, technique_config(source), RunContext(workspace, progress, stop))
    return result, {"run_id": record(result, workspace), "accuracy": result.headline.accuracy_after}


def quantization_config_from_dict(fields: dict):
    """A QuantizationConfig back from its as_dict() (the mode says which class)."""
    from core.quantization.config import CONFIG_CLASSES

    fields = dict(fields)
    technique = CONFIG_CLASSES[fields.pop("mode")](**fields)
    technique.validate()
    return technique


def quantize_job(config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag) -> dict:
    """`python -m core quantize`, recorded: on a classroom server the Quantization page's QAT run."""
    _, answer = recorded_technique_run("quantize", lambda source: quantization_config_from_dict(config["quantization"]), config, workspace, progress, stop)
    return answer


def distill_config_from_dict(fields: dict):
    from core.distillation import DistillConfig

    technique = DistillConfig(**{**fields, "seeds": tuple(fields["seeds"])})
    technique.validate()
    return technique


def distill_job(config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag) -> dict:
    """The Distillation page's race (`python -m core distill`), recorded. The report's numbers ride
    along (a few kilobytes: per-seed curves, accuracies, agreement), because the history keeps only
    the first seed's curve and the page draws every seed's."""
    from core.distillation import check_teacher_not_smaller

    def checked_config(source: ModelSource):
        technique = distill_config_from_dict(config["distill"])
        check_teacher_not_smaller(technique, source.dataset)
        return technique

    result, answer = recorded_technique_run("distill", checked_config, config, workspace, progress, stop)
    return {**answer, "report": distill_report_to_dict(result.report)}


def distill_report_to_dict(report) -> dict:
    """A DistillReport as JSON, without its model (which the run's artifact holds)."""
    fields = {field.name: getattr(report, field.name) for field in dataclasses.fields(report) if field.name != "model"}
    return {
        **{name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value for name, value in fields.items()},
        "config": report.config.as_dict(),
        "hard_runs": [dataclasses.asdict(run) for run in report.hard_runs],
        "distilled_runs": [dataclasses.asdict(run) for run in report.distilled_runs],
    }


def distill_report_from_dict(fields: dict):
    """distill_report_to_dict's inverse (model None): what the page shows after a queued race."""
    from core.distillation.report import DistillReport, StudentRun
    from core.foundation.training.records import EpochRecord, ModelMetrics, TrainRecipe

    def student_run(run: dict) -> StudentRun:
        return StudentRun(**{**run, "history": [EpochRecord(**epoch) for epoch in run["history"]]})

    return DistillReport(
        **{
            **fields,
            "config": distill_config_from_dict(fields["config"]),
            "recipe": TrainRecipe(**fields["recipe"]),
            "teacher_metrics": ModelMetrics(**fields["teacher_metrics"]),
            "student_metrics": ModelMetrics(**fields["student_metrics"]),
            "hard_runs": [student_run(run) for run in fields["hard_runs"]],
            "distilled_runs": [student_run(run) for run in fields["distilled_runs"]],
        }
    )


def prune_config_from_dict(fields: dict):
    """A PruneConfig back from its as_dict() ("all" layers, per-layer amounts as a mapping), validated."""
    from core.pruning.config import PruneConfig

    fields = dict(fields)
    layers = fields.pop("layers", "all")
    layer_amounts = fields.pop("layer_amounts", {})
    technique = PruneConfig(**fields, layers=None if layers == "all" else tuple(layers), layer_amounts=tuple((str(layer), float(amount)) for layer, amount in dict(layer_amounts).items()))
    technique.validate()
    return technique


def prune_job(config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag) -> dict:
    """`python -m core prune`, recorded: on a classroom server the Pruning page's "Prune, fine-tune and save"."""
    _, answer = recorded_technique_run("prune", lambda source: prune_config_from_dict(config["prune"]), config, workspace, progress, stop)
    return answer


SWEEP_CANCELLED = "cancelled; the trials that had finished stay in the history"
CANCELLED_LINE = "cancelled; nothing was saved"  # every other kind: a run is recorded only when it finishes


def sweep_job(config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag) -> dict:
    """The Explore page's sweep (`python -m core sweep`): this task drives the trials, which run as
    Ray tasks on the queue's own cluster (core.sweep.engine.connect inside a task), so the cluster's
    CPUs bound the queue's jobs and a sweep's trials together. Each trial is recorded as it finishes,
    as in the page; the page reads them back from the history by the sweep's id."""
    from core.sweep.run import EngineOptions, SweepSpec, run_sweep

    source = job_source(config["source"], config["seed"], workspace, progress, stop)
    state = run_sweep(source, SweepSpec.from_dict(config["sweep"]), RunContext(workspace, progress, stop), EngineOptions(cpus_per_trial=int(config["cpus_per_trial"])))
    if state.stopped:
        raise UserError(SWEEP_CANCELLED)
    recommendation = state.recommendation
    return {"sweep_id": state.sweep_id, "planned": state.planned, "trials_run": state.trials_run, "run_id": recommendation.run_id, "seconds": state.seconds}


@dataclass(frozen=True)
class JobSize:
    """How much work a job asks for, read from its configuration before it is queued."""

    epochs: int | None  # the most epochs one of its trainings takes; None: only presets (sized by the lab for a class)
    trials: int = 1  # a sweep's trials (the most its search may run); 1 for every other kind


def job_size(kind: str, config: dict) -> JobSize:
    """The job's size, its configuration parsed by the same functions its worker runs, so each
    range the configs know (epochs, images, seeds, a grid's trials) is refused here, before the job
    is queued, in the config's own one line naming the limit. A configuration the lab never makes
    (a missing or wrongly typed field) is one line too."""
    try:
        return _job_size(kind, config)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"this {kind} job's configuration is not one the lab makes ({detail[:120]})") from None


def _source_epochs(source: dict) -> int | None:
    if "baseline" in source:
        return _baseline_config(source["baseline"]).epochs
    int(source["run_id"])
    return None


def _largest(*epochs: int | None) -> int | None:
    given = [int(value) for value in epochs if value is not None]
    return max(given) if given else None


def _job_size(kind: str, config: dict) -> JobSize:
    if not isinstance(config, dict):
        raise TypeError("not a mapping")
    if kind == "baseline":
        return JobSize(_baseline_config(config).epochs)
    source_epochs = _source_epochs(config["source"])  # the baseline a page starts from may be trained first
    int(config["seed"])
    if kind == "quantize":
        technique = quantization_config_from_dict(config["quantization"])
        return JobSize(_largest(source_epochs, getattr(technique, "epochs", None) if technique.mode == "qat" else None))
    if kind == "distill":
        technique = distill_config_from_dict(config["distill"])
        return JobSize(_largest(source_epochs, technique.epochs, technique.teacher_epochs))
    if kind == "prune":
        technique = prune_config_from_dict(config["prune"])
        return JobSize(_largest(source_epochs, technique.finetune_epochs or None))
    if kind == "sweep":
        return _sweep_size(config, source_epochs)
    raise UserError(f"unknown job kind '{kind}'; choose one of {', '.join(JOB_KINDS)}")


def _sweep_size(config: dict, source_epochs: int | None) -> JobSize:
    from core.sweep.explore import MAX_CPUS_PER_TRIAL
    from core.sweep.run import SweepSpec

    spec = SweepSpec.from_dict(config["sweep"])  # the grid's axes against the techniques' ranges, at most MAX_TRIALS points
    cpus = int(config["cpus_per_trial"])
    if not 1 <= cpus <= MAX_CPUS_PER_TRIAL:
        raise UserError(f"--cpus-per-trial must be between 1 and {MAX_CPUS_PER_TRIAL}, got {cpus}")
    trials = spec.grid.size if spec.search.kind != "random" else min(spec.grid.size, int(spec.search.count))
    epochs = [int(value) for axis in spec.grid.axes if axis.parameter.endswith("epochs") for value in axis.values if value is not None]
    return JobSize(_largest(source_epochs, *epochs), trials)


JOB_KINDS = {"baseline": train_baseline_job, "quantize": quantize_job, "distill": distill_job, "prune": prune_job, "sweep": sweep_job}
# What a cancelled job left behind, by kind (the queue's line for everyone who asked).
CANCELLED_LINES = {"sweep": SWEEP_CANCELLED}

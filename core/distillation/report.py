"""What a race measured: each student's run, and the comparison over seeds."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from torch import nn

from core.distillation.config import DistillConfig
from core.foundation.measures.metrics import ModelMetrics
from core.foundation.training.loop import EpochRecord, TrainRecipe


@dataclass
class StudentRun:
    """One student trained once: its curve, its final test accuracy and how often it agrees with the teacher."""

    kind: str  # HARD or DISTILLED
    seed: int
    history: list[EpochRecord]
    train_seconds: float  # training steps only (no evaluation)
    accuracy: float
    per_class_accuracy: list[float]
    teacher_agreement: float  # fraction of test images where its top class is the teacher's
    per_class_agreement: list[float]  # the same, per true class

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / max(1, len(self.history))


@dataclass
class DistillReport:
    config: DistillConfig
    dataset_name: str
    class_names: list[str]
    recipe: TrainRecipe  # the students' shared recipe
    teacher_metrics: ModelMetrics
    student_metrics: ModelMetrics  # the distilled student of the first seed (size, MACs and latency are the same for both students)
    hard_runs: list[StudentRun]
    distilled_runs: list[StudentRun]
    teacher_logits_cached: bool
    teacher_note: str  # how the teacher's logits were obtained, in one sentence
    teacher_logits_seconds: float  # time to compute (or load from the workspace) the cache; 0 when the teacher runs per batch
    checkpoint: str  # the distilled student of the first seed, once recorded
    run_id: int | None = None
    model: nn.Module | None = field(default=None, repr=False)  # that distilled student
    teacher_run_id: int | None = None
    teacher_checkpoint: str = ""

    @property
    def teacher_accuracy(self) -> float:
        return self.teacher_metrics.accuracy

    @property
    def student_accuracy(self) -> float:
        return statistics.fmean(run.accuracy for run in self.hard_runs)

    @property
    def distilled_accuracy(self) -> float:
        return statistics.fmean(run.accuracy for run in self.distilled_runs)

    @property
    def gains(self) -> list[float]:
        """Distilled minus hard-label accuracy, seed by seed (same seed, same data order)."""
        return [d.accuracy - h.accuracy for h, d in zip(self.hard_runs, self.distilled_runs)]

    @property
    def gain(self) -> float:
        return statistics.fmean(self.gains)

    @property
    def gain_std(self) -> float:
        """Sample standard deviation of the gain over seeds; NaN with a single seed (no spread to measure)."""
        return statistics.stdev(self.gains) if len(self.gains) > 1 else float("nan")

    @property
    def teacher_agreement(self) -> float:
        return statistics.fmean(run.teacher_agreement for run in self.distilled_runs)

    @property
    def hard_teacher_agreement(self) -> float:
        return statistics.fmean(run.teacher_agreement for run in self.hard_runs)

    @property
    def epoch_time_ratio(self) -> float:
        """Distilled over hard-label training time per epoch (teacher cache build not included)."""
        hard = sum(run.train_seconds for run in self.hard_runs)
        return sum(run.train_seconds for run in self.distilled_runs) / hard if hard else float("nan")

    def summary(self) -> dict:
        """The CLI's JSON payload."""
        return {
            "dataset": self.dataset_name,
            "teacher": self.config.teacher,
            "student": self.config.student,
            "temperature": self.config.temperature,
            "alpha": self.config.alpha,
            "seeds": list(self.config.seeds),
            "recipe": self.recipe.as_dict(),
            "teacher_accuracy": self.teacher_accuracy,
            "student_accuracy": self.student_accuracy,
            "distilled_accuracy": self.distilled_accuracy,
            "gain": self.gain,
            "gain_std": self.gain_std,
            "gains": self.gains,
            "student_accuracies": [run.accuracy for run in self.hard_runs],
            "distilled_accuracies": [run.accuracy for run in self.distilled_runs],
            "teacher_size_bytes": self.teacher_metrics.size_bytes,
            "student_size_bytes": self.student_metrics.size_bytes,
            "teacher_params": self.teacher_metrics.params,
            "student_params": self.student_metrics.params,
            "teacher_macs": self.teacher_metrics.macs,
            "student_macs": self.student_metrics.macs,
            "teacher_latency_ms": self.teacher_metrics.latency_ms,
            "student_latency_ms": self.student_metrics.latency_ms,
            "teacher_agreement": self.teacher_agreement,
            "student_teacher_agreement": self.hard_teacher_agreement,
            "per_class_agreement": statistics_per_class([run.per_class_agreement for run in self.distilled_runs]),
            "student_per_class_agreement": statistics_per_class([run.per_class_agreement for run in self.hard_runs]),
            "teacher_logits_cached": self.teacher_logits_cached,
            "teacher_note": self.teacher_note,
            "teacher_logits_seconds": self.teacher_logits_seconds,
            "student_seconds_per_epoch": statistics.fmean(run.seconds_per_epoch for run in self.hard_runs),
            "distilled_seconds_per_epoch": statistics.fmean(run.seconds_per_epoch for run in self.distilled_runs),
            "epoch_time_ratio": self.epoch_time_ratio,
            "teacher_run_id": self.teacher_run_id,
        }


def statistics_per_class(rows: list[list[float]]) -> list[float]:
    """Mean over seeds, class by class."""
    return [statistics.fmean(values) for values in zip(*rows)]

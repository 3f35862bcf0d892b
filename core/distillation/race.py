"""The race: one student trained on hard labels, the same student distilled from a teacher, with
the same initial weights, data order, epochs and optimiser, over one or more seeds."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from core.distillation.config import DISTILLED, HARD, DistillConfig, check_teacher_not_smaller, student_dataset, student_recipe, teacher_config
from core.distillation.loss import distillation_loss
from core.distillation.report import DistillReport, StudentRun
from core.distillation.teacher_logits import TeacherLogitCache, teacher_logit_source, teacher_test_logits
from core.foundation.baseline.trained import Baseline, TrainingStopped, get_baseline
from core.foundation.data.datasets import Dataset, DatasetSpec, load_dataset
from core.foundation.measures.metrics import measure_model
from core.foundation.models.registry import build_model
from core.foundation.progress import Progress, ProgressCallback, StopFlag, no_progress
from core.foundation.training.loop import EpochRecord, predict_logits, resolve_device, train_model
from core.foundation.training.quick_evaluation import EVAL_SUBSET_SIZE, evaluation_subset
from core.foundation.workspace import Workspace

# Called after every finished epoch with (HARD or DISTILLED, seed, that epoch's record).
EpochCallback = Callable[[str, int, EpochRecord], None]


def get_teacher(
    config: DistillConfig, dataset_spec: DatasetSpec, workspace: Workspace, progress: ProgressCallback = no_progress, stop: StopFlag | None = None, dataset: Dataset | None = None
) -> Baseline:
    """The teacher, from the workspace cache, or trained now (once) with live progress."""
    return get_baseline(teacher_config(config, dataset_spec), workspace, _renamed(progress, "teacher", "teacher"), stop, dataset)


def run_race(
    config: DistillConfig,
    dataset_spec: DatasetSpec,
    workspace: Workspace,
    progress: ProgressCallback = no_progress,
    stop: StopFlag | None = None,
    dataset: Dataset | None = None,
    on_epoch: EpochCallback | None = None,
) -> DistillReport:
    """Race a hard-label student against a distilled one for each seed, keep the first seed's
    distilled student, and report both students against the teacher. Records nothing."""
    config.validate()
    dataset = dataset or load_dataset(dataset_spec, workspace, progress)
    check_teacher_not_smaller(config, dataset)
    recipe = student_recipe(config, dataset)
    teacher = get_teacher(config, dataset_spec, workspace, progress, stop, dataset)
    device = resolve_device(config.device)
    teacher.model.to(device).eval()

    logits_start = time.perf_counter()
    source, note = teacher_logit_source(teacher, dataset, recipe, device, workspace)
    teacher_logits_seconds = time.perf_counter() - logits_start if isinstance(source, TeacherLogitCache) else 0.0
    teacher_test_predictions = teacher_test_logits(teacher, dataset, device, workspace).argmax(1)
    full_dataset = dataset
    dataset, kept = student_dataset(config, dataset)
    if kept is not None:
        # The teacher's cached logits cover every training image; the students' batches index their subset.
        if isinstance(source, TeacherLogitCache):
            source = TeacherLogitCache(source.plain[kept.to(source.plain.device)], None if source.flipped is None else source.flipped[kept.to(source.flipped.device)])
        note += f" Both students train on the same {len(kept):,} labelled images ({len(kept) / len(full_dataset.train):.0%} of the training set); the teacher saw all {len(full_dataset.train):,}."

    hard_runs, distilled_runs = [], []
    first_distilled: nn.Module | None = None
    for seed in config.seeds:
        hard_runs.append(_train_student(HARD, seed, config, dataset, recipe, device, None, teacher_test_predictions, progress, stop, on_epoch)[0])
        loss = distillation_loss(source, config.temperature, config.alpha, recipe.label_smoothing)
        run, model = _train_student(DISTILLED, seed, config, dataset, recipe, device, loss, teacher_test_predictions, progress, stop, on_epoch)
        distilled_runs.append(run)
        if first_distilled is None:
            first_distilled = model

    example_input = dataset.normalize(dataset.test.images[:1]).to(device)
    student_metrics = measure_model(first_distilled, distilled_runs[0].accuracy, example_input)
    report = DistillReport(
        config,
        dataset_spec.name,
        dataset.class_names,
        recipe,
        teacher.metrics,
        student_metrics,
        hard_runs,
        distilled_runs,
        isinstance(source, TeacherLogitCache),
        note,
        teacher_logits_seconds,
        "",
        None,
        first_distilled,
    )
    report.teacher_run_id = teacher.run_id
    report.teacher_checkpoint = str(teacher.checkpoint)
    return report


def _train_student(kind, seed, config, dataset, recipe, device, loss_fn, teacher_predictions, progress, stop, on_epoch) -> tuple[StudentRun, nn.Module]:
    torch.manual_seed(seed)  # both students of a seed start from the same weights
    model = build_model(config.student, dataset.channels, dataset.image_size, dataset.num_classes)
    label = f"{'hard-label' if kind == HARD else 'distilled'} student, seed {seed}"
    # The learning curve is drawn on the quick evaluator's class-balanced subset: a few-labels race
    # runs 40 short epochs, and 40 passes over a 10,000-image test set would double its time. The
    # final accuracy below is on the full test split.
    curve_dataset = evaluation_subset(dataset) if len(dataset.test) > EVAL_SUBSET_SIZE else dataset
    result = train_model(model, curve_dataset, recipe, device, seed, _epoch_watcher(_renamed(progress, kind, label), kind, seed, on_epoch), stop, loss_fn=loss_fn, stage=kind)
    if result.stopped:
        raise TrainingStopped(f"the race was stopped during the {label}; nothing was saved")
    logits = predict_logits(model, dataset, dataset.test, device)
    predictions = logits.argmax(1)
    labels = dataset.test.labels
    agrees = (predictions == teacher_predictions.to(predictions.device)).float()
    per_class_accuracy, per_class_agreement = [], []
    for c in range(dataset.num_classes):
        in_class = labels == c
        count = max(1, int(in_class.sum()))
        per_class_accuracy.append(float((predictions[in_class] == c).sum()) / count)
        per_class_agreement.append(float(agrees[in_class].sum()) / count)
    accuracy = float((predictions == labels).float().mean())
    return StudentRun(kind, seed, result.history, result.train_seconds, accuracy, per_class_accuracy, float(agrees.mean()), per_class_agreement), model


def _renamed(progress: ProgressCallback, stage: str, label: str) -> ProgressCallback:
    def report(event: Progress) -> None:
        progress(Progress(stage, event.done, event.total, f"{label}: {event.message}".strip(), event.metrics))

    return report


def _epoch_watcher(progress: ProgressCallback, kind: str, seed: int, on_epoch: EpochCallback | None) -> ProgressCallback:
    """Pass progress on, and turn train_model's end-of-epoch report (the one with test_accuracy) into an EpochRecord."""
    epoch_started = [time.perf_counter()]

    def report(event: Progress) -> None:
        progress(event)
        if on_epoch is not None and "test_accuracy" in event.metrics:
            now = time.perf_counter()
            metrics = event.metrics
            on_epoch(kind, seed, EpochRecord(metrics["epoch"], metrics["loss"], metrics["running_accuracy"], metrics["test_accuracy"], now - epoch_started[0]))
            epoch_started[0] = now

    return report

"""The distillation technique: the source is the model to replace; a student (a smaller
architecture) is raced on hard labels against the same student taught by a teacher, and the
distilled student of the first seed is the result, measured against the source.

    result = distill(source, DistillConfig(teacher="teacher", student="simple_cnn_narrow"), context)
"""

from __future__ import annotations

import time
from dataclasses import asdict

from core.contract.context import RunContext
from core.contract.result import Artifact, TechniqueResult, build_headline, latency_pair
from core.contract.source import ModelSource
from core.distillation.config import DistillConfig
from core.distillation.race import EpochCallback, run_race
from core.foundation.measures.metrics import state_dict_size_bytes

SIZE_MEASURE = "fp32 safetensors file"


def distill(source: ModelSource, config: DistillConfig, context: RunContext, on_epoch: EpochCallback | None = None) -> TechniqueResult:
    """Run the race on the source's dataset; the first seed's distilled student replaces the source."""
    started = time.perf_counter()
    config.validate()
    source.check_compressible("distillation")
    report = run_race(config, source.dataset_spec, context.workspace, context.progress, context.stop, dataset=source.dataset, on_epoch=on_epoch)
    student = report.model.eval()
    dataset = source.dataset
    latency = latency_pair(source.model, student, source.example_input())
    headline = build_headline(
        source,
        student,
        source.accuracy,
        report.distilled_runs[0].accuracy,
        len(dataset.test),
        size_bytes_before=source.size_bytes(),
        size_bytes_after=state_dict_size_bytes(student),
        size_measure_before=SIZE_MEASURE,
        size_measure=SIZE_MEASURE,
        latency=latency,
    )
    details = report.summary()
    meta = {
        "dataset_summary": dataset.summary(),
        "distillation": config.as_dict(),
        "recipe": report.recipe.as_dict(),
        "seed": config.seeds[0],
        "metrics": report.student_metrics.as_dict(),
        "history": [asdict(record) for record in report.distilled_runs[0].history],
        "teacher_checkpoint": report.teacher_checkpoint,
        "teacher_run_id": report.teacher_run_id,
    }
    return TechniqueResult(
        technique="distill",
        config={**config.as_dict(), "recipe": report.recipe.as_dict(), "teacher_run_id": report.teacher_run_id},
        headline=headline,
        details=details,
        artifact=Artifact(tensors=dict(student.state_dict()), meta=meta),
        model=student,
        architecture=config.student,
        source=source,
        report=report,
        seconds=time.perf_counter() - started,
    )

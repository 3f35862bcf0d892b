"""A quantize run read back from the history and its file, as the TechniqueResult a page keeps
after making the run itself. A classroom server runs QAT in its job queue (core.jobs.kinds), in
another process: the page that asked gets back only the run's id, and shows the run from here.

    result = recorded_quantization(workspace, source, run_id)

What the file cannot give back: the fp32 weights the run quantized (the report's reference
weights are empty, so a histogram shows the levels alone), and an int8 graph comes back as its
eager fake-quantized twin (the same predictions, not the same kernels: not to be timed again)."""

from __future__ import annotations

import dataclasses

import torch

from core.contract.predictions import package_for_any_run
from core.contract.result import Artifact, Headline, TechniqueResult
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.training.records import EpochRecord
from core.foundation.workspace import Workspace, load_checkpoint
from core.quantization.apply import LayerReport, QuantizationReport, QuantizationResult
from core.quantization.fake_quant import QuantizedTensor, QuantSpec
from core.quantization.size import SizeReport

REBUILT = "rebuilt from the run's file"  # Artifact.meta["origin"] of a run read back, not made in this process


def recorded_quantization(workspace: Workspace, source: ModelSource, run_id: int) -> TechniqueResult:
    """The quantize run `run_id` (a child of `source`): report and headline as recorded, the model
    and the integer codes from its file."""
    run = history.get_run(workspace.history_db, run_id)
    if run is None:
        raise UserError(f"run #{run_id}, which the queued job recorded, is no longer in the history; press the run button to run it again")
    path = workspace.resolve_artifact(run.artifact_path)
    loaded = load_checkpoint(path) if path is not None else None
    if loaded is None:
        raise UserError(f"run #{run_id}: {path} holds no complete checkpoint")
    report = quantization_report_from_dict(loaded[1]["report"])
    package = package_for_any_run(workspace, run, source.dataset)
    model = package.build_model().eval()
    quantized = {name.removesuffix(".weight"): quantized_tensor(weight, report.config["bits"]) for name, weight in package.quantized_weights.items()}
    headline = Headline(**{field.name: run.metrics[field.name] for field in dataclasses.fields(Headline) if field.name in run.metrics})
    return TechniqueResult(
        technique="quantize",
        config=report.config,
        headline=headline,
        details=run.metrics.get("details", {}),
        artifact=Artifact(meta={"origin": REBUILT}, path=path),
        model=model,
        architecture=run.model,
        source=source,
        pruned_channels=dict(source.pruned_channels),
        quantized=True,
        report=QuantizationResult(model, report, {}, quantized, {}),
        seconds=float(run.metrics.get("seconds", 0.0)),
        run_id=run.id,
    )


def is_rebuilt(result: TechniqueResult) -> bool:
    """Whether `result` was read back by recorded_quantization (so its model is not the one timed)."""
    return result.artifact.meta.get("origin") == REBUILT


def quantization_report_from_dict(fields: dict) -> QuantizationReport:
    """QuantizationReport.as_dict()'s inverse (the derived figures it adds are dropped)."""
    names = {field.name for field in dataclasses.fields(QuantizationReport)}
    kept = {name: value for name, value in fields.items() if name in names}
    return QuantizationReport(
        **{**kept, "size": SizeReport(**kept["size"]), "layers": [LayerReport(**layer) for layer in kept["layers"]], "train_history": [EpochRecord(**epoch) for epoch in kept.get("train_history", [])]}
    )


def quantized_tensor(weight, bits: int) -> QuantizedTensor:
    """A saved weight's codes (core.contract.predictions.QuantizedWeight) as the QuantizedTensor the
    charts read: one scale per channel when it has several, symmetric when it has no zero point."""
    symmetric = weight.zero_point is None
    zero_point = torch.zeros_like(weight.scale, dtype=torch.int32) if symmetric else weight.zero_point
    return QuantizedTensor(weight.codes, weight.scale, zero_point, QuantSpec(bits, weight.scale.numel() > 1, symmetric))

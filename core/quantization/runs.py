"""Saving a quantization result (safetensors + JSON metadata) and recording it in the run history;
shared by the CLI and the page so both leave the same trace."""

from __future__ import annotations

from pathlib import Path

from core import history
from core.baseline import Baseline
from core.quantization.apply import QuantizationResult
from core.quantization.latency import LatencyComparison
from core.workspace import Workspace, config_key, save_checkpoint

ARTIFACT_FORMAT = (
    "per quantized weight W: W.codes (int8 symmetric / uint8 affine, `bits` used of each), W.scale (fp32, per channel or per tensor), "
    "W.zero_point (int32, affine only; value = (code - zero_point) * scale); LAYER.input_scale / input_zero_point for quantized activations; other tensors fp32 as in the model"
)


def artifact_folder(baseline: Baseline, result: QuantizationResult, workspace: Workspace) -> Path:
    report = result.report
    key = config_key({"baseline": baseline.checkpoint.name, "config": report.config, "eval_images": report.eval_images})
    return workspace.checkpoint_dir / f"{baseline.config.model}-quantize-{report.mode}-{key}"


def run_metrics(result: QuantizationResult, latency: LatencyComparison | None) -> dict:
    report = result.report
    return {
        "accuracy_before": report.accuracy_before,
        "accuracy_after": report.accuracy_after,
        "post_training_accuracy": report.post_training_accuracy,
        "eval_images": report.eval_images,
        "size_bytes_before": report.size_bytes_before,
        "size_bytes_after": report.size_bytes_after,
        "artifact_bytes_before": report.artifact_bytes_before,
        "artifact_bytes_after": report.size.artifact_bytes,
        "compression_ratio": report.compression_ratio,
        "simulated": report.simulated,
        "quantized_layers": report.quantized_layers,
        "fp32_layers": report.fp32_layers,
        "latency_ms_fp32": latency.fp32_latency_ms if latency else None,
        "latency_ms_quantized": latency.quantized_latency_ms if latency else None,
        "latency_batch_size": latency.batch_size if latency and latency.available else None,
        "latency_threads": latency.threads if latency and latency.available else None,
        "latency_device": "cpu" if latency and latency.available else None,
        "latency_runtime": latency.runtime if latency and latency.available else None,
        "latency_unavailable_reason": latency.reason if latency and not latency.available else None,
        "speedup": latency.speedup if latency else None,
        "quantize_seconds": report.quantize_seconds,
    }


def save_and_record(baseline: Baseline, result: QuantizationResult, workspace: Workspace, latency: LatencyComparison | None = None) -> tuple[int, Path]:
    """Write the artifact and one history row (child of the baseline's run); returns (run id, folder)."""
    folder = artifact_folder(baseline, result, workspace)
    metrics = run_metrics(result, latency)
    run_id = history.record_run(
        workspace.history_db,
        technique="quantize",
        dataset=baseline.config.dataset.name,
        model=baseline.config.model,
        params={**result.report.config, "eval_images": result.report.eval_images, "method": result.report.method},
        metrics=metrics,
        parent_id=baseline.run_id,
        artifact_path=folder,
    )
    meta = {
        "technique": "quantize",
        "run_id": run_id,
        "baseline_checkpoint": str(baseline.checkpoint),
        "architecture": baseline.config.model,
        "format": ARTIFACT_FORMAT,
        "report": result.report.as_dict(),
        "latency": latency.as_dict() if latency else None,
    }
    save_checkpoint(folder, result.artifact_tensors, meta)
    return run_id, folder

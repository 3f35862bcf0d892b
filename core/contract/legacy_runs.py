"""Runs recorded before the technique contract (history rows without `headline_version`).

Each technique then recorded its own metric names (prune: `accuracy_after`, `size_bytes_sparse`,
`latency_ms_after`...). This module reads them through one explicit list per figure, exactly as the
compare page did then, so an old workspace shows the same numbers after the upgrade. New runs carry
core.contract.result's headline and never come here.
"""

from __future__ import annotations

from core.foundation.history import RunRecord

# Accuracy of the run's final model, most specific first.
ACCURACY_KEYS = ("accuracy_after", "accuracy")
# Bytes of a real file or encoding of the run's final model (each measured on real bytes, never
# estimated); the run's size is the smallest one recorded, its honest best artifact.
ARTIFACT_SIZE_KEYS = (
    "size_bytes_compressed",
    "compressed_bytes",
    "artifact_bytes",
    "artifact_bytes_after",
    "size_bytes_gzip",
    "size_bytes_sparse",
    "size_bytes_bitmask",
    "size_bytes_csr",
    "size_bytes_dense",
    "size_bytes",
)
DENSE_SIZE_KEYS = ("size_bytes_dense", "size_bytes")  # fp32 safetensors of the effective weights
LATENCY_KEYS = ("latency_ms_after", "latency_ms_quantized", "latency_ms")
# The latency of the run's input model, measured interleaved in the same process as the run's own.
LATENCY_BEFORE_KEYS = ("latency_ms_before", "latency_ms_fp32")
ACCURACY_BEFORE_KEYS = ("accuracy_before",)


def legacy_figures(run: RunRecord) -> dict:
    """A RunSummary's figures (all but the history row's own identity fields) from old metric names."""
    metrics = run.metrics
    sizes = {key: metrics[key] for key in ARTIFACT_SIZE_KEYS if _number(metrics.get(key))}
    size_measure = min(sizes, key=lambda key: sizes[key]) if sizes else ""
    return dict(
        accuracy=_first(metrics, ACCURACY_KEYS),
        size_bytes=int(sizes[size_measure]) if size_measure else None,
        size_measure=size_measure,
        dense_size_bytes=_int(_first(metrics, DENSE_SIZE_KEYS)),
        params=_int(metrics.get("params")),
        nonzero_params=_int(metrics.get("nonzero_params")),
        macs=_int(metrics.get("macs")),
        latency_ms=_first(metrics, LATENCY_KEYS),
        latency_batch_size=_int(metrics.get("latency_batch_size") or metrics.get("batch_size")),
        latency_device=metrics.get("latency_device"),
        latency_runtime=str(metrics.get("latency_runtime") or "torch eager"),
        latency_ms_single=None,
        latency_threads=_int(metrics.get("latency_threads") or metrics.get("threads")),
        latency_ms_before=_first(metrics, LATENCY_BEFORE_KEYS),
        accuracy_before=_first(metrics, ACCURACY_BEFORE_KEYS),
        before_run_id=_int(metrics.get("before_run_id", run.parent_id)),
        eval_images=_int(metrics.get("eval_images")),
        run_params=run.params,
        artifact_path=run.artifact_path,
        pipeline_steps=[step for step in metrics.get("steps", []) if isinstance(step, dict)] if isinstance(metrics.get("steps"), list) else [],
    )


def _first(metrics: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if _number(metrics.get(key)):
            return float(metrics[key])
    return None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _int(value) -> int | None:
    return int(value) if _number(value) else None

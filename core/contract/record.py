"""The one place that writes a technique's result: its artifact into the workspace, then its row in
the run history (child of the run it started from). Techniques never save by themselves, so a page,
the CLI, the pipeline and a sweep leave the same trace.

Order matters: the artifact is written first (atomically), the history row last, in one INSERT. A
crash in between leaves an unlisted folder, never a listed run without its model.
"""

from __future__ import annotations

import time

from core.contract.result import TechniqueResult
from core.foundation import history
from core.foundation.workspace import Workspace, atomic_write_bytes, config_key, save_checkpoint


def artifact_name(result: TechniqueResult, started_at: float) -> str:
    key = config_key({"source": result.source.checkpoint, "source_run": result.source.run_id, "config": result.config, "at": started_at})
    return f"{result.technique}-{result.architecture}-{key}"


def record(result: TechniqueResult, workspace: Workspace, started_at: float | None = None, extra_params: dict | None = None) -> int:
    """Write the result's artifact and one history row; returns the new run id (also set on the result).
    `extra_params` joins the row's params (a sweep's id, trial key and point)."""
    started_at = started_at if started_at is not None else time.time() - result.seconds
    name = artifact_name(result, started_at)
    meta = {
        **result.artifact.meta,
        "technique": result.technique,
        "architecture": result.architecture,
        "dataset": result.source.dataset_spec.as_dict(),
        "source_run_id": result.source.run_id,
        "headline": result.headline.as_dict(),
    }
    if result.artifact.zip_bytes is not None:
        path = workspace.checkpoint_dir / "pipelines" / f"{name}.zip"
        atomic_write_bytes(path, result.artifact.zip_bytes)
    else:
        path = workspace.checkpoint_dir / name
        save_checkpoint(path, result.artifact.tensors, meta)
    result.artifact.path = path
    source = result.source
    params = {**result.config, "dataset": source.dataset_spec.as_dict(), "source_run_id": source.run_id, "lineage": list(source.lineage), "seed": source.seed, **(extra_params or {})}
    metrics = {
        **_numbers(result.details),
        **result.headline.as_dict(),
        "accuracy": result.headline.accuracy_after,
        "params": result.headline.params_after,
        "nonzero_params": result.headline.nonzero_params_after,
        "macs": result.headline.macs_after,
        "before_run_id": source.run_id,  # the *_before figures are of the source's model
        "details": result.details,
        "seconds": result.seconds,
    }
    result.run_id = history.record_run(
        workspace.history_db,
        technique=result.technique,
        dataset=source.dataset_spec.name,
        model=result.architecture,
        params=params,
        metrics=metrics,
        parent_id=result.parent_run_id if result.parent_run_id is not None else source.run_id,
        artifact_path=workspace.relative_artifact(path),
        started_at=started_at,
    )
    if result.quantized and result.model is not None:
        # An int8 graph is rebuilt from its file only approximately (fake-quantized eager layers), so
        # the predictions a comparison reads are taken from the very model that was measured.
        from core.contract.predictions import store_predictions

        store_predictions(workspace, result.run_id, result.model, source.dataset)
    return result.run_id


def _numbers(details: dict) -> dict:
    """The details' top-level numbers, beside the headline, so the run table can show them."""
    return {key: value for key, value in details.items() if isinstance(value, (int, float, str)) and not isinstance(value, bool)}

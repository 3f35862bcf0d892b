"""What each kind of job does, as a function of its JSON configuration. Runs in a Ray worker."""

from __future__ import annotations

from core.progress import ProgressCallback, StopFlag
from core.workspace import Workspace


def train_baseline_job(config: dict, workspace: Workspace, progress: ProgressCallback, stop: StopFlag) -> dict:
    """The sidebar's "Train baseline": the cached baseline for this configuration, trained if missing."""
    from core.baseline import BaselineConfig, get_baseline
    from core.datasets import DatasetSpec

    fields = dict(config)
    baseline_config = BaselineConfig(DatasetSpec(**fields.pop("dataset")), **fields)
    baseline_config.validate()
    baseline = get_baseline(baseline_config, workspace, progress, stop=stop)
    return {"run_id": baseline.run_id, "accuracy": baseline.metrics.accuracy, "checkpoint": str(baseline.checkpoint), "from_cache": baseline.from_cache}


JOB_KINDS = {"baseline": train_baseline_job}

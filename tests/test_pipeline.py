"""The pipeline is a loop over techniques (core.pipeline.run): each step starts from the model the
step before made and is recorded as that step's child; the pipeline's own result starts from the
pipeline's source, and once recorded is the child of the last step."""

from __future__ import annotations

import json
import threading

import pytest

from core.cli.main import main
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.measures.metrics import state_dict_size_bytes
from core.pipeline import PipelineStopped, build_pipeline_config, pipeline_options, run_pipeline
from core.pruning import PruneConfig, prune


@pytest.fixture(scope="module")
def pruned_source(session_workspace, digits_baseline) -> ModelSource:
    """A recorded run that is not the baseline (a quarter of its channels removed), read back as a
    source: a pipeline started from it must report its figures, not the baseline's."""
    result = prune(ModelSource.from_baseline(digits_baseline), PruneConfig(method="ln", granularity="channel", amount=0.25, remove=True), RunContext(session_workspace))
    return ModelSource.from_run(session_workspace, record(result, session_workspace), device="cpu")


def test_each_step_starts_from_the_step_before(session_workspace, digits_baseline, pruned_source):
    db = session_workspace.history_db
    options = pipeline_options(None, {"steps": "prune,quantize", "granularity": "unstructured", "amount": 0.5, "mode": "simulate", "bits": 4})
    config = build_pipeline_config(options, pruned_source.architecture)
    runs_before = history.count_runs(db)
    result = run_pipeline(pruned_source, config, RunContext(session_workspace))
    assert history.count_runs(db) == runs_before + 2  # each step recorded inside; the pipeline's own result not yet
    assert result.run_id is None and result.details["step_run_ids"] == [step.run_id for step in result.report[1:3]]
    pipeline_id = record(result, session_workspace)

    steps = result.report
    assert [step.step for step in steps] == ["baseline", "prune", "quantize", "encode"]
    assert steps[0].run_id == pruned_source.run_id and steps[0].accuracy == pruned_source.accuracy
    prune_row, quantize_row = (history.get_run(db, step.run_id) for step in steps[1:3])
    pipeline_row = history.get_run(db, pipeline_id)
    # Parents: source -> prune step -> quantize step -> pipeline.
    assert (prune_row.technique, quantize_row.technique, pipeline_row.technique) == ("prune", "quantize", "pipeline")
    assert prune_row.parent_id == pruned_source.run_id
    assert quantize_row.parent_id == prune_row.id
    assert pipeline_row.parent_id == quantize_row.id == result.parent_run_id
    assert [run.id for run in history.lineage(db, pipeline_id)] == [*pruned_source.lineage, prune_row.id, quantize_row.id, pipeline_id]
    # Each step's "before" is the step before's "after": the loop hands the model on.
    assert prune_row.metrics["before_run_id"] == pruned_source.run_id and quantize_row.metrics["before_run_id"] == prune_row.id
    assert prune_row.metrics["params_before"] == pruned_source.params() and prune_row.metrics["accuracy_before"] == pytest.approx(pruned_source.accuracy)
    assert quantize_row.metrics["params_before"] == prune_row.metrics["params_after"]
    assert quantize_row.metrics["accuracy_before"] == pytest.approx(prune_row.metrics["accuracy_after"])
    # The quantize step counts parameters on its fp32 input: the prune step's zeros are there.
    assert quantize_row.metrics["nonzero_params_after"] == prune_row.metrics["nonzero_params_after"] < prune_row.metrics["params_after"]
    # The pipeline's headline "before" is its source (a pruned run), not the root baseline.
    headline = result.headline
    assert headline.accuracy_before == pruned_source.accuracy
    assert headline.size_bytes_before == state_dict_size_bytes(pruned_source.model) < digits_baseline.metrics.size_bytes
    assert headline.params_before == pruned_source.params() < digits_baseline.metrics.params
    assert headline.macs_before == pruned_source.macs()
    assert pipeline_row.metrics["before_run_id"] == pruned_source.run_id and pipeline_row.params["lineage"] == list(pruned_source.lineage)
    assert headline.accuracy_after == steps[-1].accuracy and headline.size_bytes_after == steps[-1].size_bytes == result.artifact.path.stat().st_size


def test_the_pipeline_command_starts_from_a_run(session_workspace, pruned_source, capsys):
    db = session_workspace.history_db
    status = main(["pipeline", "--workspace", str(session_workspace.root), "--from-run", str(pruned_source.run_id), "--steps", "prune", "--amount", "0.3", "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    payload = json.loads(captured.out.strip().splitlines()[-1])
    step_id = payload["step_run_ids"][0]
    assert history.get_run(db, step_id).parent_id == pruned_source.run_id
    assert history.get_run(db, payload["run_id"]).parent_id == step_id and payload["source_run_id"] == pruned_source.run_id
    assert payload["accuracy_before"] == pytest.approx(pruned_source.accuracy) and payload["params_before"] == pruned_source.params()
    assert history.get_run(db, payload["run_id"]).model == pruned_source.architecture


def test_a_stopped_pipeline_records_nothing_more(session_workspace, pruned_source):
    db = session_workspace.history_db
    stop = threading.Event()
    stop.set()
    config = build_pipeline_config(pipeline_options(None, {"steps": "prune", "amount": 0.5}), pruned_source.architecture)
    runs_before = history.count_runs(db)
    with pytest.raises(PipelineStopped, match="stopped before prune"):
        run_pipeline(pruned_source, config, RunContext(session_workspace, stop=stop))
    assert history.count_runs(db) == runs_before

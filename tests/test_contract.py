"""The technique contract, end to end through the CLI: every technique (prune, quantize simulated and
static int8, distill, pipeline) records a history row carrying the full headline (core.contract.result), timed
under the one latency protocol (core.foundation.measures.latency), and prints the same headline as its JSON line; the
training run carries latency at the same batch size. Then --from-run chains: a distilled student
pruned, the pruned model quantized, each recorded as the child of the run it started from."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main
from core.contract.result import HEADLINE_KEYS
from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.measures.latency import THROUGHPUT_BATCH_SIZE
from core.foundation.workspace import Workspace

pytestmark = pytest.mark.slow

# Headline keys that may be None, and why: an int8 graph cannot be traced by the MAC counter.
MAY_BE_NONE = {"macs_after"}
TEACHER = ["--teacher-epochs", "2"]  # a quick teacher: these tests check what is recorded, not how well it teaches


@pytest.fixture(scope="module")
def cli_workspace(tmp_path_factory) -> Workspace:
    """A workspace of this module's own, with the default digits baseline (what every command here
    starts from without --from-run) trained once."""
    workspace = Workspace.open(tmp_path_factory.mktemp("contract-ws"))
    get_baseline(BaselineConfig(DatasetSpec("digits")), workspace)
    return workspace


def run_command(capsys, workspace: Workspace, *argv: str) -> dict:
    """One CLI command in this process; asserts it succeeded and returns its JSON last line."""
    status = main([*argv, "--workspace", str(workspace.root)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def run_refused(capsys, workspace: Workspace, *argv: str) -> str:
    """One CLI command expected to be refused: exit 2 and a single line on stderr, which is returned."""
    status = main([*argv, "--workspace", str(workspace.root)])
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if not line.startswith("[")]  # progress lines start with [stage]
    assert status == 2 and len(lines) == 1 and "Traceback" not in error, error
    return lines[0]


def commands(baseline_id: int) -> dict[str, list[str]]:
    """One command per technique, each starting from the baseline. The pipeline names it with
    --from-run: there, --epochs (the distill step's students' budget) would also retrain the baseline."""
    return {
        "prune": ["prune", "--amount", "0.5", "--finetune-epochs", "0"],
        "quantize simulate": ["quantize", "--mode", "simulate", "--bits", "4"],
        "quantize static": ["quantize", "--mode", "static", "--calibration-size", "64"],
        "distill": ["distill", "--epochs", "1", *TEACHER],
        "pipeline": ["pipeline", "--from-run", str(baseline_id), "--steps", "distill,prune,quantize", "--epochs", "1", *TEACHER, "--amount", "0.5", "--mode", "simulate"],
    }


def test_every_technique_records_and_prints_the_full_headline(cli_workspace, capsys):
    db = cli_workspace.history_db
    train = run_command(capsys, cli_workspace, "train")
    assert train["from_cache"] is True  # the fixture's baseline: every command below starts from it
    payloads = {name: run_command(capsys, cli_workspace, *argv) for name, argv in commands(train["run_id"]).items()}
    rows = {name: history.get_run(db, payload["run_id"]) for name, payload in payloads.items()}

    threads = set()
    for name, payload in payloads.items():
        row = rows[name]
        assert row is not None and row.technique == name.split()[0], name
        metrics = row.metrics
        missing = [key for key in HEADLINE_KEYS if key not in metrics]
        assert not missing, (name, missing)
        empty = [key for key in HEADLINE_KEYS if metrics[key] is None and key not in MAY_BE_NONE]
        assert not empty, (name, empty)
        assert metrics["headline_version"] == 2 and metrics["latency_batch_size"] == THROUGHPUT_BATCH_SIZE, name
        assert isinstance(metrics["latency_runtime"], str) and metrics["latency_runtime"].strip(), name
        assert metrics["latency_ms_single_before"] > 0 and metrics["latency_ms_single_after"] > 0, name
        assert metrics["latency_ms_before"] > 0 and metrics["latency_ms_after"] > 0, name
        assert metrics["eval_images"] > 0 and 0.0 <= metrics["accuracy_after"] <= 1.0 and metrics["size_bytes_after"] > 0, name
        threads.add(metrics["latency_threads"])
        # The JSON line is the recorded headline, figure for figure.
        assert not [key for key in HEADLINE_KEYS if key not in payload], name
        assert {key: payload[key] for key in HEADLINE_KEYS} == {key: metrics[key] for key in HEADLINE_KEYS}, name
        assert metrics["before_run_id"] == payload["source_run_id"] == train["run_id"], name
    assert len(threads) == 1, threads

    # An int8 model is timed in the one runtime that has its kernels, and its fp32 source beside it; a simulated one eagerly.
    assert rows["quantize static"].metrics["latency_runtime"] != rows["quantize simulate"].metrics["latency_runtime"] == "torch eager"
    assert rows["prune"].metrics["latency_runtime"] == "torch eager"

    # The training run carries latency under the same protocol: batch size, threads, one image too.
    trained = history.get_run(db, train["run_id"]).metrics
    assert trained["latency_batch_size"] == THROUGHPUT_BATCH_SIZE == train["latency_batch_size"]
    assert trained["latency_threads"] in threads and trained["latency_ms"] > 0 and trained["latency_ms_single"] > 0
    assert trained["latency_runtime"] and trained["headline_version"] == 2


def test_from_run_chains_record_parents_and_lineage(cli_workspace, capsys):
    db = cli_workspace.history_db
    baseline_id = run_command(capsys, cli_workspace, "train")["run_id"]
    distilled = run_command(capsys, cli_workspace, "distill", "--student", "simple_cnn_narrow", "--epochs", "1", *TEACHER)
    pruned = run_command(capsys, cli_workspace, "prune", "--from-run", str(distilled["run_id"]), "--granularity", "channel", "--method", "ln", "--amount", "0.5", "--remove")
    quantized = run_command(capsys, cli_workspace, "quantize", "--from-run", str(pruned["run_id"]), "--mode", "simulate", "--bits", "6")

    # Each run is the child of the run it started from, and its "before" figures are that run's model.
    assert history.get_run(db, distilled["run_id"]).parent_id == baseline_id
    assert history.get_run(db, pruned["run_id"]).parent_id == distilled["run_id"] == pruned["source_run_id"]
    assert history.get_run(db, quantized["run_id"]).parent_id == pruned["run_id"] == quantized["source_run_id"]
    assert [run.id for run in history.lineage(db, quantized["run_id"])] == [baseline_id, distilled["run_id"], pruned["run_id"], quantized["run_id"]]
    assert history.get_run(db, quantized["run_id"]).params["lineage"] == [baseline_id, distilled["run_id"], pruned["run_id"]]
    assert pruned["accuracy_before"] == pytest.approx(distilled["accuracy_after"])  # the distilled student, on the same full test split
    assert pruned["params_before"] == distilled["params_after"] and pruned["params_after"] < pruned["params_before"]  # channels really removed
    assert quantized["params_before"] == pruned["params_after"] and quantized["accuracy_before"] == pytest.approx(pruned["accuracy_after"])
    # The student architecture carries along the chain (--model is not needed with --from-run).
    assert {history.get_run(db, payload["run_id"]).model for payload in (distilled, pruned, quantized)} == {"simple_cnn_narrow"}

    listed = run_command(capsys, cli_workspace, "runs", "--json")
    by_id = {run["run_id"]: run for run in listed["runs"]}
    assert {baseline_id, distilled["run_id"], pruned["run_id"], quantized["run_id"]} <= set(by_id)
    assert [by_id[run_id]["parent_id"] for run_id in (distilled["run_id"], pruned["run_id"], quantized["run_id"])] == [baseline_id, distilled["run_id"], pruned["run_id"]]
    assert [by_id[run_id]["technique"] for run_id in (distilled["run_id"], pruned["run_id"], quantized["run_id"])] == ["distill", "prune", "quantize"]

    # A quantized run cannot be compressed further; an unknown run is named; both in one line, exit 2, nothing recorded.
    count = history.count_runs(db)
    assert "quantized" in run_refused(capsys, cli_workspace, "prune", "--from-run", str(quantized["run_id"]))
    missing = max(by_id) + 100
    assert f"no run #{missing}" in run_refused(capsys, cli_workspace, "prune", "--from-run", str(missing))
    assert f"no run #{missing}" in run_refused(capsys, cli_workspace, "quantize", "--from-run", str(missing), "--mode", "simulate")
    assert f"no run #{missing}" in run_refused(capsys, cli_workspace, "distill", "--from-run", str(missing))
    assert f"no run #{missing}" in run_refused(capsys, cli_workspace, "pipeline", "--from-run", str(missing), "--steps", "prune", "--amount", "0.5")
    assert history.count_runs(db) == count

"""Quantizing a recorded run (--from-run N): a channel-pruned model quantized, the new run a child
of N; and a quantized run refused as a source, in one line."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from core.cli.main import main
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_parameters
from core.pruning import PruneConfig, prune


@pytest.fixture(scope="module")
def pruned_run(digits_baseline, session_workspace):
    """The baseline with 40% of its channels removed, recorded: (result, run id)."""
    result = prune(ModelSource.from_baseline(digits_baseline), PruneConfig(method="l1", granularity="channel", amount=0.4, remove=True), RunContext(session_workspace))
    return result, record(result, session_workspace)


def run_cli(capsys, *arguments: str) -> tuple[int, dict | None, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, (json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else None), captured.err


@pytest.fixture(scope="module")
def quantized_from_pruned(pruned_run, session_workspace):
    """`python -m core quantize --mode simulate --from-run N` of the pruned run: its JSON payload."""
    _, pruned_id = pruned_run
    out, err = io.StringIO(), io.StringIO()  # capsys is per test; this runs once for the module
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["quantize", "--mode", "simulate", "--bits", "8", "--from-run", str(pruned_id), "--workspace", str(session_workspace.root)])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_quantize_from_a_pruned_run_is_its_child(digits_baseline, session_workspace, pruned_run, quantized_from_pruned):
    pruned, pruned_id = pruned_run
    payload = quantized_from_pruned
    assert payload["technique"] == "quantize" and payload["source_run_id"] == pruned_id
    run = history.get_run(session_workspace.history_db, payload["run_id"])
    assert run.technique == "quantize" and run.parent_id == pruned_id
    assert run.params["lineage"] == [digits_baseline.run_id, pruned_id]
    # It quantized the smaller model, not the baseline: the before figures are the pruned run's.
    assert payload["params_before"] == count_parameters(pruned.model) < count_parameters(digits_baseline.model)
    assert payload["accuracy_before"] == pytest.approx(pruned.headline.accuracy_after, abs=1e-6)
    assert payload["eval_images"] == len(digits_baseline.dataset.test)
    assert abs(payload["accuracy_after"] - payload["accuracy_before"]) <= 0.01  # 8-bit simulated weights
    assert run.metrics["before_run_id"] == pruned_id


def test_a_quantized_run_is_refused_as_a_source_in_one_line(session_workspace, pruned_run, quantized_from_pruned):
    _, pruned_id = pruned_run
    with pytest.raises(UserError) as caught:
        ModelSource.from_run(session_workspace, quantized_from_pruned["run_id"])
    message = str(caught.value)
    assert "\n" not in message and "quantized" in message and f"run #{pruned_id}" in message  # points at its parent


def test_the_cli_refuses_to_prune_or_quantize_a_quantized_run(session_workspace, quantized_from_pruned, capsys):
    for command in (["prune", "--amount", "0.3"], ["quantize", "--mode", "simulate", "--bits", "4"]):
        code, _, error = run_cli(capsys, *command, "--from-run", str(quantized_from_pruned["run_id"]), "--workspace", str(session_workspace.root))
        assert code == 2, command
        lines = error.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "quantized" in lines[0], command


def test_from_run_refuses_a_run_that_does_not_exist(session_workspace, capsys):
    with pytest.raises(UserError, match="no run #999999"):
        ModelSource.from_run(session_workspace, 999999)
    code, _, error = run_cli(capsys, "quantize", "--mode", "dynamic", "--from-run", "999999", "--workspace", str(session_workspace.root))
    assert code == 2 and error.strip().splitlines()[-1].startswith("error: no run #999999")

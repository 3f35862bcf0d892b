"""Upgrades lose nothing: a workspace written by main before the technique contract (the fixture in
tests/fixtures/workspace-v1, made at commit 917257a in /tmp/ws-v1) still opens in another folder,
lists every old run with the figures it showed then, and every artifact loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cli.main import main
from core.contract.artifact import evaluate_package
from core.contract.run_models import package_for_run
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.data.datasets import DatasetSpec, load_dataset
from core.foundation.errors import UserError
from core.foundation.workspace import Workspace, load_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "workspace-v1"
EXPECTED = json.loads((FIXTURE / "expected_runs.json").read_text())
FIGURES = ("technique", "dataset", "model", "parent_id", "accuracy_percent", "size_bytes", "size_measure", "nonzero_params", "macs", "latency_ms", "latency_batch_size")


@pytest.fixture()
def moved_workspace(tmp_path) -> Workspace:
    """A copy of the old workspace in a folder it was never in (its rows name /tmp/ws-v1)."""
    root = tmp_path / "somewhere else" / "workspace"
    shutil.copytree(FIXTURE, root, ignore=lambda folder, names: {"expected_runs.json", "README.md"} & set(names) if Path(folder) == FIXTURE else set())
    assert not Path(EXPECTED["original_root"]).exists() or Path(EXPECTED["original_root"]).resolve() != root.resolve()
    return Workspace.open(root)


def json_line(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_every_old_run_is_listed_with_the_figures_it_had(moved_workspace, capsys):
    assert main(["runs", "--json", "--workspace", str(moved_workspace.root)]) == 0
    listed = {run["run_id"]: run for run in json_line(capsys)["runs"]}
    assert sorted(listed) == [run["run_id"] for run in EXPECTED["runs"]]
    for expected in EXPECTED["runs"]:
        shown = listed[expected["run_id"]]
        assert {key: shown[key] for key in FIGURES} == {key: expected[key] for key in FIGURES}, f"run #{expected['run_id']}"
        # `runs --json` then wrote each run's settings over its parameter count; they are now under run_params.
        assert shown["run_params"] == expected["params"]


def test_every_old_artifact_loads_from_the_moved_folder(moved_workspace):
    runs = history.list_runs(moved_workspace.history_db)
    assert runs and all(run.artifact_path.startswith(EXPECTED["original_root"]) for run in runs)  # the rows still hold the old absolute paths
    dataset = load_dataset(DatasetSpec("digits"), moved_workspace, allow_download=False)
    for run in runs:
        path = moved_workspace.resolve_artifact(run.artifact_path)
        assert path is not None and path.exists() and moved_workspace.root in path.parents, f"run #{run.id}: {path}"
        if run.technique == "quantize":
            loaded = load_checkpoint(path)  # int8 codes and scales, checksum-verified
            assert loaded is not None and any(name.endswith(".codes") for name in loaded[0])
            continue
        package = package_for_run(run, moved_workspace, dataset)
        accuracy = evaluate_package(package.build_model(), package, dataset).accuracy
        assert accuracy == pytest.approx(run.metrics["accuracy_after" if "accuracy_after" in run.metrics else "accuracy"], abs=1e-6), f"run #{run.id} ({run.technique})"


def test_an_old_run_is_the_source_of_a_new_technique(moved_workspace, capsys):
    root = str(moved_workspace.root)
    # The old cached baseline is found under its old cache key, not retrained.
    assert main(["train", "--dataset", "digits", "--workspace", root]) == 0
    assert json_line(capsys)["from_cache"] is True
    old_pruned = next(run for run in EXPECTED["runs"] if run["technique"] == "prune" and run["size_measure"] == "size_bytes_gzip")  # channel-pruned with removal
    assert main(["quantize", "--from-run", str(old_pruned["run_id"]), "--mode", "static", "--workspace", root]) == 0
    new_run = json_line(capsys)
    row = history.get_run(moved_workspace.history_db, new_run["run_id"])
    assert row.parent_id == old_pruned["run_id"]
    old_row = history.get_run(moved_workspace.history_db, old_pruned["run_id"])
    assert row.metrics["params_before"] == old_row.metrics["params"] < history.get_run(moved_workspace.history_db, 1).metrics["params"]  # the physically smaller model was rebuilt
    assert [ancestor.id for ancestor in history.lineage(moved_workspace.history_db, row.id)] == [1, old_pruned["run_id"], row.id]
    # New and old runs are listed side by side.
    assert main(["runs", "--json", "--workspace", root]) == 0
    assert len(json_line(capsys)["runs"]) == len(EXPECTED["runs"]) + 1


def test_an_old_distilled_student_can_be_pruned(moved_workspace):
    distilled = next(run for run in EXPECTED["runs"] if run["technique"] == "distill")
    source = ModelSource.from_run(moved_workspace, distilled["run_id"])
    assert source.architecture == distilled["model"] and source.accuracy == pytest.approx(distilled["accuracy_percent"] / 100, abs=1e-4)
    with pytest.raises(UserError, match="quantized"):
        ModelSource.from_run(moved_workspace, next(run["run_id"] for run in EXPECTED["runs"] if run["technique"] == "quantize"))

"""Each run's architecture (its registry name and group, read from what the run recorded) in the
Compare table, the CSV, the HTML report and `python -m core runs`, for a new run and for the runs of
an old workspace; the Architecture filter narrows the rows on the page, in the CLI and in the link."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cli.main import main
from core.compare.runs import comparison_table, table_records
from core.compare.selection import architecture_choices, baseline_for, load_summaries
from core.contract.run_summary import NOT_IN_REGISTRY, architecture_of, summarize
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.history import RunRecord
from core.foundation.models.names import LAB_OWN, TORCHVISION
from core.foundation.workspace import Workspace
from core.report.html import build_report, runs_csv
from tests.conftest import open_app_page, record_prune_run

FIXTURE = Path(__file__).parent / "fixtures" / "workspace-v1"
EXPECTED = json.loads((FIXTURE / "expected_runs.json").read_text())
TINY_DIGITS = DatasetSpec("digits", train_size=100)
MOBILENET = "mobilenet_v2_x0_5"


@pytest.fixture(scope="module")
def two_architectures(tmp_path_factory) -> dict:
    """A workspace with a simple_cnn baseline, its pruning, and a MobileNetV2 x0.5 baseline (1 epoch on 100 digits each)."""
    workspace = Workspace.open(tmp_path_factory.mktemp("two-architectures"))
    simple = get_baseline(BaselineConfig(TINY_DIGITS, model="simple_cnn", epochs=1, device="cpu"), workspace)
    mobilenet = get_baseline(BaselineConfig(TINY_DIGITS, model=MOBILENET, epochs=1, device="cpu"), workspace)
    pruned = record_prune_run(simple, workspace, amount=0.5)
    return {"workspace": workspace, "simple": simple.run_id, "mobilenet": mobilenet.run_id, "pruned": pruned}


def json_line(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def report_rows(document: str) -> dict[str, list[str]]:
    """The report's run table as {run cell: cells}, read back from its HTML."""
    import re

    table = document.split("<h2>Runs side by side</h2>", 1)[1].split("</table>", 1)[0]
    head = re.findall(r"<th[^>]*>(.*?)</th>", table)
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>", 1)[1]):
        cells = [cell.replace("&#x27;", "'") for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        rows[cells[0].split(" ")[0]] = dict(zip(head, cells))
    return rows


def test_a_new_torchvision_run_shows_its_architecture_and_group_in_the_table_the_csv_and_the_report(two_architectures):
    workspace, ids = two_architectures["workspace"], two_architectures
    summaries = load_summaries(workspace.history_db)
    reference = baseline_for(workspace.history_db, summaries, ids["simple"])
    records = {record["run_id"]: record for record in table_records(comparison_table(summaries, reference))}
    assert records[ids["mobilenet"]]["architecture"] == f"{MOBILENET} · {TORCHVISION}" and records[ids["mobilenet"]]["architecture_group"] == TORCHVISION
    assert records[ids["pruned"]]["architecture"] == f"simple_cnn · {LAB_OWN}" and records[ids["simple"]]["architecture_group"] == LAB_OWN
    csv_rows = runs_csv(comparison_table(summaries, reference)).splitlines()
    header = csv_rows[0].split(",")
    assert header.index("architecture") == header.index("model") + 1
    assert any(line.startswith(f"{ids['mobilenet']},") and f",{MOBILENET},{MOBILENET} · {TORCHVISION},{TORCHVISION}," in line for line in csv_rows[1:])
    rows = report_rows(build_report(summaries, reference))
    assert rows[f"#{ids['mobilenet']}"]["architecture"] == f"{MOBILENET} · {TORCHVISION}"
    assert rows[f"#{ids['pruned']}"]["architecture"] == f"simple_cnn · {LAB_OWN}"
    assert architecture_choices(summaries) == ["simple_cnn", MOBILENET]  # the registry's order: the lab's own first


def test_the_runs_command_lists_the_architecture_and_filters_by_it(two_architectures, capsys):
    root, ids = str(two_architectures["workspace"].root), two_architectures
    assert main(["runs", "--workspace", root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "architecture" in lines[0]
    assert any(line.split()[0] == str(ids["mobilenet"]) and line.rstrip().count(f"{MOBILENET} · {TORCHVISION}") == 1 for line in lines[1:])
    assert main(["runs", "--json", "--architecture", MOBILENET, "--workspace", root]) == 0
    assert [run["run_id"] for run in json_line(capsys)["runs"]] == [ids["mobilenet"]]
    assert main(["runs", "--json", "--architecture", "simple_cnn", "--workspace", root]) == 0
    assert sorted(run["run_id"] for run in json_line(capsys)["runs"]) == sorted([ids["simple"], ids["pruned"]])
    assert main(["runs", "--architecture", "alexnet", "--workspace", root]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: unknown architecture 'alexnet' for --architecture; the registry has simple_cnn,") and "\n" not in error


def test_the_report_command_keeps_the_chosen_architecture(two_architectures, tmp_path, capsys):
    root, ids = str(two_architectures["workspace"].root), two_architectures
    out = tmp_path / "mobilenet.html"
    assert main(["report", "--out", str(out), "--architecture", MOBILENET, "--reference", str(ids["mobilenet"]), "--workspace", root]) == 0
    assert json_line(capsys)["run_ids"] == [ids["mobilenet"]]
    document = out.read_text()
    assert list(report_rows(document)) == [f"#{ids['mobilenet']}"]
    assert f"{MOBILENET} · {TORCHVISION} on digits" in document  # the baseline card


@pytest.fixture()
def moved_workspace(tmp_path) -> Workspace:
    root = tmp_path / "old" / "workspace"
    shutil.copytree(FIXTURE, root, ignore=lambda folder, names: {"expected_runs.json", "README.md"} & set(names) if Path(folder) == FIXTURE else set())
    return Workspace.open(root)


def test_the_runs_of_an_old_workspace_show_the_architecture_they_recorded(moved_workspace, capsys):
    assert main(["runs", "--json", "--workspace", str(moved_workspace.root)]) == 0
    listed = {run["run_id"]: run for run in json_line(capsys)["runs"]}
    for expected in EXPECTED["runs"]:
        shown = listed[expected["run_id"]]
        assert shown["architecture"] == f"{expected['model']} · {LAB_OWN}" and shown["architecture_group"] == LAB_OWN, f"run #{expected['run_id']}"
    assert {run["architecture"] for run in listed.values()} == {f"simple_cnn · {LAB_OWN}", f"teacher · {LAB_OWN}"}  # the old teacher baseline is one
    summaries = load_summaries(moved_workspace.history_db)
    rows = report_rows(build_report(summaries, baseline_for(moved_workspace.history_db, summaries, 1)))
    distilled = next(run for run in EXPECTED["runs"] if run["technique"] == "distill")
    teacher = next(run for run in EXPECTED["runs"] if run["model"] == "teacher")
    assert rows[f"#{distilled['run_id']}"]["architecture"] == f"simple_cnn · {LAB_OWN}"  # the student it made, as it recorded
    assert rows[f"#{teacher['run_id']}"]["architecture"] == f"teacher · {LAB_OWN}"


def record(model: str, params: dict) -> RunRecord:
    return RunRecord(id=1, created_at=0.0, finished_at=0.0, technique="distill", dataset="digits", model=model, parent_id=None, params=params, metrics={}, artifact_path=None, pinned=False)


def test_a_row_without_a_model_reads_its_configuration_and_an_unknown_name_says_so():
    assert architecture_of(record("", {"student": "simple_cnn_narrow", "teacher": "teacher"})) == "simple_cnn_narrow"
    assert architecture_of(record("", {"distill": {"student": MOBILENET}, "steps": ["distill"]})) == MOBILENET
    assert architecture_of(record("", {"model": "resnet18"})) == "resnet18"
    gone = summarize(record("lenet5", {}))
    assert gone.architecture_group == NOT_IN_REGISTRY and gone.architecture_label == f"lenet5 · {NOT_IN_REGISTRY}"


# The page ---------------------------------------------------------------------------------------


def table_ids(at) -> list[int]:
    return [int(run_id) for run_id in at.dataframe[0].value["run_id"]]


@pytest.mark.slow
def test_the_architecture_filter_narrows_the_rows_survives_reruns_and_rides_in_the_link(two_architectures, monkeypatch):
    ids = two_architectures
    monkeypatch.setenv("MEL_HOME", str(two_architectures["workspace"].root))
    at = open_app_page("pages/compare.py")
    at.session_state["compare_tab"] = "Runs"
    at.run()
    assert sorted(table_ids(at)) == sorted([ids["simple"], ids["mobilenet"], ids["pruned"]])
    shown = dict(zip(at.dataframe[0].value["run_id"], at.dataframe[0].value["architecture"]))
    assert shown[ids["mobilenet"]] == f"{MOBILENET} · {TORCHVISION}" and shown[ids["pruned"]] == f"simple_cnn · {LAB_OWN}"
    architecture = at.multiselect(key="compare_filter_architecture")
    assert architecture.options == [f"simple_cnn · {LAB_OWN}", f"{MOBILENET} · {TORCHVISION}"]
    architecture.set_value([MOBILENET]).run()
    assert not at.exception and table_ids(at) == [ids["mobilenet"]]
    assert at.query_params["architecture"] == MOBILENET
    at.run()  # a rerun keeps it
    assert at.multiselect(key="compare_filter_architecture").value == [MOBILENET] and table_ids(at) == [ids["mobilenet"]]
    at.switch_page("pages/overview.py").run()
    at.switch_page("pages/compare.py").run()  # back after another page: the filter is still set
    assert at.multiselect(key="compare_filter_architecture").value == [MOBILENET] and table_ids(at) == [ids["mobilenet"]]
    at.multiselect(key="compare_filter_architecture").set_value([]).run()
    assert len(table_ids(at)) == 3 and "architecture" not in at.query_params


@pytest.mark.slow
def test_a_link_with_an_architecture_filter_applies_it_and_names_what_the_history_lacks(two_architectures, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO_ROOT

    ids = two_architectures
    monkeypatch.setenv("MEL_HOME", str(two_architectures["workspace"].root))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.query_params.update({"dataset": "digits", "architecture": "simple_cnn,resnet50,alexnet"})
    at.switch_page("pages/compare.py")
    at.session_state["compare_tab"] = "Runs"
    at.run()
    assert not at.exception
    assert [warning.value for warning in at.warning] == ["Link: architecture resnet50, alexnet has no run in this history; filtering by the others"]
    assert at.multiselect(key="compare_filter_architecture").value == ["simple_cnn"]
    assert sorted(table_ids(at)) == sorted([ids["simple"], ids["pruned"]])
    assert at.query_params["architecture"] == "simple_cnn"
    at.run()
    assert not at.warning  # said once, on opening

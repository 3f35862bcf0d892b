"""AppTest of the Explore page on the digits baseline: the grid the form makes, one error line for a
bad one, a small sweep on a real local Ray cluster recorded in the history, its frontier chart and
recommendation, the recorded trials on a fresh visit, and opening the recommended run on its page."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.foundation import history
from core.sweep import engine
from tests.conftest import open_app_page


@pytest.fixture()
def explore_home(digits_baseline, session_workspace, tmp_path, monkeypatch):
    """A copy of the session workspace (its cached baseline included), so the sweep's runs stay out
    of the history the other page tests read."""
    home = tmp_path / "explore-home"
    shutil.copytree(session_workspace.root, home, ignore=shutil.ignore_patterns("*.sqlite-wal", "*.sqlite-shm", "streamlit-*.log"))
    monkeypatch.setenv("MEL_HOME", str(home))
    yield home
    engine.shutdown()


def open_explore() -> AppTest:
    return open_app_page("pages/explore.py", timeout_s=600)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def cli_text(at: AppTest) -> str:
    return next(code.value for code in at.code if code.value.startswith("python -m core sweep"))


def frontier_charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def trace(spec: dict, role: str) -> dict | None:
    return next((t for t in spec["data"] if t.get("meta") == role), None)


def test_the_form_makes_the_cli_grid_and_a_bad_one_is_one_error_line(explore_home):
    at = open_explore()
    assert "--grid prune.amount=0.3:0.9:0.3" in cli_text(at)
    assert metric(at, "Trials planned") == "3" and metric(at, "To run") == "3"
    at.multiselect(key="explore_granularity").set_value(["unstructured", "channel"]).run()
    assert "--grid prune.granularity=unstructured,channel" in cli_text(at)
    assert metric(at, "Trials planned") == "6"
    at.number_input(key="explore_amount_min").set_value(0.9)
    at.number_input(key="explore_amount_max").set_value(0.3).run()
    assert not at.exception
    assert len(at.error) == 1 and "empty range" in at.error[0].value
    at.number_input(key="explore_amount_max").set_value(0.95).run()
    assert not at.exception and not at.error
    assert metric(at, "Trials planned") == "2"  # 0.9 x two granularities


@pytest.mark.slow  # starts a local Ray cluster and runs two pruning trials: ~30 s on a busy 2-core machine
def test_a_small_sweep_is_recorded_drawn_recommended_and_opens_on_the_pruning_page(explore_home):
    at = open_explore()
    at.number_input(key="explore_amount_max").set_value(0.6).run()
    assert metric(at, "To run") == "2"
    at.button(key="explore_start").click().run()
    assert not at.exception, at.exception
    assert not at.error, [error.value for error in at.error]
    db = explore_home / "runs.sqlite"
    swept = [run for run in history.list_runs(db) if "sweep" in run.params]
    assert sorted(run.params["sweep"]["point"]["prune.amount"] for run in swept) == [0.3, 0.6]
    table = at.dataframe[0].value
    assert sorted(int(run_id) for run_id in table["run"]) == sorted(run.id for run in swept)
    assert set(table["status"]) == {"ok"}
    charts = frontier_charts(at)
    size_chart = next(spec for spec in charts if spec["layout"]["title"]["text"] == "Accuracy vs size")
    drawn = [int(run_id) for role in ("frontier", "dominated") for run_id in (trace(size_chart, role) or {}).get("customdata", [])]
    assert sorted(drawn) == sorted(run.id for run in swept)
    assert trace(size_chart, "source") is not None
    recommended = re.search(r"Recommended: run #(\d+)", next(s.value for s in at.success if "Recommended" in s.value))
    assert recommended and int(recommended.group(1)) in {run.id for run in swept}
    assert any("finished: 2 trial(s) run this time" in s.value for s in at.success)
    assert metric(at, "To run") == "0" and metric(at, "Already in the history") == "2"
    # The download offered is the recommended run's model zip, which loads back (the compare page's format).
    from core.contract.artifact import load_model_zip
    from core.foundation.workspace import Workspace
    from core.sweep.explore import run_download, run_download_name

    run = history.get_run(db, int(recommended.group(1)))
    assert run_download_name(run, Workspace.open(explore_home)) == f"model-run-{run.id}.zip"
    model, _ = load_model_zip(run_download(run, Workspace.open(explore_home)), "model.zip")
    assert sum(parameter.numel() for parameter in model.parameters()) > 0

    # A fresh visit (a new session) finds the same sweep's trials in the history.
    again = open_explore()
    again.number_input(key="explore_amount_max").set_value(0.6).run()
    assert sorted(int(run_id) for run_id in again.dataframe[0].value["run"]) == sorted(run.id for run in swept)

    at.button(key="explore_open").click().run()
    assert not at.exception
    assert at.session_state["open_run_id"] == int(recommended.group(1))
    assert any(f"Run #{recommended.group(1)} (from the explorer)" in markdown.value for markdown in at.markdown)
    assert any(markdown.value.startswith("Accuracy") and "→" in markdown.value and "points" in markdown.value for markdown in at.markdown)
    assert any(markdown.value.startswith("Size") and "× smaller" in markdown.value for markdown in at.markdown)
    at.button(key="opened_run_close").click().run()
    assert not any("(from the explorer)" in markdown.value for markdown in at.markdown)


def test_quantization_axes_auto_mode_pipelines_and_refused_combinations(explore_home):
    at = open_explore()
    at.checkbox(key="explore_vary_prune").uncheck()
    at.checkbox(key="explore_vary_quantize").check().run()
    command = cli_text(at)
    assert "--grid quantize.bits=8,4" in command and "quantize.mode" not in command  # auto: 8 bits real int8, fewer simulated
    assert metric(at, "Refused combinations") == "0" and metric(at, "To run") == "2"
    at.selectbox(key="explore_quantize_mode").set_value("static").run()
    assert "--grid quantize.mode=static" in cli_text(at)
    assert metric(at, "Trials planned") == "2" and metric(at, "Refused combinations") == "1" and metric(at, "To run") == "1"  # static int8 has no 4 bits
    at.selectbox(key="explore_quantize_mode").set_value("auto")
    at.checkbox(key="explore_vary_prune").check().run()
    assert metric(at, "Trials planned") == "6"  # three amounts x two bit widths, each a prune -> quantize pipeline
    assert not at.error and not at.exception
    at.multiselect(key="explore_quantize_bits").set_value([]).run()
    assert len(at.error) == 1 and "varies nothing" in at.error[0].value  # one line, no traceback


@pytest.mark.parametrize("page_path", ["pages/quantization.py", "pages/distillation.py", "pages/compare.py"])
def test_every_target_page_shows_the_opened_run_card_and_closes_it(explore_home, digits_baseline, page_path):
    from core.foundation.workspace import Workspace
    from tests.conftest import record_prune_run

    run_id = record_prune_run(digits_baseline, Workspace.open(explore_home), amount=0.4)
    at = open_app_page("pages/overview.py", timeout_s=600)
    at.session_state["open_run_id"] = run_id
    at.switch_page(page_path).run()
    assert not at.exception
    assert any(f"Run #{run_id} (from the explorer)" in markdown.value for markdown in at.markdown)
    assert any(markdown.value.startswith("Accuracy") and "→" in markdown.value for markdown in at.markdown)
    assert any("amount = 0.4" in caption.value for caption in at.caption)  # no sweep point: the run's own settings
    at.button(key="opened_run_close").click().run()
    assert "open_run_id" not in at.session_state
    assert not any("(from the explorer)" in markdown.value for markdown in at.markdown)

"""AppTest of the Pruning page on the digits baseline: sliders redraw, buttons run, errors stay one line."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.contract.options import spec
from core.foundation import history
from core.pruning import PruneConfig
from tests.conftest import forbid_latency_measurement, open_app_page


@pytest.fixture()
def page(digits_baseline) -> AppTest:
    return open_app_page("pages/pruning.py")


def metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def decode_array(value) -> np.ndarray:
    """Plotly's JSON stores numpy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return array.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else array
    return np.array(value, dtype=float)


def heatmap_cells(at: AppTest) -> list[np.ndarray]:
    chart = next(c for c in at.get("plotly_chart") if "empty cells are pruned" in c.proto.spec)
    return [decode_array(trace["z"]) for trace in json.loads(chart.proto.spec)["data"]]


def open_tab(at: AppTest, label: str) -> None:
    at.session_state["prune_tab"] = label
    at.run()
    assert not at.exception


def test_amount_slider_updates_the_sparsity_metric_and_the_heatmap(page, monkeypatch):
    assert metric(page, "Zero weights") == "50.0%"
    before = heatmap_cells(page)
    accuracy_before, dense_before, sparse_before = metric(page, "Accuracy"), metric(page, "Dense file"), metric(page, "Sparse encoding")
    forbid_latency_measurement(monkeypatch)  # a slider move previews: it never times a model
    page.slider(key="prune_amount").set_value(0.9).run()
    assert not page.exception
    assert metric(page, "Zero weights") == "90.0%"
    after = heatmap_cells(page)
    assert [np.isnan(z).mean() for z in after] == pytest.approx([0.9] * len(after), abs=0.01)
    assert all(np.isnan(b).sum() < np.isnan(a).sum() for b, a in zip(before, after))
    assert metric(page, "Accuracy") != accuracy_before
    assert metric(page, "Dense file") == dense_before and metric(page, "Sparse encoding") != sparse_before


def test_channel_removal_shrinks_parameters_and_the_architecture(page, digits_baseline):
    page.radio(key="prune_granularity").set_value("channel").run()
    dense_params = metric(page, "Parameters")
    page.checkbox(key="prune_remove").check().run()
    assert not page.exception
    smaller = int(metric(page, "Parameters").replace(",", ""))
    assert int(dense_params.replace(",", "")) == digits_baseline.metrics.params > 3 * smaller
    open_tab(page, "Architecture")
    table = page.dataframe[0].value
    assert table.loc[table["layer"] == "conv1", "shape after"].item() == "8 × 1 × 5 × 5"


def test_impossible_setting_shows_one_line_and_the_page_keeps_working(page):
    page.radio(key="prune_granularity").set_value("channel").run()
    page.radio(key="prune_scope").set_value("global").run()
    page.slider(key="prune_amount").set_value(0.95).run()
    assert not page.exception
    assert any("would remove every channel" in error.value for error in page.error)
    page.slider(key="prune_amount").set_value(0.3).run()
    assert not page.exception and not page.error
    assert metric(page, "Zero weights") != "0.0%"


def test_buttons_measure_sweep_scan_and_record_a_run(page, digits_baseline, session_workspace):
    open_tab(page, "Size & speed")
    page.button(key="prune_measure_latency").click().run()
    assert not page.exception
    assert any("latency, masked" in str(value) for value in page.dataframe[0].value["measure"])

    open_tab(page, "Accuracy vs sparsity")
    page.button(key="prune_sweep").click().run()
    curve = next(c for c in page.get("plotly_chart") if "Accuracy versus sparsity" in c.proto.spec)
    assert '"one-shot"' in curve.proto.spec

    open_tab(page, "Sensitivity")
    page.button(key="prune_scan").click().run()
    assert not page.exception
    page.number_input(key="prune_scan_tolerance").set_value(2.0).run()
    page.button(key="prune_use_scan").click().run()
    assert not page.exception
    assert any("Per-layer amounts from the sensitivity scan" in info.value for info in page.info)

    runs_before = {run.id for run in history.list_runs(session_workspace.history_db)}
    page.number_input(key="prune_finetune_epochs").set_value(1).run()
    page.button(key="prune_run").click().run()
    assert not page.exception
    new_runs = [run for run in history.list_runs(session_workspace.history_db) if run.id not in runs_before]
    assert len(new_runs) == 1 and new_runs[0].technique == "prune" and new_runs[0].parent_id == digits_baseline.run_id
    assert new_runs[0].params["finetune_epochs"] == 1 and new_runs[0].metrics["headline_version"] == 2
    assert metric(page, "After fine-tuning").endswith("%")
    assert any(f"Saved as run {new_runs[0].id}" in success.value for success in page.success)


def test_widget_ranges_and_defaults_are_the_configs(page):
    """The page offers exactly what PruneConfig (and so the CLI) accepts, and starts from its defaults."""
    for key, name in (("prune_finetune_epochs", "finetune_epochs"), ("prune_iterative_steps", "iterative_steps")):
        widget, option = page.number_input(key=key), spec(PruneConfig, name)
        assert (widget.min, widget.max, widget.value) == (option.minimum, option.maximum, option.default), key
    amount, option = page.slider(key="prune_amount"), spec(PruneConfig, "amount")
    assert amount.min == option.minimum and amount.value == option.default and amount.max < option.below
    assert page.radio(key="prune_granularity").value == spec(PruneConfig, "granularity").default
    assert page.radio(key="prune_scope").value == spec(PruneConfig, "scope").default

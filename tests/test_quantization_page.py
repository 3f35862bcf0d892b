"""AppTest of the Quantization page on the digits baseline: the bit-width slider redraws the levels
and the numbers, runs are recorded, and QAT points reach the accuracy-vs-bits chart."""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.contract.options import spec
from core.foundation import history
from core.quantization import QATConfig, SimulateConfig, StaticInt8Config
from tests.conftest import forbid_latency_measurement, open_app_page, record_prune_run


@pytest.fixture()
def page(digits_baseline) -> AppTest:
    return open_app_page("pages/quantization.py")


def metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def chart(at: AppTest, title_part: str) -> dict:
    spec = next(c.proto.spec for c in at.get("plotly_chart") if title_part in c.proto.spec)
    return json.loads(spec)


def level_count(at: AppTest) -> int:
    name = next(trace["name"] for trace in chart(at, "weights rounded to")["data"] if trace.get("name", "").startswith("dequantized"))
    return int(name.split("(")[1].split()[0])


def open_tab(at: AppTest, label: str) -> None:
    at.session_state["quant_tab"] = label
    at.run()
    assert not at.exception


def test_bit_width_slider_redraws_levels_accuracy_and_size(page, monkeypatch):
    assert metric(page, "Runs as") == "simulated (fp32)"
    size_at_8, levels_at_8 = metric(page, "Deployed size"), level_count(page)
    page.radio(key="quant_granularity").set_value("per-tensor").run()
    page.selectbox(key="quant_hist_layer").set_value("fc1").run()
    assert level_count(page) > 100
    forbid_latency_measurement(monkeypatch)  # a simulated setting redraws: nothing is timed (the 1 s target is benchmarked on CIFAR-10)
    page.slider(key="quant_bits").set_value(2).run()
    assert not page.exception
    assert level_count(page) == 3  # symmetric 2-bit: -1, 0, +1 times the scale
    assert metric(page, "Deployed size") != size_at_8 and levels_at_8 > 3
    assert float(metric(page, "Accuracy").rstrip("%")) < 60


def test_per_layer_error_and_accuracy_charts_draw(page):
    open_tab(page, "Per-layer error")
    bars = chart(page, "Weight error at 8 bits")["data"]
    assert [trace["name"] for trace in bars] == ["per-tensor", "per-channel"]
    page.radio(key="quant_error_metric").set_value("mse").run()
    assert "MSE, lower is better" in json.dumps(chart(page, "Weight error at 8 bits")["layout"])
    open_tab(page, "Accuracy vs bits")
    curves = chart(page, "Accuracy versus bit width")["data"]
    assert [curve["name"] for curve in curves] == [
        "post-training, per-channel symmetric",
        "post-training, per-channel affine",
        "post-training, per-tensor symmetric",
        "post-training, per-tensor affine",
    ]
    assert all(len(curve["x"]) == 7 for curve in curves)
    assert curves[0]["line"]["width"] > curves[2]["line"]["width"]  # the page's default scheme, per-channel symmetric, is the thick line


def test_static_int8_run_quantizes_convolutions_and_is_recorded(page, session_workspace, digits_baseline):
    runs_before = len(history.list_runs(session_workspace.history_db))
    page.radio(key="quant_mode").set_value("static").run()
    page.slider(key="quant_calibration").set_value(128).run()
    page.selectbox(key="quant_observer").set_value("minmax").run()
    page.button(key="quant_run").click().run()
    assert not page.exception and not page.error
    assert metric(page, "Runs as") == "int8 kernels"
    assert metric(page, "Quantized layers") == "5 of 5"
    runs = history.list_runs(session_workspace.history_db)
    assert len(runs) == runs_before + 1
    assert runs[-1].technique == "quantize" and runs[-1].parent_id == digits_baseline.run_id and runs[-1].params["observer"] == "minmax"
    assert any(f"Saved as run {runs[-1].id}" in success.value for success in page.success)
    open_tab(page, "Size & latency")  # the run was timed with the one protocol: compiled fp32 beside compiled int8, 1 and 256 images
    assert metric(page, "fp32, 1 image").endswith("ms") and metric(page, "static int8, batch 256").endswith("ms")
    assert any("batch 1 and 256 images" in caption.value and runs[-1].metrics["latency_runtime"] in caption.value for caption in page.caption)
    open_tab(page, "Layers")
    table = page.dataframe[0].value
    assert table.loc[table["layer"] == "conv1", "stored as"].item() == "8-bit per-channel symmetric"


def test_dynamic_mode_says_convolutions_stay_fp32(page):
    page.radio(key="quant_mode").set_value("dynamic").run()
    page.button(key="quant_run").click().run()
    assert not page.exception
    assert metric(page, "Quantized layers") == "3 of 5"
    assert any("conv1, conv2 stay fp32" in block.value for block in page.markdown)


def test_qat_run_adds_its_point_to_the_accuracy_chart(page):
    page.radio(key="quant_mode").set_value("qat").run()
    page.slider(key="quant_qat_bits").set_value(3).run()
    page.number_input(key="quant_qat_epochs").set_value(1).run()
    page.button(key="quant_run").click().run()
    assert not page.exception and not page.error
    assert metric(page, "Post-training at the same setting").endswith("%")
    open_tab(page, "Accuracy vs bits")
    traces = chart(page, "Accuracy versus bit width")["data"]
    qat = next(trace for trace in traces if trace["name"] == "quantization-aware training")
    assert list(qat["x"]) == [3]


def test_a_recorded_run_is_a_source_and_becomes_the_parent(digits_baseline, session_workspace):
    """Quantize a pruned model: pick the prune run (made through core, as the CLI makes it) under
    "Start from"; the static int8 run is recorded as its child, and is not offered as a source itself."""
    pruned_id = record_prune_run(digits_baseline, session_workspace, granularity="channel", method="ln", amount=0.5, remove=True)
    page = open_app_page("pages/quantization.py")
    page.selectbox(key="quant_source").set_value(pruned_id).run()
    assert not page.exception and not page.error
    assert any(f"run #{pruned_id}" in caption.value and "prune" in caption.value for caption in page.caption)
    page.radio(key="quant_mode").set_value("static").run()
    page.slider(key="quant_calibration").set_value(64).run()
    page.button(key="quant_run").click().run()
    assert not page.exception and not page.error
    newest = history.list_runs(session_workspace.history_db)[-1]
    assert newest.technique == "quantize" and newest.parent_id == pruned_id and newest.params["source_run_id"] == pruned_id
    assert newest.params["lineage"] == [digits_baseline.run_id, pruned_id]
    options = page.selectbox(key="quant_source").options
    assert any(label.startswith(f"run #{pruned_id} prune") for label in options)
    assert not any(label.startswith(f"run #{newest.id} ") for label in options)  # quantized: it cannot be compressed further


def test_a_run_whose_model_is_gone_is_said_in_one_line_and_the_baseline_is_used(digits_baseline, session_workspace):
    run_id = record_prune_run(digits_baseline, session_workspace, amount=0.3)
    shutil.rmtree(session_workspace.resolve_artifact(history.get_run(session_workspace.history_db, run_id).artifact_path))
    page = open_app_page("pages/quantization.py")
    page.selectbox(key="quant_source").set_value(run_id).run()
    assert not page.exception
    assert len(page.error) == 1 and f"run #{run_id}" in page.error[0].value and "\n" not in page.error[0].value
    assert any(f"run #{digits_baseline.run_id}" in caption.value for caption in page.caption if caption.value.startswith("Starting from"))
    assert metric(page, "Runs as") == "simulated (fp32)"  # the page goes on from the baseline


def test_widget_ranges_and_defaults_are_the_configs(page):
    """Every control that goes into a config offers what that config (and so the CLI) accepts."""
    bits, option = page.slider(key="quant_bits"), spec(SimulateConfig, "bits")
    assert (bits.min, bits.max, bits.value) == (option.minimum, option.maximum, option.default)
    page.radio(key="quant_mode").set_value("qat").run()
    for widget, option in ((page.slider(key="quant_qat_bits"), spec(QATConfig, "bits")), (page.number_input(key="quant_qat_epochs"), spec(QATConfig, "epochs"))):
        assert (widget.min, widget.max, widget.value) == (option.minimum, option.maximum, option.default), widget.key
    page.radio(key="quant_mode").set_value("static").run()
    calibration, option = page.slider(key="quant_calibration"), spec(StaticInt8Config, "calibration_size")
    assert calibration.min == option.minimum and calibration.value == option.default and calibration.max <= option.maximum
    assert page.selectbox(key="quant_observer").value == spec(StaticInt8Config, "observer").default


@pytest.mark.slow
def test_latency_is_measured_again_on_demand(page):
    page.radio(key="quant_mode").set_value("static").run()
    page.slider(key="quant_calibration").set_value(64).run()
    page.button(key="quant_run").click().run()
    open_tab(page, "Size & latency")
    page.button(key="quant_latency_button").click().run()
    assert not page.exception
    assert metric(page, "fp32, batch 256").endswith("ms") and metric(page, "static int8, 1 image").endswith("ms")
    bars = chart(page, "What each variant costs")["data"]
    assert "static int8" in bars[0]["x"]

"""AppTest of the Quantization page on the digits baseline: the bit-width slider redraws the levels
and the numbers, runs are recorded, and QAT points reach the accuracy-vs-bits chart."""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from core import history
from tests.conftest import open_app_page


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


def test_bit_width_slider_redraws_levels_accuracy_and_size(page):
    assert metric(page, "Runs as") == "simulated (fp32)"
    size_at_8, levels_at_8 = metric(page, "Deployed size"), level_count(page)
    page.radio(key="quant_granularity").set_value("per-tensor").run()
    page.selectbox(key="quant_hist_layer").set_value("fc1").run()
    assert level_count(page) > 100
    started = time.perf_counter()
    page.slider(key="quant_bits").set_value(2).run()
    assert time.perf_counter() - started < 10  # a redraw, not a retraining (the 1 s target is benchmarked on CIFAR-10)
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
    curve = chart(page, "Accuracy versus bit width")["data"][0]
    assert curve["name"] == "post-training" and len(curve["x"]) == 7


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


@pytest.mark.slow
def test_real_latency_is_measured_on_demand(page):
    page.radio(key="quant_mode").set_value("static").run()
    page.slider(key="quant_calibration").set_value(64).run()
    page.button(key="quant_run").click().run()
    open_tab(page, "Size & latency")
    page.button(key="quant_latency_button").click().run()
    assert not page.exception
    assert metric(page, "fp32 compiled").endswith("ms") and metric(page, "static int8 compiled").endswith("ms")
    bars = chart(page, "What each variant costs")["data"]
    assert "static int8" in bars[0]["x"]

"""AppTest of the "What changed" views on the technique pages (digits baseline): the live setting
layer by layer, the last saved run example by example, the gallery of flipped images."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.diff.gallery import DEFAULT_GALLERY_SIZE
from core.diff.runs import diff_runs
from core.foundation import history
from tests.conftest import open_app_page, record_prune_run

LAYER_CHART_TITLE = "Where the error enters"


def charts(at: AppTest, title_part: str) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart") if title_part in chart.proto.spec]


def gallery_image_count(at: AppTest) -> int:
    """Every image st.image drew in the main area (an "image" element carries its images, with captions, in proto.imgs).

    The sidebar's "Share this setup" QR code is an image too, and not part of any gallery."""
    return sum(len(element.proto.imgs) for element in at.main.get("image"))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def open_tab(at: AppTest, tab_key: str, label: str) -> None:
    at.session_state[tab_key] = label
    at.run()
    assert not at.exception


def expected_gallery_size(workspace, run_id: int) -> int:
    """What the page must show: the first min(24, flipped) flipped images of the run against its parent."""
    return min(DEFAULT_GALLERY_SIZE, len(diff_runs(workspace, run_id, with_layers=False).predictions.flipped))


def assert_saved_run_compared(at: AppTest, workspace, run_id: int) -> None:
    """The sentence, the numbers, the gallery and the saved run's layer chart of `run_id` against its parent."""
    run = history.get_run(workspace.history_db, run_id)
    assert any(f"run #{run_id}" in block.value and f"run #{run.parent_id}" in block.value for block in at.markdown)  # the sentence names both runs
    assert metric(at, "Top-1 agreement").endswith("%")
    flipped = int(metric(at, "Predictions changed").replace(",", ""))
    shown = expected_gallery_size(workspace, run_id)
    assert flipped >= shown > 0  # the settings below change predictions, so the gallery is not empty
    assert gallery_image_count(at) == shown
    assert any(f"run #{run_id}" in chart["layout"]["title"]["text"] for chart in charts(at, LAYER_CHART_TITLE))


def test_pruning_what_changed_shows_the_live_setting_and_the_saved_run(digits_baseline, session_workspace):
    at = open_app_page("pages/pruning.py")
    at.slider(key="prune_amount").set_value(0.9).run()
    open_tab(at, "prune_tab", "What changed")
    # Before any save: the live setting's layer errors, and a line saying how to get a run to compare.
    (preview,) = charts(at, LAYER_CHART_TITLE)
    assert "this setting" in preview["layout"]["title"]["text"] and preview["data"][0]["x"][0] == "conv1"
    assert any("Prune, fine-tune and save" in caption.value for caption in at.caption)
    assert gallery_image_count(at) == 0

    at.button(key="prune_run").click().run()  # no fine-tuning: the 90% one-shot model is saved
    assert not at.exception and not at.error
    run_id = history.list_runs(session_workspace.history_db)[-1].id
    assert_saved_run_compared(at, session_workspace, run_id)
    assert len(charts(at, LAYER_CHART_TITLE)) == 2  # the live setting and the saved run


def test_pruning_what_changed_removes_channels_from_an_already_pruned_source(digits_baseline, session_workspace):
    """Channels removed twice (a channel-pruned run as the source, then the slider's removal): the
    preview is packaged with its lineage's channels as indices of the full architecture and
    compares with the source layer by layer."""
    pruned_id = record_prune_run(digits_baseline, session_workspace, granularity="channel", method="ln", amount=0.25, remove=True)
    at = open_app_page("pages/pruning.py")
    at.selectbox(key="prune_source").set_value(pruned_id).run()
    at.radio(key="prune_granularity").set_value("channel").run()
    at.checkbox(key="prune_remove").check().run()
    open_tab(at, "prune_tab", "What changed")
    assert not at.error
    (preview,) = charts(at, LAYER_CHART_TITLE)
    assert f"against run #{pruned_id} (prune)" in preview["layout"]["title"]["text"]
    assert list(preview["data"][0]["x"]) == ["conv1", "conv2", "fc1", "fc2", "fc3"]  # every layer compared despite the shapes both prunings changed
    assert all(value is not None for value in preview["data"][0]["y"])


def test_quantization_what_changed_for_a_saved_simulation(digits_baseline, session_workspace):
    at = open_app_page("pages/quantization.py")
    at.slider(key="quant_bits").set_value(3).run()
    at.checkbox(key="quant_activations").check().run()
    open_tab(at, "quant_tab", "What changed")
    (shown,) = charts(at, LAYER_CHART_TITLE)
    assert [trace["name"] for trace in shown["data"]] == ["weights and activations", "weights only"]
    assert any("Save this simulated model" in caption.value for caption in at.caption)

    at.button(key="quant_save_simulated").click().run()
    assert not at.exception and not at.error
    run_id = history.list_runs(session_workspace.history_db)[-1].id
    assert_saved_run_compared(at, session_workspace, run_id)


@pytest.mark.slow  # a dynamic int8 run is timed compiled: tens of seconds on a busy 2-core machine
def test_quantization_what_changed_says_in_one_line_that_dynamic_has_no_layer_errors(digits_baseline, session_workspace):
    at = open_app_page("pages/quantization.py")
    at.radio(key="quant_mode").set_value("dynamic").run()
    at.button(key="quant_run").click().run()
    assert not at.exception and not at.error
    open_tab(at, "quant_tab", "What changed")
    assert any("dynamic int8 quantizes activations afresh" in caption.value for caption in at.caption)
    run_id = history.list_runs(session_workspace.history_db)[-1].id
    assert metric(at, "Top-1 agreement").endswith("%")
    assert any(f"run #{run_id}" in block.value for block in at.markdown)


@pytest.mark.slow  # trains the teacher when not cached yet, then races one seed
def test_distillation_what_changed_compares_the_student_with_the_run_it_replaces(digits_baseline, session_workspace):
    at = open_app_page("pages/distillation.py", timeout_s=300)
    at.number_input(key="distill_teacher_epochs").set_value(16).run()  # the quick teacher tests/test_distillation_page.py caches
    if any("No 'teacher' teacher is trained" in info.value for info in at.info):
        at.button(key="distill_train_teacher").click().run()
    at.number_input(key="distill_epochs").set_value(1)
    at.button(key="distill_run").click().run()
    assert not at.exception and not at.error
    charts_before = len(at.get("plotly_chart"))
    assert gallery_image_count(at) == 0  # the comparison waits in its closed expander
    at.session_state["distill_diff_open"] = True
    at.run()
    assert not at.exception
    run_id = next(run.id for run in reversed(history.list_runs(session_workspace.history_db)) if run.technique == "distill")
    assert_saved_run_compared(at, session_workspace, run_id)
    assert len(at.get("plotly_chart")) > charts_before

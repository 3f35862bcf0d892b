"""AppTest of the Compare & report page on the digits baseline: CLI runs appear, filters, pin and
delete work, charts draw, the pipeline runs from the page, exports are offered, presentation mode."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.charts.png import png_export_status
from core.cli.main import main
from core.foundation import history
from tests.conftest import open_app_page, record_prune_run


def open_page(presentation: bool = False) -> AppTest:
    return open_app_page("pages/compare.py", before_switch=(lambda at: at.toggle(key="presentation_mode").set_value(True).run()) if presentation else None)


@pytest.fixture()
def page(digits_baseline) -> AppTest:
    return open_page()


def open_tab(at: AppTest, label: str) -> None:
    at.session_state["compare_tab"] = label
    at.run()
    assert not at.exception


def table_ids(at: AppTest) -> list[int]:
    return [int(run_id) for run_id in at.dataframe[0].value["run_id"]]


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_runs_recorded_from_the_cli_appear_on_the_page(digits_baseline, session_workspace, capsys):
    assert main(["prune", "--workspace", str(session_workspace.root), "--amount", "0.6", "--method", "random"]) == 0
    run_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    at = open_page()
    frame = at.dataframe[0].value
    row = frame[frame["run_id"] == run_id].iloc[0]
    assert row["technique"] == "prune" and row["parent_id"] == digits_baseline.run_id
    recorded = history.get_run(session_workspace.history_db, run_id).metrics
    assert row["accuracy_percent"] == pytest.approx(100 * recorded["accuracy_after"], abs=0.01)
    assert row["size_bytes"] == min(recorded[key] for key in ("size_bytes_dense", "size_bytes_sparse", "size_bytes_gzip", "size_bytes_bitmask", "size_bytes_csr"))
    # The one latency protocol: the batch figure, the single image and the runtime they were timed in.
    assert row["latency_runtime"] == recorded["latency_runtime"] == "torch eager"
    assert row["latency_ms_single"] == pytest.approx(recorded["latency_ms_single_after"], abs=1e-3) and row["latency_batch_size"] == 256
    assert at.selectbox(key="compare_reference").value == digits_baseline.run_id  # compared with the sidebar's baseline


def test_filter_pin_and_delete(digits_baseline, session_workspace):
    db = session_workspace.history_db
    kept = history.record_run(db, "quantize", "digits", "simple_cnn", {"mode": "static"}, {"accuracy_after": 0.9, "artifact_bytes_after": 40_000}, parent_id=digits_baseline.run_id)
    doomed = history.record_run(db, "quantize", "digits", "simple_cnn", {"mode": "simulate"}, {"accuracy_after": 0.8, "artifact_bytes_after": 30_000}, parent_id=kept)
    at = open_page()
    at.multiselect(key="compare_filter_technique").set_value(["quantize"]).run()
    assert set(at.dataframe[0].value["technique"]) == {"quantize"} and {kept, doomed} <= set(table_ids(at))
    at.multiselect(key="compare_selected").set_value([kept]).run()
    at.button(key="compare_pin").click().run()
    assert not at.exception and history.get_run(db, kept).pinned
    assert any(label.startswith(f"#{kept} ") and "pinned" in label for label in at.selectbox(key="compare_reference").options)
    at.multiselect(key="compare_selected").set_value([doomed]).run()
    at.button(key="compare_delete").click().run()
    assert not at.exception
    assert history.get_run(db, doomed) is None and doomed not in table_ids(at)
    assert history.get_run(db, kept).pinned


def test_charts_draw_the_front_the_reference_and_the_lineage(page, digits_baseline):
    open_tab(page, "Charts")
    specs = chart_specs(page)
    names = [trace.get("name") for spec in specs for trace in spec["data"]]
    assert "Pareto front" in names and f"baseline #{digits_baseline.run_id}" in names
    titles = [spec["layout"]["title"]["text"] for spec in specs]
    assert {"Size vs accuracy", "Latency vs accuracy", "Lineage of runs"} <= set(titles)
    page.radio(key="compare_lineage_style").set_value("Sunburst").run()
    assert not page.exception
    assert any(trace["type"] == "sunburst" for spec in chart_specs(page) for trace in spec["data"])


def test_pipeline_runs_from_the_page_and_records_a_chain(page, digits_baseline, session_workspace):
    open_tab(page, "Pipeline")
    assert page.session_state["compare_amount"] == 0.9 and page.session_state["compare_steps"] == ["prune", "quantize"]  # the Deep Compression preset
    page.selectbox(key="compare_preset").set_value("smallest-fast").run()
    assert page.session_state["compare_steps"] == ["distill", "prune", "quantize"] and page.session_state["compare_remove"] is True
    page.multiselect(key="compare_steps").set_value(["prune"]).run()
    page.selectbox(key="compare_granularity").set_value("unstructured").run()
    page.selectbox(key="compare_method").set_value("l1").run()
    page.checkbox(key="compare_remove").set_value(False).run()
    page.slider(key="compare_amount").set_value(0.7).run()
    page.number_input(key="compare_finetune_epochs").set_value(0).run()
    page.button(key="compare_run_pipeline").click().run()
    assert not page.exception and not page.error
    metrics = {metric.label: metric.value for metric in page.metric}
    run_label = metrics["Run"]
    pipeline_run = history.get_run(session_workspace.history_db, int(run_label.lstrip("#")))
    prune_run = history.get_run(session_workspace.history_db, pipeline_run.parent_id)
    assert pipeline_run.technique == "pipeline" and prune_run.technique == "prune" and prune_run.parent_id == digits_baseline.run_id
    assert prune_run.params["amount"] == 0.7 and pipeline_run.params["preset"] == "smallest-fast" and pipeline_run.params["steps"] == ["prune"]
    assert pipeline_run.metrics["before_run_id"] == digits_baseline.run_id
    assert metrics["Accuracy (rebuilt from the zip)"] == f"{pipeline_run.metrics['accuracy_after']:.1%}"
    assert any(trace["type"] == "waterfall" for spec in chart_specs(page) for trace in spec["data"])


def test_pipeline_starts_from_a_chosen_run_and_a_quantized_pipeline_is_no_source(page, digits_baseline, session_workspace):
    pruned_id = record_prune_run(digits_baseline, session_workspace, amount=0.5)
    page.run()  # the history changed under the open page
    open_tab(page, "Pipeline")
    page.selectbox(key="compare_source").set_value(pruned_id).run()
    assert not page.exception and not page.error
    page.multiselect(key="compare_steps").set_value(["quantize"]).run()
    page.selectbox(key="compare_mode").set_value("simulate").run()
    page.number_input(key="compare_bits").set_value(4).run()
    page.button(key="compare_run_pipeline").click().run()
    assert not page.exception and not page.error
    pipeline_run = history.get_run(session_workspace.history_db, int(next(m.value for m in page.metric if m.label == "Run").lstrip("#")))
    quantize_run = history.get_run(session_workspace.history_db, pipeline_run.parent_id)
    assert quantize_run.technique == "quantize" and quantize_run.parent_id == pruned_id and pipeline_run.metrics["before_run_id"] == pruned_id
    page.run()  # the next script run lists the history as it is now
    offered = page.selectbox(key="compare_source").options
    assert any(label.startswith(f"run #{quantize_run.parent_id} ") for label in offered)
    assert any(label.startswith(f"run #{pruned_id} prune") for label in offered)
    assert not any(label.startswith((f"run #{pipeline_run.id} ", f"run #{quantize_run.id} ")) for label in offered)


def test_a_bad_pipeline_setting_shows_one_line_and_the_page_keeps_working(page):
    open_tab(page, "Pipeline")
    page.multiselect(key="compare_steps").set_value(["quantize"]).run()
    page.selectbox(key="compare_mode").set_value("static").run()
    page.number_input(key="compare_bits").set_value(4).run()
    page.button(key="compare_run_pipeline").click().run()
    assert not page.exception
    assert len(page.error) == 1 and "int8 only" in page.error[0].value and "\n" not in page.error[0].value


def test_export_tab_offers_the_downloads_and_says_whether_png_works(page):
    open_tab(page, "Export & import")
    buttons = [button.proto.id for button in page.get("download_button")]
    for key in ("compare_download_report", "compare_download_csv", "compare_download_zip"):
        assert any(button_id.endswith(key) for button_id in buttons), key
    status = png_export_status()
    if status.available:
        assert any(button_id.endswith("compare_download_png") for button_id in buttons)
    else:
        assert status.reason in [info.value for info in page.info]


def test_presentation_mode_tucks_the_controls_away_and_enlarges_the_charts(digits_baseline):
    at = open_page(presentation=True)
    assert [expander.label for expander in at.main.expander] == ["Controls (filters, selection, reference)"]
    specs = chart_specs(at)  # the Charts tab opens first when presenting
    assert specs and all(spec["layout"]["font"]["size"] == 22 for spec in specs)
    size_chart = next(spec for spec in specs if spec["layout"]["title"]["text"] == "Size vs accuracy")
    assert size_chart["layout"]["height"] == int(480 * 1.3)


def test_an_uploaded_model_zip_loads_back_and_shows_its_accuracy(page, digits_baseline, session_workspace, tmp_path):
    import pickle
    from pathlib import Path

    from core.contract.artifact import write_model_zip
    from core.contract.run_models import package_for_run

    open_tab(page, "Export & import")
    data = write_model_zip(package_for_run(history.get_run(session_workspace.history_db, digits_baseline.run_id), session_workspace))[0]
    page.get("file_uploader")[0].set_value(("baseline.zip", data, "application/zip")).run()
    assert not page.exception and not page.error
    metrics = {metric.label: metric.value for metric in page.metric}
    expected = f"{digits_baseline.evaluation.accuracy:.2%}"
    assert metrics["Accuracy recorded at export"] == expected and metrics["Accuracy now (digits)"] == expected
    marker = tmp_path / "pwned"

    class Explode:
        def __reduce__(self):
            return (Path.touch, (marker,))

    page.get("file_uploader")[0].set_value(("model.pt", pickle.dumps(Explode()), "application/octet-stream")).run()
    assert not page.exception
    assert len(page.error) == 1 and "model.pt is not a model zip" in page.error[0].value and "\n" not in page.error[0].value
    assert not marker.exists()

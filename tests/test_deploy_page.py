"""AppTest of the Compare page's Deploy tab (issue 14) on real digits runs: Measure draws the
runtimes chart and table, a saved measurement is shown again without measuring, a runtime that is
not installed is named with its reason, the ONNX download serves exactly the bytes
`python -m core export` writes, and a run that cannot be exported says why in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import core.deploy.runtimes
import ui.deploy_view
from core.deploy.export import EXPORTS_DIR, file_name, onnx_for_run
from core.deploy.runtimes import ONNXRUNTIME, OPENVINO, cached_runtime_report, default_runs
from core.foundation.history import get_run
from core.foundation.measures.latency import EAGER
from tests.conftest import REPO_ROOT, open_app_page, record_prune_run

FAST_RUNTIMES = [EAGER, ONNXRUNTIME]  # torch.compile is left out: it compiles for tens of seconds


def open_deploy_tab(selected: list[int] | None = None) -> AppTest:
    at = open_app_page("pages/compare.py")
    at.session_state["compare_tab"] = "Deploy"
    if selected:
        at.session_state["compare_selected"] = selected  # the runs the ONNX buttons are for
    at.run()
    assert not at.exception
    return at


def measure(at: AppTest, run_id: int, runtimes: list[str]) -> AppTest:
    at.selectbox(key="compare_deploy_run").set_value(run_id).run()
    at.multiselect(key="compare_deploy_runtimes").set_value(runtimes).run()
    at.number_input(key="compare_deploy_rounds").set_value(1).run()
    at.button(key="compare_deploy_measure").click().run()
    assert not at.exception
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def runtime_table(at: AppTest):
    return next(frame.value for frame in at.dataframe if "runtime" in frame.value.columns)


def captions(at: AppTest) -> str:
    return "\n".join(caption.value for caption in at.caption)


@pytest.fixture()
def media_managers(monkeypatch) -> list:
    """Every MediaFileManager AppTest makes (one per script run), so a test can run a download
    button's deferred callable the way the server does on a click."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.media_file_manager import MediaFileManager

    made = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(app_test, "MediaFileManager", Recording)
    return made


def downloaded(manager, button) -> tuple[bytes, str, str]:
    """(bytes, file name, mime) of a download button, as a click would serve them."""
    file_id = button.proto.deferred_file_id
    assert file_id, "the ONNX download is built on click"
    url = manager.execute_deferred(file_id)
    stored = manager._storage.get_file(url.rsplit("/", 1)[1].split(".")[0])
    return stored.content, stored.filename, stored.mimetype


def test_measure_draws_the_runtimes_chart_and_table_for_both_batches(digits_baseline, session_workspace, random_prune_run):
    at = open_deploy_tab()
    at = measure(at, random_prune_run, FAST_RUNTIMES)
    assert not at.error
    run_ids = default_runs(session_workspace, random_prune_run)
    assert run_ids == [digits_baseline.run_id, random_prune_run]  # the run beside the model it pruned
    report = cached_runtime_report(session_workspace, run_ids)
    assert report is not None and set(report.models) == {f"run #{digits_baseline.run_id} (train)", f"run #{random_prune_run} (prune)"}
    assert "Latency per image by runtime, batch 256" in chart_titles(at)[0]
    table = runtime_table(at)
    assert set(table["batch_size"]) == {256}
    assert {(row.model, row.runtime, row.precision) for row in table.itertuples()} == {(m, r, p) for m in report.models for r in FAST_RUNTIMES for p in ("fp32", "int8")}
    onnx_fp32 = table[(table["runtime"] == ONNXRUNTIME) & (table["precision"] == "fp32")]
    assert (onnx_fp32["latency_ms"] > 0).all() and (onnx_fp32["status"] == "available").all()
    baseline_eager = table[(table["model"] == report.models[0]) & (table["runtime"] == EAGER) & (table["precision"] == "fp32")]
    assert baseline_eager["speedup_vs_fp32_eager"].iloc[0] == pytest.approx(1.0)
    # The caption says when, on what and with how many threads; the int8 sources are named.
    text = captions(at)
    assert report.measured_at in text and report.machine["cpu_model"] in text and f"{report.threads} thread" in text
    markdown = "\n".join(element.value for element in at.markdown)
    assert all(source in markdown for source in report.int8_sources.values())
    # Batch 1: the other chart and the other half of the table.
    at.radio(key="compare_deploy_batch").set_value(1).run()
    assert not at.exception
    assert "Latency per image by runtime, batch 1 " in chart_titles(at)[0]
    assert set(runtime_table(at)["batch_size"]) == {1}


def test_a_saved_measurement_is_shown_without_measuring(digits_baseline, session_workspace, monkeypatch):
    run_id = record_prune_run(digits_baseline, session_workspace, amount=0.5, method="l1")
    measure(open_deploy_tab(), run_id, [EAGER])
    saved = cached_runtime_report(session_workspace, default_runs(session_workspace, run_id))
    assert saved is not None

    def refuse(*args, **kwargs):
        raise AssertionError("the Deploy tab measured where it had a saved measurement to show")

    monkeypatch.setattr(ui.deploy_view, "measure_runtimes", refuse)
    monkeypatch.setattr(core.deploy.runtimes, "median_call_ms", refuse)
    at = open_deploy_tab()
    at.selectbox(key="compare_deploy_run").set_value(run_id).run()
    assert not at.exception and not at.error
    assert "Saved measurement " + saved.measured_at in captions(at)
    table = runtime_table(at)
    shown = [None if pd.isna(value) else value for value in table["latency_ms"]]
    assert shown == [f.latency_ms for f in saved.figures if f.batch_size == 256]  # eager int8 has no time: None
    assert chart_titles(at)


def test_a_runtime_that_is_not_installed_is_named_with_its_reason(digits_baseline, session_workspace, random_prune_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError, in the page too
    at = measure(open_deploy_tab(), random_prune_run, [EAGER, OPENVINO])
    assert not at.error
    report = cached_runtime_report(session_workspace, default_runs(session_workspace, random_prune_run))
    reason = next(f.reason for f in report.figures if f.runtime == OPENVINO)
    assert "openvino is not installed" in reason
    sentence = next(info.value for info in at.info if info.value.startswith("Not available here"))
    assert f"{OPENVINO} fp32 and int8: openvino is not installed" in sentence
    assert "torch eager int8: torch has int8 CPU kernels only through torch.compile" in sentence
    table = runtime_table(at)
    assert set(table[table["runtime"] == OPENVINO]["status"]) == {f"unavailable: {reason}"}
    assert "Traceback" not in sentence


def test_the_onnx_download_serves_the_bytes_the_cli_writes(digits_baseline, session_workspace, random_prune_run, media_managers, tmp_path):
    for cached in (session_workspace.root / EXPORTS_DIR).glob(f"run-{random_prune_run}.*"):
        cached.unlink()  # not exported yet, whatever ran before: the Export button is offered
    at = open_deploy_tab(selected=[random_prune_run])
    caption = captions(at)
    assert "fp32 weights and compute, as the run's model." in caption  # deploy_form's note, before any export
    at.button(key=f"compare_deploy_export_{random_prune_run}").click().run()
    assert not at.exception and not at.error
    expected = onnx_for_run(session_workspace, random_prune_run)
    summary = expected.summary()
    markdown = "\n".join(element.value for element in at.markdown)
    assert f"In ONNX Runtime {summary['accuracy']:.2%}" in markdown and f"agrees with torch on {summary['agreement']:.2%}" in markdown
    button = next(b for b in at.get("download_button") if b.proto.id.endswith(f"compare_deploy_download_{random_prune_run}"))
    data, name, mime = downloaded(media_managers[-1], button)
    assert data == expected.onnx_bytes and data[:1] == b"\x08"  # an ONNX protobuf: field 1 (ir_version, a varint) first
    assert name == file_name(get_run(session_workspace.history_db, random_prune_run)) and mime == "application/octet-stream"
    out = tmp_path / "cli.onnx"
    completed = subprocess.run(
        [sys.executable, "-m", "core", "export", "--run", str(random_prune_run), "--format", "onnx", "--out", str(out), "--workspace", str(session_workspace.root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert out.read_bytes() == data
    # Another session finds the file exported already: the download is offered without an Export click.
    again = open_deploy_tab(selected=[random_prune_run])
    assert not [b for b in again.button if b.proto.id.endswith(f"compare_deploy_export_{random_prune_run}")]
    button = next(b for b in again.get("download_button") if b.proto.id.endswith(f"compare_deploy_download_{random_prune_run}"))
    assert downloaded(media_managers[-1], button)[0] == data


def test_a_run_that_cannot_be_exported_or_measured_says_why_in_one_line(digits_baseline, session_workspace, random_prune_run, monkeypatch):
    run_id = record_prune_run(digits_baseline, session_workspace, amount=0.3, method="l1")
    artifact = session_workspace.resolve_artifact(get_run(session_workspace.history_db, run_id).artifact_path)
    shutil.rmtree(artifact)  # its model files are gone
    monkeypatch.setattr(ui.deploy_view, "MAX_DOWNLOADS", 1)  # the newest shown run only
    at = open_deploy_tab(selected=[random_prune_run, run_id])
    assert "The newest 1 of the 2 runs shown" in captions(at)
    assert [b.proto.id for b in at.button if "compare_deploy_export_" in b.proto.id][0].endswith(f"compare_deploy_export_{run_id}")
    at.button(key=f"compare_deploy_export_{run_id}").click().run()
    assert not at.exception
    assert len(at.error) == 1 and f"#{run_id}" in at.error[0].value and "\n" not in at.error[0].value
    assert not any(b.proto.id.endswith(f"compare_deploy_download_{run_id}") for b in at.get("download_button"))
    measure(at, run_id, [EAGER])
    assert not at.exception
    assert any("\n" not in error.value for error in at.error) and len(at.error) == 2

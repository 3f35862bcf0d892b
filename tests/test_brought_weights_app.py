"""The sidebar's "Your own weights" (ui/brought.py): an upload becomes the baseline the Overview shows,
named with its file and SHA-256; a bad file gets one line and nothing is recorded."""

from __future__ import annotations

import hashlib
import io

import torch
from streamlit.testing.v1 import AppTest

from core.foundation import history
from core.foundation.models.registry import build_model
from tests.conftest import REPO_ROOT


def _bytes_of(state_dict: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": state_dict, "epoch": 12}, buffer)
    return buffer.getvalue()


def _app() -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _upload(at: AppTest, name: str, data: bytes) -> None:
    uploader = next(widget for widget in at.get("file_uploader") if widget.label.startswith("Trained weights for simple_cnn"))
    uploader.set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [exception.value for exception in at.exception]


def test_uploaded_weights_are_recorded_as_the_baseline_and_named_on_the_overview(digits_baseline, workspace):
    at = _app()
    data = _bytes_of(digits_baseline.model.state_dict())
    sha256 = hashlib.sha256(data).hexdigest()
    _upload(at, "our model.pt", data)
    assert any(sha256[:12] in caption.value for caption in at.sidebar.caption)
    assert any("not recorded as the baseline yet" in info.value for info in at.sidebar.info)
    at.button(key="sidebar_train").click().run()
    assert not at.exception
    assert any("Baseline cached" in success.value for success in at.sidebar.success)
    accuracy = next(metric.value for metric in at.metric if metric.label == "Test accuracy")
    assert accuracy == f"{digits_baseline.metrics.accuracy:.1%}"  # the same weights on the same test set
    assert any("our model.pt" in caption.value and sha256 in caption.value for caption in at.caption)
    (run,) = history.list_runs(workspace.history_db)
    assert (run.params["brought_weights_name"], run.params["brought_weights_sha256"], run.params["epochs"]) == ("our model.pt", sha256, 0)


def test_weights_for_another_dataset_are_refused_in_one_line_and_nothing_is_recorded(workspace):
    at = _app()
    _upload(at, "twelve classes.pt", _bytes_of(build_model("simple_cnn", 1, 8, 12).state_dict()))
    at.button(key="sidebar_train").click().run()
    assert not at.exception
    assert any("12 classes" in error.value and "10" in error.value for error in at.error)
    assert history.count_runs(workspace.history_db) == 0


def test_a_pickle_holding_code_is_refused_at_the_upload(workspace):
    at = _app()
    buffer = io.BytesIO()
    torch.save({"model": build_model("simple_cnn", 1, 8, 10).state_dict(), "config": __import__("argparse").Namespace(lr=0.1)}, buffer)
    _upload(at, "with objects.pt", buffer.getvalue())
    assert any("restricted loader" in error.value for error in at.sidebar.error)
    assert "sidebar_brought" not in at.session_state
    assert any("No baseline yet" in info.value for info in at.sidebar.info)  # the sidebar goes on without it

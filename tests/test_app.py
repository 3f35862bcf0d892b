"""AppTest of the router, the sidebar and the Overview page."""

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT


def new_app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)


def test_overview_asks_for_a_baseline_then_shows_it_after_training(session_workspace):
    at = new_app()
    at.run()
    assert not at.exception
    at.number_input(key="sidebar_train_size").set_value(300)
    at.number_input(key="sidebar_epochs").set_value(3)
    at.run()
    assert any("No baseline is trained" in info.value for info in at.info)
    at.button(key="sidebar_train").click()
    at.run()
    assert not at.exception
    labels = [metric.label for metric in at.metric]
    assert "Test accuracy" in labels and "Parameters" in labels and "MACs per image" in labels
    accuracy = next(metric.value for metric in at.metric if metric.label == "Test accuracy")
    assert float(accuracy.rstrip("%")) > 20
    assert len(at.get("plotly_chart")) >= 2  # learning curve and confusion matrix
    assert any("Baseline cached" in success.value for success in at.sidebar.success)


def test_bad_folder_in_sidebar_shows_a_message_and_the_app_keeps_working(session_workspace, tmp_path):
    at = new_app()
    at.run()
    at.selectbox(key="sidebar_dataset").set_value("folder…")
    at.run()
    at.text_input(key="sidebar_folder").set_value(str(tmp_path / "missing")).run()
    assert not at.exception
    assert any("does not exist" in error.value for error in at.error)


def test_server_caps_torch_threads_so_training_leaves_a_core_free(monkeypatch):
    import torch

    from ui.state import cap_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("MEL_TORCH_THREADS", "1")
        assert cap_torch_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("MEL_TORCH_THREADS")
        import os

        assert cap_torch_threads() == max(1, (os.cpu_count() or 2) - 1)
    finally:
        torch.set_num_threads(before)

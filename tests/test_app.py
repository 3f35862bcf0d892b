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


def test_train_size_below_class_count_is_refused_with_a_message(session_workspace):
    at = new_app()
    at.run()
    at.number_input(key="sidebar_train_size").set_value(5).run()
    assert not at.exception
    assert any("smaller than the 10 classes" in error.value for error in at.error)
    at.number_input(key="sidebar_train_size").set_value(0).run()
    assert not at.exception and not at.error


def test_folder_with_problems_names_them_and_the_app_goes_on(session_workspace, tmp_path):
    from tests.test_datasets import make_folder

    root = make_folder(tmp_path / "pets")
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    at = new_app()
    at.run()
    at.selectbox(key="sidebar_dataset").set_value("folder…").run()
    at.text_input(key="sidebar_folder").set_value(str(root)).run()
    assert not at.exception
    assert any("1 files were skipped" in warning.value and "broken.jpg" in warning.value for warning in at.sidebar.warning)
    import shutil

    missing_test = make_folder(tmp_path / "no-test")
    shutil.rmtree(missing_test / "test")
    at.text_input(key="sidebar_folder").set_value(str(missing_test)).run()
    assert not at.exception
    assert any("has no test/ subfolder" in error.value for error in at.error)


def test_offline_download_names_the_folder_and_stays_on_digits(session_workspace, monkeypatch):
    import core.foundation.data.datasets as datasets

    def offline(name, data_dir, download):
        raise OSError("network is unreachable") if download else RuntimeError("Dataset not found")

    monkeypatch.setattr(datasets, "_torchvision_splits", offline)
    at = new_app()
    at.run()
    at.selectbox(key="sidebar_dataset").set_value("cifar10").run()
    assert not at.exception
    assert any("showing the embedded 'digits'" in warning.value for warning in at.sidebar.warning)
    at.button(key="sidebar_download").click().run()
    assert not at.exception
    assert any("cifar10 is not in" in error.value and "cifar-10-python.tar.gz" in error.value for error in at.error)
    # The baseline shown is still the embedded default's.
    assert any("digits" in info.value for info in at.sidebar.info) or any("Baseline cached" in success.value for success in at.sidebar.success)


def test_sidebar_offers_the_one_model_registry_and_the_epoch_cap(session_workspace):
    from core.foundation.models.names import model_group
    from core.foundation.models.registry import available_models
    from core.foundation.training.loop import MAX_EPOCHS

    at = new_app()
    at.run()
    assert not at.exception
    assert at.selectbox(key="sidebar_model").options == [f"{name} · {model_group(name)}" for name in available_models()]  # grouped: the lab's own, then torchvision
    assert at.number_input(key="sidebar_epochs").max == MAX_EPOCHS

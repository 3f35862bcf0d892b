"""AppTest of the Distillation page on digits: train the teacher, run the race, change settings without retraining."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.contract.options import spec
from core.distillation import DistillConfig
from core.distillation.config import DEFAULT_PRESET, DISTILL_PRESETS
from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from tests.conftest import REPO_ROOT, open_app_page

PAGE = "pages/distillation.py"
TEACHER_EPOCHS = 16  # the same quick teacher as tests/test_distillation.py, so the session cache is shared


def open_page() -> AppTest:
    return open_app_page(PAGE, timeout_s=300)


def metric_value(at: AppTest, label: str) -> str:
    return next(metric.value for metric in at.metric if metric.label == label)


@pytest.mark.slow  # trains a teacher (when not cached yet) and races two students twice: ~40 s on a busy 2-core machine
def test_distillation_page_trains_teacher_races_and_keeps_results_on_slider_changes(digits_baseline, session_workspace):
    at = open_page()
    at.number_input(key="distill_teacher_epochs").set_value(TEACHER_EPOCHS).run()
    if any("No 'teacher' teacher is trained" in info.value for info in at.info):
        at.button(key="distill_train_teacher").click().run()
        assert not at.exception
    assert float(metric_value(at, "Teacher accuracy").rstrip("%")) > 80
    assert len(at.get("plotly_chart")) == 1  # the soft labels, before any race
    assert any("Run the race" in info.value for info in at.info)

    # Every label: the page's default preset keeps 5% of them, and two epochs on 72 digits images
    # leave the students near chance, where an "above chance" check depends on the CPU's rounding.
    at.select_slider(key="distill_labelled").set_value(1.0)
    at.number_input(key="distill_epochs").set_value(2)
    at.slider(key="distill_seeds").set_value(2)
    at.number_input(key="distill_temperature").set_value(3.0)
    at.button(key="distill_run").click().run()
    assert not at.exception
    hard = float(metric_value(at, "Student, hard labels").rstrip("%"))
    distilled = float(metric_value(at, "Student, distilled").rstrip("%"))
    assert hard > 20 and distilled > 20
    assert "±" in metric_value(at, "Gain, points (distilled − hard)")  # two seeds give a spread
    assert len(at.get("plotly_chart")) == 5  # soft labels, curves, size vs accuracy, agreement, gain per seed
    runs = [run for run in history.list_runs(session_workspace.history_db) if run.technique == "distill"]
    assert runs[-1].params["seeds"] == [0, 1] and runs[-1].params["temperature"] == 3.0
    assert runs[-1].parent_id == digits_baseline.run_id  # the distilled student replaces the page's source, the sidebar's baseline
    assert any(f"Saved as run {runs[-1].id}" in success.value for success in at.success)

    # A slider change redraws the soft labels but never retrains; the old results stay, marked as stale.
    at.number_input(key="distill_temperature").set_value(8.0).run()
    assert not at.exception
    assert len([run for run in history.list_runs(session_workspace.history_db) if run.technique == "distill"]) == len(runs)
    assert any("settings above have changed" in warning.value for warning in at.warning)
    assert metric_value(at, "Student, distilled") == f"{distilled:.1f}%"


def test_distillation_widgets_take_their_ranges_from_the_config_and_defaults_from_the_preset(digits_baseline):
    at = open_page()
    preset = DISTILL_PRESETS[DEFAULT_PRESET]
    for key, name in (("distill_temperature", "temperature"), ("distill_alpha", "alpha")):
        widget, option = (at.number_input if name == "temperature" else at.slider)(key=key), spec(DistillConfig, name)
        assert (widget.min, widget.max, widget.value) == (option.minimum, option.maximum, getattr(preset, name)), key
    assert at.select_slider(key="distill_labelled").value == preset.labelled_fraction
    assert preset.why in [caption.value for caption in at.caption]
    # Another preset puts its own values in the widgets.
    at.selectbox(key="distill_preset").set_value("all-labels").run()
    assert not at.exception
    other = DISTILL_PRESETS["all-labels"]
    assert (at.number_input(key="distill_temperature").value, at.slider(key="distill_alpha").value) == (other.temperature, other.alpha)
    assert at.select_slider(key="distill_labelled").value == 1.0  # every training image
    for key, name in (("distill_epochs", "epochs"), ("distill_learning_rate", "learning_rate"), ("distill_teacher_epochs", "teacher_epochs")):
        widget, option = at.number_input(key=key), spec(DistillConfig, name)
        assert (widget.min, widget.max) == (option.minimum, option.maximum), key
    assert at.number_input(key="distill_teacher_epochs").value is None  # None: the classroom preset, as in the CLI
    assert at.selectbox(key="distill_student").value == digits_baseline.config.model  # the source's architecture, a student


def test_distillation_page_explains_a_teacher_smaller_than_the_student(session_workspace, tmp_path):
    """On 32x32 colour images the wide student outgrows the lab's teacher: the page says so and keeps working."""
    folder = tmp_path / "pets"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (folder / split / name).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / split / name / f"{i}.png")
    get_baseline(BaselineConfig(DatasetSpec(f"folder:{folder}"), epochs=1), session_workspace)  # what the sidebar's button trains
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.selectbox(key="sidebar_dataset").set_value("folder…").run()
    at.text_input(key="sidebar_folder").set_value(str(folder)).run()
    at.number_input(key="sidebar_epochs").set_value(1).run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    at.selectbox(key="distill_student").set_value("simple_cnn_wide").run()
    assert not at.exception
    assert any("is smaller than student 'simple_cnn_wide'" in error.value for error in at.error)
    at.selectbox(key="distill_student").set_value("simple_cnn_narrow").run()
    assert not at.exception and not at.error
    assert any("No 'teacher' teacher is trained" in info.value for info in at.info)

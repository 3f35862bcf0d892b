"""AppTest of the sidebar's training: Stop training exists only while a baseline trains, and stops it."""

from __future__ import annotations

import streamlit as st
from streamlit.testing.v1 import AppTest

from core.foundation import history
from tests.conftest import REPO_ROOT
from ui.state import TRAINING_STOP_KEY, SessionStopFlag


def new_app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)


def button_labels(at: AppTest) -> list[str]:
    return [button.label for button in at.button]


def test_stop_is_offered_only_while_training_and_stops_the_run(workspace, monkeypatch):
    import core.foundation.baseline.trained

    at = new_app()
    at.run()
    assert not at.exception
    at.number_input(key="sidebar_train_size").set_value(300)
    at.number_input(key="sidebar_epochs").set_value(200).run()  # minutes if it were not stopped
    assert any("No baseline yet" in info.value for info in at.sidebar.info)
    assert "Train baseline" in button_labels(at) and "Stop training" not in button_labels(at)  # nothing trains yet

    real_get_baseline = core.foundation.baseline.trained.get_baseline
    during_training = []

    def press_stop_after_the_first_batch(config, workspace, progress, stop=None, dataset=None):
        def report(update):
            progress(update)
            if update.stage == "train" and not during_training:
                # The Stop button was drawn before the first batch: its key is in the session.
                during_training.append("training_stop" in st.session_state)
                SessionStopFlag(TRAINING_STOP_KEY).set()  # what the button's on_click does

        return real_get_baseline(config, workspace, report, stop, dataset)

    monkeypatch.setattr(core.foundation.baseline.trained, "get_baseline", press_stop_after_the_first_batch)
    at.button(key="sidebar_train").click().run()
    assert not at.exception
    assert during_training == [True]
    assert [warning.value for warning in at.sidebar.warning] == ["Training stopped; nothing was saved."]
    assert "Stop training" not in button_labels(at) and "Train baseline" in button_labels(at)
    assert any("No baseline is trained" in info.value for info in at.info)
    assert not [p for p in workspace.checkpoint_dir.rglob("*") if p.is_file()]
    assert history.count_runs(workspace.history_db) == 0
    # The message is said once, not on every later rerun.
    at.run()
    assert not at.sidebar.warning and "Stop training" not in button_labels(at)

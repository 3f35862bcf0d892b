"""The dashboard with a workspace whose runs.sqlite is not a database: it starts, and says so in one line."""

from __future__ import annotations

import shutil

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT
from tests.test_broken_history import NOT_A_DATABASE, assert_untouched, break_history


def new_app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)


def sidebar_errors(at: AppTest) -> list[str]:
    return [error.value for error in at.sidebar.error]


def test_dashboard_starts_with_a_broken_history_and_says_so(workspace, digits_baseline, session_workspace):
    # The cached default baseline, copied in, so the Overview has something to show.
    shutil.copytree(session_workspace.checkpoint_dir, workspace.checkpoint_dir)
    garbage = break_history(workspace.root)
    at = new_app()
    at.run()
    assert not at.exception
    line = f"{workspace.history_db} {NOT_A_DATABASE}"
    assert sidebar_errors(at) == [line]
    assert "Test accuracy" in [metric.label for metric in at.metric]  # the Overview still shows the baseline
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception
    assert line in [error.value for error in at.main.error]
    assert_untouched(workspace.root, garbage)


def test_with_a_broken_history_training_is_not_offered(workspace):
    """Training would end in the same error after minutes of work, so the sidebar offers no button."""
    garbage = break_history(workspace.root)
    at = new_app()
    at.run()
    assert not at.exception
    assert sidebar_errors(at) == [f"{workspace.history_db} {NOT_A_DATABASE}"]
    assert "sidebar_train" not in [button.key for button in at.button]
    assert_untouched(workspace.root, garbage)

"""First render: the sidebar and the Overview come up from the baseline's card, without torch.

The server process is a fresh Python (a subprocess running AppTest), since this test process has
imported torch long ago; what it reports is read from its sys.modules, not timed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from core.foundation.baseline.card import find_baseline_card
from core.foundation.baseline.trained import card_of, load_cached_baseline
from core.foundation.workspace import META_FILE, WEIGHTS_FILE, Workspace
from tests.conftest import DEFAULT_BASELINE_CONFIG, REPO_ROOT

# Runs app.py once in AppTest (the dashboard's first script run: sidebar and Overview) and prints
# what was drawn and whether torch got imported. The PagesManager tweak is tests/conftest.py's.
SERVER_RUN = r"""
import json, os, sys, threading
from streamlit.runtime.pages_manager import PagesManager
import streamlit.testing.v1.app_test as app_test
from streamlit.testing.v1 import AppTest

class NavigationOnlyPagesManager(PagesManager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False

app_test.PagesManager = NavigationOnlyPagesManager
at = AppTest.from_file(os.path.join(os.getcwd(), "app.py"), default_timeout=120)
at.run()
torch_after_run = "torch" in sys.modules
warmup = [thread for thread in threading.enumerate() if thread.name == "torch-warmup"]
for thread in warmup:
    thread.join(timeout=300)
threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
ray_started = "ray" in sys.modules and sys.modules["ray"].is_initialized()
print(json.dumps({
    "exceptions": [str(element.value) for element in at.exception],
    "errors": [element.value for element in at.error],
    "metrics": {metric.label: metric.value for metric in at.metric},
    "charts": len(at.get("plotly_chart")),
    "sidebar_success": [element.value for element in at.sidebar.success],
    "torch_after_run": torch_after_run,
    "warmup_threads": len(warmup),
    "torch_after_warmup": "torch" in sys.modules,
    "torch_threads": threads,
    "ray_started": ray_started,
    "ray_cpus": sys.modules["ray"].cluster_resources().get("CPU") if ray_started else None,
}))
if ray_started:
    from core.sweep import engine
    engine.shutdown()
"""


def first_script_run(workspace_root, warmup: bool, classroom: bool = False) -> dict:
    env = {**os.environ, "MEL_HOME": str(workspace_root), "MEL_TORCH_WARMUP": "1" if warmup else "0", "MEL_TORCH_THREADS": "1"}
    env.pop("MEL_CLASSROOM", None)
    env.pop("RAY_ADDRESS", None)
    if classroom:
        env.update({"MEL_CLASSROOM": "1", "MEL_MAX_JOBS": "1"})
    done = subprocess.run([sys.executable, "-c", SERVER_RUN], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("classroom", [False, True], ids=["one-user", "classroom"])
def test_the_sidebar_and_the_overview_draw_a_cached_baseline_without_importing_torch(digits_baseline, session_workspace, classroom):
    shown = first_script_run(session_workspace.root, warmup=False, classroom=classroom)
    assert not shown["exceptions"] and not shown["errors"]
    assert shown["metrics"]["Test accuracy"] == f"{digits_baseline.metrics.accuracy:.1%}"
    assert shown["metrics"]["Parameters"] == f"{digits_baseline.metrics.params:,}"
    assert shown["charts"] == 2  # the learning curve and the confusion matrix
    assert shown["sidebar_success"] and shown["sidebar_success"][0].startswith("Baseline cached:")
    assert shown["torch_after_run"] is False


def test_torch_loads_in_the_background_after_the_first_page(digits_baseline, session_workspace):
    shown = first_script_run(session_workspace.root, warmup=True)
    assert not shown["exceptions"] and shown["charts"] == 2
    assert shown["warmup_threads"] == 1
    assert shown["torch_after_warmup"] is True and shown["torch_threads"] == 1  # capped as ui.state.cap_torch_threads does
    assert shown["ray_started"] is False  # not a classroom: no job queue, no cluster


def test_a_classroom_server_starts_its_job_cluster_in_the_background_after_the_first_page(digits_baseline, session_workspace):
    shown = first_script_run(session_workspace.root, warmup=True, classroom=True)
    assert not shown["exceptions"] and shown["charts"] == 2
    assert shown["ray_started"] is True and shown["ray_cpus"] == 1  # MEL_MAX_JOBS, as the queue's own connect asks


def test_the_card_says_what_the_loaded_baseline_says(digits_baseline, session_workspace):
    card = find_baseline_card(DEFAULT_BASELINE_CONFIG, session_workspace)
    assert card is not None
    loaded = card_of(load_cached_baseline(DEFAULT_BASELINE_CONFIG, session_workspace))
    assert card == replace(loaded, saved_at=card.saved_at)
    assert card.saved_at == (loaded.checkpoint / META_FILE).stat().st_mtime
    assert find_baseline_card(replace(DEFAULT_BASELINE_CONFIG, seed=DEFAULT_BASELINE_CONFIG.seed + 1), session_workspace) is None
    assert find_baseline_card(replace(DEFAULT_BASELINE_CONFIG, epochs=card.recipe.epochs + 1), session_workspace) is None
    same_epochs = find_baseline_card(replace(DEFAULT_BASELINE_CONFIG, epochs=card.recipe.epochs), session_workspace)
    explicit = replace(DEFAULT_BASELINE_CONFIG, epochs=card.recipe.epochs)  # the key is the recipe: the preset's epochs, named, are the same checkpoint
    assert same_epochs.checkpoint == card.checkpoint == load_cached_baseline(explicit, session_workspace).checkpoint


def copied_workspace(session_workspace, tmp_path) -> Workspace:
    """A copy of the session workspace's digits checkpoint and history, to change without harm."""
    folder = find_baseline_card(DEFAULT_BASELINE_CONFIG, session_workspace).checkpoint
    copy = Workspace.open(tmp_path / "copy")
    shutil.copytree(folder, copy.checkpoint_dir / folder.name)
    shutil.copy(session_workspace.history_db, copy.history_db)
    return copy


def test_a_checkpoint_the_card_cannot_vouch_for_gives_no_card_and_the_overview_loads_it(digits_baseline, session_workspace, tmp_path):
    old = copied_workspace(session_workspace, tmp_path)
    folder = next(old.checkpoint_dir.iterdir())
    meta = json.loads((folder / META_FILE).read_text())
    del meta["class_names"]  # as written before the card existed
    (folder / META_FILE).write_text(json.dumps(meta))
    assert find_baseline_card(DEFAULT_BASELINE_CONFIG, old) is None
    shown = first_script_run(old.root, warmup=False)  # an old workspace still opens: through torch
    assert not shown["exceptions"] and shown["charts"] == 2
    assert shown["metrics"]["Test accuracy"] == f"{digits_baseline.metrics.accuracy:.1%}"
    assert shown["torch_after_run"] is True

    changed = copied_workspace(session_workspace, tmp_path / "changed")
    weights = next(changed.checkpoint_dir.iterdir()) / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # not the weights the meta describes
    assert find_baseline_card(DEFAULT_BASELINE_CONFIG, changed) is None

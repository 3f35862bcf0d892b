"""Shared fixtures: a throwaway workspace, and a digits baseline trained once per test session."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from core.foundation.baseline.trained import Baseline, BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.workspace import Workspace

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _test_run_inductor_cache() -> str:
    """A torch.compile cache private to this test run (a kernel left half-written in the machine-wide
    cache by a killed process must not fail a test) and shared by its xdist workers and every server
    and command they start: the same int8 kernels compile in many tests, and inductor writes its
    cache files atomically, so concurrent processes may share one."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    if not run_id:
        return tempfile.mkdtemp(prefix="mel-test-inductor-")
    folder = Path(tempfile.gettempdir()) / f"mel-test-inductor-{run_id}"
    folder.mkdir(exist_ok=True)
    return str(folder)


os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", _test_run_inductor_cache())
# Latencies are measured by the protocol as in the product, with no time budget beyond its 5 timed
# passes per model, batch size and round (inherited by the servers and commands the tests start):
# the tests check what is measured and how it is labelled, never how fast anything is. For the
# same reason one interleaved round instead of three (MEL_LATENCY_ROUNDS).
os.environ.setdefault("MEL_LATENCY_BUDGET_S", "0")
os.environ.setdefault("MEL_LATENCY_ROUNDS", "1")
CIFAR_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def _use_navigation_pages_only_in_apptest() -> None:
    """AppTest resets PagesManager.uses_pages_directory before every run, so with a pages/ folder
    beside app.py each rerun takes Streamlit's old folder-based page path and runs the page file
    alone, without app.py's sidebar. The real server sets the flag to False once st.navigation
    has run; this makes AppTest do the same."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.pages_manager import PagesManager

    class NavigationOnlyPagesManager(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    app_test.PagesManager = NavigationOnlyPagesManager


_use_navigation_pages_only_in_apptest()

# Tests share the machine's two cores with whatever else runs; one thread keeps them predictable.
torch.set_num_threads(1)


# How `make test` shares the two cores (pytest-xdist, two workers): each test file is one unit of
# work, run whole on one worker, so its module fixtures are built once; the files that start a Ray
# cluster are one unit together, so no two clusters (each sized to every core) compete for the two
# cores at once. (No test stops Ray by `ray stop` any more: each stops only the cluster it started.)
RAY_TEST_FILES = {
    "tests/test_sweep.py",
    "tests/test_ray_privacy.py",
    "tests/test_jobs.py",
    "tests/test_jobs_sidebar.py",
    "tests/test_jobs_techniques.py",
    "tests/test_jobs_fair_share.py",
    "tests/test_explore_page.py",
    "tests/test_first_render.py",
    "tests/browser/test_explore_browser.py",
}
# The longest units first, so the other worker is never left waiting for one at the end (the order
# of the rest, and every result, is unchanged; a file missing here simply starts later).
MATRIX_FILE = "tests/test_technique_matrix.py"  # each of its rows is a unit of its own: minutes each
LONGEST_FIRST = [
    "ray",
    f"{MATRIX_FILE}::test_every_technique_works_or_refuses_in_one_line[resnet18]",
    MATRIX_FILE,
    "tests/test_deploy.py",
    "tests/test_compare.py",
    "tests/browser/test_robustness_browser.py",
    "tests/test_quantization_page.py",
    "tests/browser/test_deploy_browser.py",
    "tests/test_cifar.py",
    "tests/browser/test_pages_browser.py",
    "tests/test_contract.py",
]


def work_unit(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    if path == MATRIX_FILE:
        return nodeid
    return "ray" if path in RAY_TEST_FILES else path


def pytest_collection_modifyitems(config, items):
    rank = {unit: index for index, unit in enumerate(LONGEST_FIRST)}
    # stable: a file's tests keep their order; a unit not listed takes its file's place
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), rank.get(item.nodeid.split("::")[0], len(rank))))


def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduler (units handed out in collection order, as workers free up), with
    work_unit as the scope. (--dist loadgroup would do this by marks, but its marks are not read
    under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnitScheduling(config, log)


def cli_in_process(capsys, *argv: str) -> subprocess.CompletedProcess:
    """`python -m core ARGV` as core/__main__.py runs it, in this process (no 4 s torch import per
    call), with its exit status, stdout and stderr as a subprocess would give them. Tests of the
    process itself (Ctrl-C, a fresh interpreter) start a real one instead."""
    from core.cli.main import main

    capsys.readouterr()  # drop whatever the test printed before
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["python", "-m", "core", *argv], code, captured.out, captured.err)


@pytest.fixture(scope="session")
def session_workspace(tmp_path_factory) -> Workspace:
    """One workspace for the whole run, so the digits baseline is trained once and then cached."""
    root = tmp_path_factory.mktemp("mel-home")
    os.environ["MEL_HOME"] = str(root)
    return Workspace.open(root)


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Workspace:
    """A fresh, empty workspace for tests that must not see cached models."""
    monkeypatch.setenv("MEL_HOME", str(tmp_path / "mel-home"))
    return Workspace.open(tmp_path / "mel-home")


# The dashboard's default baseline: digits, simple_cnn, the classroom preset, seed 0.
DEFAULT_BASELINE_CONFIG = BaselineConfig(DatasetSpec("digits"))


@pytest.fixture(scope="session")
def digits_baseline(session_workspace) -> Baseline:
    """The dashboard's default baseline, trained once into the session workspace (a few seconds)."""
    return get_baseline(DEFAULT_BASELINE_CONFIG, session_workspace)


@pytest.fixture(scope="session")
def cifar_folder(tmp_path_factory) -> Path:
    """Real CIFAR-10 (JPEG copy) extracted to a temp folder in ImageFolder layout."""
    if not CIFAR_ARCHIVE.is_file():
        pytest.skip(f"{CIFAR_ARCHIVE} is absent")
    target = tmp_path_factory.mktemp("cifar")
    with tarfile.open(CIFAR_ARCHIVE) as archive:
        archive.extractall(target, filter="data")
    return target / "cifar10"


def open_app_page(page_path: str, timeout_s: int = 180, before_switch=None) -> AppTest:
    """app.py run once (the sidebar), then `page_path` opened; `before_switch(at)` may change the
    sidebar first. Asserts the page shows no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=timeout_s)
    at.run()
    if before_switch is not None:
        before_switch(at)
    at.switch_page(page_path)
    at.run()
    assert not at.exception
    return at


def forbid_latency_measurement(monkeypatch) -> None:
    """From now on, timing any model (core.foundation.measures.latency's protocol, whoever calls it) raises, so a page
    that measures latency where it must not shows an exception."""
    import core.foundation.measures.latency

    def refuse(*args, **kwargs):
        raise AssertionError("a latency was measured where the page must only redraw")

    monkeypatch.setattr(core.foundation.measures.latency, "measure_latency", refuse)


def record_prune_run(baseline: Baseline, workspace: Workspace, **config) -> int:
    """A pruning run made through core (as the CLI makes it) from the baseline, recorded; its run id."""
    from core.contract.context import RunContext
    from core.contract.record import record
    from core.contract.source import ModelSource
    from core.pruning import PruneConfig, prune

    return record(prune(ModelSource.from_baseline(baseline), PruneConfig(**config), RunContext(workspace)), workspace)


@pytest.fixture(scope="session")
def random_prune_run(digits_baseline, session_workspace) -> int:
    """70% random pruning of the digits baseline, no fine-tuning: plenty of images change their prediction."""
    return record_prune_run(digits_baseline, session_workspace, amount=0.7, method="random")


@pytest.fixture(scope="session")
def subset_test_run(digits_baseline, session_workspace) -> int:
    """A digits baseline on a 100-image test subset, made by the CLI: another test set than the default baseline's."""
    import contextlib
    import io
    import json

    from core.cli.main import main

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert main(["train", "--workspace", str(session_workspace.root), "--test-size", "100", "--epochs", "1"]) == 0
    return json.loads(output.getvalue().strip().splitlines()[-1])["run_id"]


def noise_folder(root: Path, per_class: int = 1500, side: int = 64, test_per_class: int = 10) -> Path:
    """Two classes of random 64 x 64 RGB images (a folder dataset): 200 epochs of them are many
    minutes of CPU work, so a run is certainly still training when a test interrupts it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for name in ("a", "b"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(folder / f"{i}.bmp")
    return root


def recorded_history(root: Path, techniques: dict[str, tuple]) -> dict:
    """A fresh digits workspace at `root`: a 6-epoch baseline, then one recorded run per entry of
    `techniques` (name -> (technique function, its config)), each made from the baseline. Returns
    the workspace, the run ids by name (the baseline's as "baseline") and the dataset."""
    from core.contract.context import RunContext
    from core.contract.record import record
    from core.contract.source import ModelSource

    workspace = Workspace.open(root)
    baseline = get_baseline(BaselineConfig(DatasetSpec("digits"), epochs=6), workspace)
    source = ModelSource.from_baseline(baseline)
    context = RunContext(workspace)
    made = {"baseline": baseline.run_id}
    for name, (technique, config) in techniques.items():
        made[name] = record(technique(source, config, context), workspace)
    return {"workspace": workspace, "ids": made, "dataset": baseline.dataset}

"""Uploads and the dataset folder (issue 28, part 5): the upload limit of .streamlit/config.toml is said
before the upload and enforced; an uploaded model zip is read in memory, so no uploaded file name
or zip member name (../x, /etc/x) ever becomes a path; a typed folder is only read, and its cache
goes inside the workspace under a name the server makes."""

from __future__ import annotations

import io
import re
import tomllib
import zipfile
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from core.contract.artifact import META_MEMBER, WEIGHTS_MEMBER, read_model_zip, write_model_zip
from core.contract.run_models import package_for_run
from core.foundation import history
from core.foundation.errors import UserError
from tests.conftest import REPO_ROOT, open_app_page

LABEL = "Model zip exported by this app"


def configured_limit_mb() -> int:
    return tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def workspace_files(root: Path) -> set[str]:
    """What the workspace holds, less SQLite's and the servers' own side files."""
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and not path.name.endswith(("-wal", "-shm", ".log"))}


@pytest.fixture(scope="module")
def good_zip(digits_baseline, session_workspace) -> bytes:
    return write_model_zip(package_for_run(history.get_run(session_workspace.history_db, digits_baseline.run_id), session_workspace))[0]


@pytest.fixture()
def export_tab(digits_baseline) -> AppTest:
    at = open_app_page("pages/compare.py")
    at.session_state["compare_tab"] = "Export & import"
    at.run()
    assert not at.exception
    return at


def uploader(at: AppTest):
    return next(widget for widget in at.get("file_uploader") if widget.label.startswith(LABEL))


def upload(at: AppTest, name: str, data: bytes) -> list[str]:
    """The page's error lines after `data` is uploaded as `name`."""
    uploader(at).set_value((name, data, "application/zip")).run()
    assert not at.exception, [exception.value for exception in at.exception]
    return [error.value for error in at.error]


def slipping_zip(good: bytes, members: list[str]) -> bytes:
    """`good`'s two members and files under `members` (a zip slip's names)."""
    source = zipfile.ZipFile(io.BytesIO(good))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in (WEIGHTS_MEMBER, META_MEMBER):
            target.writestr(name, source.read(name))
        for name in members:
            target.writestr(zipfile.ZipInfo(name), b"escaped")
    return buffer.getvalue()


def test_the_limit_of_the_config_is_said_before_the_upload(export_tab):
    limit = configured_limit_mb()
    assert config.get_option("server.maxUploadSize") == limit == 50
    widget = uploader(export_tab)  # no file given yet
    assert widget.label == f"{LABEL} (at most {limit} MB)"
    assert widget.proto.max_upload_size_mb == limit, "the same limit Streamlit's server enforces"
    assert "never saved" in widget.help


def test_hostile_file_names_are_only_shown_as_their_last_part_and_nothing_is_written(export_tab, good_zip, session_workspace, tmp_path):
    before = workspace_files(session_workspace.root)
    dotdot, absolute, backslash = tmp_path / "dotdot.zip", tmp_path / "absolute.zip", tmp_path / "backslash.zip"
    # A real model zip under a name that climbs out: it loads, and nothing lands where the name points.
    assert upload(export_tab, "../" * 12 + str(dotdot).lstrip("/"), good_zip) == []
    assert {metric.label for metric in export_tab.metric} >= {"Architecture", "Accuracy recorded at export"}
    refused = {
        str(absolute): "absolute.zip is not a model zip",
        "..\\..\\" + str(backslash).replace("/", "\\"): "backslash.zip is not a model zip",
        "[log in](javascript:x)\n<img src=x>.zip": "\\[log in\\](javascript:x)\\\\n\\<img src=x\\>.zip is not a model zip",
        "x" * 5000 + ".zip": "… (5,004 characters) is not a model zip",
        "..": "the upload is not a model zip",
    }
    for name, start in refused.items():
        lines = upload(export_tab, name, b"not a zip")
        assert len(lines) == 1 and start in lines[0], (name, lines)
        assert "\n" not in lines[0] and len(lines[0]) < 400 and "../" not in lines[0] and "[log in](" not in lines[0]
    assert not any(path.exists() for path in (dotdot, absolute, backslash))
    assert workspace_files(session_workspace.root) == before, "an upload is read in memory, never saved"


def test_zip_members_that_would_escape_are_refused_in_one_line(export_tab, good_zip, session_workspace, tmp_path):
    before = workspace_files(session_workspace.root)
    escaped = tmp_path / "slipped.txt"
    members = ["../" * 12 + str(escaped).lstrip("/"), str(tmp_path / "absolute.txt"), "a/../../up.txt", "..\\windows.txt", "C:/drive.txt"]
    lines = upload(export_tab, "slip.zip", slipping_zip(good_zip, members))
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("slip.zip holds ") and "a path outside the zip's own folder; refusing it" in lines[0]
    for member in members:  # each refused by read_model_zip alone, whatever else the zip holds
        with pytest.raises(UserError, match="a path outside the zip's own folder") as refusal:
            read_model_zip(slipping_zip(good_zip, [member]), "slip.zip")
        assert repr(member)[:40] in str(refusal.value), "named, cut short"
    assert not escaped.exists() and not (tmp_path / "absolute.txt").exists()
    assert workspace_files(session_workspace.root) == before
    # The page keeps working: the same uploader then loads a real zip.
    assert upload(export_tab, "model.zip", good_zip) == []


def test_an_upload_over_the_limit_is_refused_in_one_line(export_tab, good_zip):
    configured = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        export_tab.run()
        assert uploader(export_tab).label == f"{LABEL} (at most 1 MB)"
        lines = upload(export_tab, "big.zip", good_zip + b"\0" * (1024 * 1024))
        assert len(lines) == 1 and lines[0].startswith("the upload is 1.") and "uploads up to 1 MB are accepted" in lines[0]
    finally:
        config.set_option("server.maxUploadSize", configured)
    assert upload(export_tab, "model.zip", good_zip) == []


# The dataset folder: typed on the server (not uploaded), only read ---------------------------------------


def test_a_folder_without_train_and_test_is_refused_before_anything_under_it_is_walked(workspace, tmp_path, monkeypatch):
    """A link may carry folder:/ ; the folder's signature walks everything under it, so its layout is checked first."""
    import core.foundation.data.datasets as datasets

    def refuse(*args, **kwargs):
        raise AssertionError("walked a folder that is no dataset")

    monkeypatch.setattr(datasets.os, "walk", refuse)
    with pytest.raises(UserError, match="has no train/ subfolder"):
        datasets.load_full_dataset(f"folder:{tmp_path}", workspace)
    with pytest.raises(UserError, match="does not exist"):
        datasets.load_full_dataset("folder:../../etc/passwd", workspace)


def test_a_folder_dataset_is_cached_inside_the_workspace_under_a_name_the_server_makes(workspace, tmp_path):
    from PIL import Image

    from core.foundation.data.datasets import load_full_dataset

    root = tmp_path / "my [data] <x> ..;"
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for index in range(2):
                Image.new("L", (8, 8), 60 * index).save(root / split / label / f"{index}.png")

    def files_outside_the_workspace() -> set[Path]:
        return {path for path in tmp_path.rglob("*") if path.is_file() and workspace.root not in path.parents}

    outside = files_outside_the_workspace()
    dataset = load_full_dataset(f"folder:{root}/train/../../{root.name}", workspace)  # a typed path may climb
    assert dataset.num_classes == 2 and len(dataset.train) == 4
    cached = [path for path in workspace.root.rglob("*") if path.is_file()]
    assert [path.parent for path in cached] == [workspace.dataset_cache_dir]
    assert re.fullmatch(r"folder-[A-Za-z0-9_]+-[0-9a-f]+\.safetensors", cached[0].name), cached[0].name
    assert files_outside_the_workspace() == outside, "the folder is only read"

import json
import os
import subprocess
import sys

import pytest

from core.cli import main
from tests.conftest import REPO_ROOT


def run_cli(*args, env_home):
    env = {**os.environ, "MEL_HOME": str(env_home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_train_prints_one_json_object_last(tmp_path):
    completed = run_cli("train", "--dataset", "digits", "--epochs", "3", "--train-size", "400", env_home=tmp_path)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "params", "macs", "size_bytes", "latency_ms", "train_seconds", "checkpoint"):
        assert key in payload
    assert 0.3 < payload["accuracy"] <= 1.0 and payload["params"] > 0 and payload["macs"] > 0
    assert payload["checkpoint"].startswith(str(tmp_path)) and not payload["from_cache"]
    assert "[train]" in completed.stderr  # progress goes to stderr
    again = run_cli("train", "--dataset", "digits", "--epochs", "3", "--train-size", "400", env_home=tmp_path)
    assert json.loads(again.stdout.strip().splitlines()[-1])["from_cache"] is True


def test_bad_input_exits_2_with_one_line(tmp_path):
    completed = run_cli("train", "--dataset", "nope", env_home=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0 and "unknown dataset 'nope'" in completed.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "-1"], "--epochs must be 0 or more"),
        (["--dataset", "folder:/no/such/folder"], "does not exist"),
        (["--train-size", "3"], "smaller than the 10 classes"),
        (["--model", "giant"], "unknown model"),
    ],
)
def test_bad_input_messages(tmp_path, capsys, args, message):
    assert main(["train", "--workspace", str(tmp_path), *args]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "test").mkdir()
    assert main(["train", "--workspace", str(tmp_path / "ws"), "--dataset", f"folder:{tmp_path / 'data'}"]) == 2
    assert "no class subfolders" in capsys.readouterr().err


def test_dataset_needing_a_download_names_the_folder(tmp_path, capsys):
    data_dir = tmp_path / "offline-data"
    assert main(["train", "--workspace", str(tmp_path / "ws"), "--data-dir", str(data_dir), "--dataset", "mnist", "--no-download"]) == 2
    error = capsys.readouterr().err
    assert str(data_dir) in error and "mnist" in error

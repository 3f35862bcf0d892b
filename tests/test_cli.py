import json
import os
import subprocess
import sys

import pytest

from core.cli.main import main
from core.foundation.measures.latency import THROUGHPUT_BATCH_SIZE
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
    # Latency under the one protocol (core.foundation.measures.latency): a throughput batch and a single image, runtime named.
    assert payload["latency_batch_size"] == THROUGHPUT_BATCH_SIZE and payload["latency_ms"] > 0 and payload["latency_ms_single"] > 0
    assert payload["latency_runtime"] == "torch eager" and payload["latency_threads"] >= 1
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
        (["--epochs", "-1"], "--epochs must be between 0 and 200, got -1"),
        (["--epochs", "201"], "--epochs must be between 0 and 200, got 201"),  # core.foundation.training.loop.MAX_EPOCHS
        (["--dataset", "folder:/no/such/folder"], "does not exist"),
        (["--train-size", "3"], "smaller than the 10 classes"),
        (["--model", "giant"], "argument --model: invalid choice: 'giant'"),  # --model's choices are core.foundation.models.registry' registry
        (["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
    ],
)
def test_bad_input_messages(tmp_path, capsys, args, message):
    assert main(["train", "--workspace", str(tmp_path), *args]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_argparse_refusals_are_one_line_with_exit_2_in_every_command(tmp_path, capsys):
    """A flag outside its choices or a missing required flag: one line, status 2, no usage dump."""
    for argv, message in [
        (["distill", "--teacher", "giant"], "argument --teacher: invalid choice: 'giant'"),
        (["quantize"], "the following arguments are required: --mode"),
        (["prune", "--granularity", "blocks"], "argument --granularity: invalid choice: 'blocks'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ]:
        assert main([*argv, "--workspace", str(tmp_path)]) == 2, argv
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1 and "usage:" not in error, error
    assert not (tmp_path / "checkpoints").exists()


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

"""A workspace whose runs.sqlite is not a database (a half-copied workspace): one line, the file untouched.

The dashboard side is in tests/test_broken_history_app.py."""

from __future__ import annotations

import os

import pytest

from core.foundation import history
from core.foundation.errors import UserError
from tests.conftest import cli_in_process

NOT_A_DATABASE = "is not a SQLite database (a half-copied workspace?); move it aside or restore it from a backup, then retry"


def break_history(root) -> bytes:
    """Random bytes where the history database should be; returns them to compare with later."""
    garbage = os.urandom(8192)
    root.mkdir(parents=True, exist_ok=True)
    (root / "runs.sqlite").write_bytes(garbage)
    return garbage


def assert_untouched(root, garbage: bytes) -> None:
    assert (root / "runs.sqlite").read_bytes() == garbage
    assert sorted(p.name for p in root.glob("runs.sqlite*")) == ["runs.sqlite"]  # no -wal, -shm or -journal beside it


def test_every_history_call_names_the_file_in_one_line_and_leaves_it_alone(tmp_path):
    garbage = break_history(tmp_path)
    db = tmp_path / "runs.sqlite"
    calls = [
        lambda: history.list_runs(db),
        lambda: history.count_runs(db),
        lambda: history.get_run(db, 1),
        lambda: history.record_run(db, "train", "digits", "simple_cnn", params={}, metrics={}),
    ]
    for call in calls:
        with pytest.raises(UserError) as error:
            call()
        assert str(error.value) == f"{db} {NOT_A_DATABASE}"
    assert_untouched(tmp_path, garbage)


@pytest.mark.parametrize("command", [["runs"], ["train", "--dataset", "digits", "--epochs", "1"]])
def test_cli_exits_2_with_one_line_naming_the_file(tmp_path, command, capsys):
    garbage = break_history(tmp_path)
    completed = cli_in_process(capsys, *command, "--workspace", str(tmp_path))
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if not line.startswith("[")]  # "[train] ..." lines are progress
    assert errors == [f"error: {tmp_path / 'runs.sqlite'} {NOT_A_DATABASE}"]
    assert completed.stdout == ""
    assert_untouched(tmp_path, garbage)
    assert not [p for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()]  # the trained model was not kept without its row

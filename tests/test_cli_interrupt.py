"""Ctrl-C during `python -m core train`: one line, exit 130, nothing saved."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from core.foundation import history
from tests.conftest import REPO_ROOT, noise_folder


def test_ctrl_c_during_training_exits_130_with_one_line_and_saves_nothing(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    images = noise_folder(tmp_path / "images", per_class=500, test_per_class=5)  # 200 teacher epochs: many minutes on any CPU
    workspace = tmp_path / "workspace"
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "train", "--dataset", f"folder:{images}", "--model", "teacher", "--device", "cpu", "--epochs", "200", "--workspace", str(workspace)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A job started in the background by a non-interactive shell (as a CI runner may start us)
        # inherits SIGINT ignored, and then Python installs no Ctrl-C handler at all: give the
        # child the terminal's default, as a user at a prompt has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True)
    reader.start()
    stderr: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any(line.startswith("[train]") for line in stderr):  # a training progress line: batches are running
            assert process.poll() is None, "".join(stderr)
            assert time.monotonic() < deadline, "no training progress within 300 s:\n" + "".join(stderr)
            try:
                stderr.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=120)
        reader.join(timeout=30)
        while not lines.empty():
            stderr.append(lines.get())
        stdout = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    text = "".join(stderr)
    assert returncode == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert [line for line in text.splitlines() if not line.startswith("[")] == ["stopped by Ctrl-C; the unfinished run was not saved"]
    assert stdout == ""  # no result object
    assert not [p for p in (workspace / "checkpoints").rglob("*") if p.is_file()]
    assert history.count_runs(workspace / "runs.sqlite") == 0

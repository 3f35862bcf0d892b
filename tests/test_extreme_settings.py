"""Extreme but legal settings: each either works or is refused with a one-line message, in the
command line and on the pages; none ends in a traceback.

The settings are the issue's list: sparsity 0.99, 2 bits, temperature 100, zero fine-tune epochs,
and a training subset smaller than the class count.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.cli.main import main
from core.contract.options import spec
from core.distillation import DistillConfig
from core.foundation import history
from tests.conftest import REPO_ROOT, open_app_page

pytestmark = pytest.mark.slow


def run_cli(capsys, workspace, *args) -> tuple[int, dict | None, str]:
    """Exit status, the JSON last line (when it succeeded) and stderr of an in-process CLI call."""
    status = main([*args, "--workspace", str(workspace.root)])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return status, (json.loads(lines[-1]) if status == 0 and lines else None), captured.err


def assert_refused_in_one_line(status: int, stderr: str, words: str) -> None:
    assert status == 2
    assert "Traceback" not in stderr
    message = [line for line in stderr.splitlines() if not line.startswith("[")]  # progress lines start with [stage]
    assert len(message) == 1 and words in message[0], stderr


def test_cli_prunes_99_percent_of_weights_without_fine_tuning(capsys, session_workspace, digits_baseline):
    status, payload, stderr = run_cli(capsys, session_workspace, "prune", "--dataset", "digits", "--amount", "0.99", "--finetune-epochs", "0")
    assert status == 0, stderr
    assert payload["sparsity"] == pytest.approx(0.99, abs=0.01) and 0.0 <= payload["accuracy_after"] <= 1.0


def test_cli_refuses_to_prune_99_percent_of_16_channels_in_one_line(capsys, session_workspace, digits_baseline):
    status, _, stderr = run_cli(capsys, session_workspace, "prune", "--dataset", "digits", "--granularity", "channel", "--amount", "0.99", "--finetune-epochs", "0")
    assert_refused_in_one_line(status, stderr, "would leave none")


def test_cli_simulates_2_bit_weights_and_activations(capsys, session_workspace, digits_baseline):
    status, payload, stderr = run_cli(capsys, session_workspace, "quantize", "--dataset", "digits", "--mode", "simulate", "--bits", "2", "--activations", "--per-tensor")
    assert status == 0, stderr
    assert payload["simulated"] is True and 0.0 <= payload["accuracy_after"] <= 1.0
    assert payload["size_bytes_after"] < payload["size_bytes_before"] / 10  # 2-bit codes: about 16x smaller


def test_cli_refuses_2_bit_static_int8_in_one_line(capsys, session_workspace, digits_baseline):
    status, _, stderr = run_cli(capsys, session_workspace, "quantize", "--dataset", "digits", "--mode", "static", "--bits", "2")
    assert_refused_in_one_line(status, stderr, "8")


def test_cli_distills_at_temperature_100(capsys, session_workspace, digits_baseline):
    status, payload, stderr = run_cli(capsys, session_workspace, "distill", "--dataset", "digits", "--temperature", "100", "--alpha", "1", "--epochs", "1", "--teacher-epochs", "2")
    assert status == 0, stderr
    assert 0.0 <= payload["distilled_accuracy"] <= 1.0 and 0.0 <= payload["student_accuracy"] <= 1.0


@pytest.mark.parametrize("command", [["train"], ["prune", "--amount", "0.5"], ["quantize", "--mode", "simulate"]])
def test_cli_refuses_a_train_size_below_the_class_count(capsys, session_workspace, command):
    status, _, stderr = run_cli(capsys, session_workspace, *command, "--dataset", "digits", "--train-size", "5")
    assert_refused_in_one_line(status, stderr, "smaller than the 10 classes")


def test_cli_refuses_a_pipeline_that_prunes_everything(capsys, session_workspace, digits_baseline):
    status, _, stderr = run_cli(capsys, session_workspace, "pipeline", "--dataset", "digits", "--steps", "prune", "--amount", "1.0")
    assert_refused_in_one_line(status, stderr, "amount")


def widget(at: AppTest, key: str):
    """The slider or number input with this key (a page may show a range either way)."""
    found = [element for element in [*at.slider, *at.number_input] if element.key == key]
    assert len(found) == 1, f"no single slider or number input with key {key!r}"
    return found[0]


def assert_no_traceback(at: AppTest) -> None:
    assert not at.exception, [exception.value for exception in at.exception]


def test_pages_take_the_extremes_their_controls_allow(session_workspace, digits_baseline):
    db = session_workspace.history_db
    at = open_app_page("pages/pruning.py", timeout_s=600)
    widget(at, "prune_amount").set_value(0.99).run()
    assert_no_traceback(at)
    widget(at, "prune_finetune_epochs").set_value(0).run()
    runs_before = history.count_runs(db)
    at.button(key="prune_run").click().run()
    assert_no_traceback(at)
    # One run recorded, with the settings shown, and the page names it.
    assert history.count_runs(db) == runs_before + 1
    run = history.list_runs(db, technique="prune", newest_first=True, limit=1)[0]
    assert run.params["amount"] == 0.99 and run.params["finetune_epochs"] == 0
    shown = [element.value.lower() for element in [*at.success, *at.caption]]
    assert any(f"run {run.id}" in text or f"run #{run.id}" in text for text in shown), shown
    assert next(metric.value for metric in at.metric if metric.label == "After fine-tuning").endswith("%")
    at.radio(key="prune_granularity").set_value("channel").run()  # 99% of 16 channels leaves none
    assert_no_traceback(at)
    assert any("would leave none" in error.value and "\n" not in error.value for error in at.error)

    at.switch_page("pages/quantization.py").run()
    widget(at, "quant_bits").set_value(2).run()
    at.radio(key="quant_granularity").set_value("per-tensor").run()
    assert_no_traceback(at)
    assert float(next(metric.delta for metric in at.metric if metric.label == "Deployed size").split("×")[0]) > 8  # 2-bit codes

    at.switch_page("pages/distillation.py").run()
    # The page's ranges are DistillConfig's own (core.contract.options.spec): its extremes are the CLI's.
    temperature, alpha = spec(DistillConfig, "temperature"), spec(DistillConfig, "alpha")
    assert temperature.maximum == 100.0 and alpha.maximum == 1.0
    widget(at, "distill_temperature").set_value(temperature.maximum).run()
    widget(at, "distill_alpha").set_value(alpha.maximum).run()
    assert_no_traceback(at)
    assert widget(at, "distill_temperature").value == temperature.maximum and widget(at, "distill_alpha").value == alpha.maximum


def test_sidebar_refuses_a_train_size_below_the_class_count_and_keeps_the_page(session_workspace, digits_baseline):
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=600)
    at.run()
    at.number_input(key="sidebar_train_size").set_value(5).run()
    assert_no_traceback(at)
    messages = [element.value for element in [*at.error, *at.warning]]
    assert any("smaller than the 10 classes" in message for message in messages), messages

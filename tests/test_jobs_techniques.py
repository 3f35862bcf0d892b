"""The queue's technique jobs (core/jobs/kinds.py): the Quantization page's QAT run, the
Distillation page's race and the Pruning page's fine-tuning run. Each kind run directly records
the run the page and the CLI would; on a classroom server (MEL_CLASSROOM=1, real Ray) two
sessions asking the same run share one job, and both pages show its result."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest
from streamlit.testing.v1 import AppTest

from core.distillation import DistillConfig, teacher_config
from core.foundation import history
from core.foundation.baseline.trained import BaselineConfig, get_baseline
from core.foundation.data.datasets import DatasetSpec
from core.foundation.errors import UserError
from core.foundation.progress import no_progress
from core.jobs.kinds import JOB_KINDS, distill_report_from_dict, prune_config_from_dict
from core.jobs.store import JobStore
from core.jobs.worker import CancelFileFlag
from core.pruning import PruneConfig
from core.pruning.recorded import recorded_figures
from core.quantization import QATConfig
from core.sweep import engine
from tests.conftest import REPO_ROOT
from ui.jobs_view import job_queue
from ui.state import CLASSROOM_ENV

pytestmark = pytest.mark.slow
WAIT_SECONDS = 300  # generous: CI may share its cores; nothing here measures speed
TINY_BASELINE = BaselineConfig(DatasetSpec("digits", train_size=200), epochs=1)  # the sidebar's settings in student()
TINY_RACE = DistillConfig(epochs=1, teacher_epochs=1)


def never_stopped(workspace) -> CancelFileFlag:
    return CancelFileFlag(workspace.root / "no-such-cancel-file")


def runs_of(workspace, technique: str):
    return [run for run in history.list_runs(workspace.history_db) if run.technique == technique]


def test_the_quantize_kind_fine_tunes_records_a_qat_run_and_returns_its_id(workspace):
    baseline = get_baseline(TINY_BASELINE, workspace)
    config = {"source": {"baseline": asdict(TINY_BASELINE)}, "quantization": QATConfig(bits=4, epochs=1).as_dict(), "seed": 0}
    result = JOB_KINDS["quantize"](config, workspace, no_progress, never_stopped(workspace))
    [run] = runs_of(workspace, "quantize")
    assert result["run_id"] == run.id and run.parent_id == baseline.run_id
    assert run.params["mode"] == "qat" and run.params["bits"] == 4 and run.params["epochs"] == 1
    assert run.metrics["accuracy"] == pytest.approx(result["accuracy"])


def test_the_distill_kind_races_from_a_run_records_the_student_and_returns_its_report(workspace):
    baseline = get_baseline(TINY_BASELINE, workspace)
    config = {"source": {"run_id": baseline.run_id, "device": "auto"}, "distill": TINY_RACE.as_dict(), "seed": 0}
    result = JOB_KINDS["distill"](config, workspace, no_progress, never_stopped(workspace))
    [run] = runs_of(workspace, "distill")
    assert result["run_id"] == run.id and run.parent_id == baseline.run_id
    report = distill_report_from_dict(result["report"])  # what the page shows after a queued race
    assert report.config == TINY_RACE and report.gain == pytest.approx(run.metrics["details"]["gain"])
    assert len(report.distilled_runs[0].history) == 1 and report.model is None


# --------------------------------------------------------------------- a classroom server


@pytest.fixture()
def classroom(workspace, monkeypatch):
    monkeypatch.setenv(CLASSROOM_ENV, "1")
    engine.shutdown()
    job_queue.clear()
    get_baseline(TINY_BASELINE, workspace)  # the sidebar's baseline, the pages' source
    yield workspace
    job_queue.clear()
    engine.shutdown()


def student(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    at.number_input(key="sidebar_train_size").set_value(TINY_BASELINE.dataset.train_size)
    at.number_input(key="sidebar_epochs").set_value(TINY_BASELINE.epochs).run()
    at.switch_page(page).run()
    assert not at.exception
    return at


def wait_until(sessions: list[AppTest], shown) -> None:
    """Rerun each session until it shows what `shown` looks for, then leave it as it is: the rerun
    in which a job's result arrives is the one that says "Saved as run N", and a later rerun of a
    session that already showed it would draw the page without that line."""
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline and not all(shown(at) for at in sessions):
        time.sleep(0.5)
        for at in sessions:
            if not shown(at):
                at.run()
    for at in sessions:
        assert not at.exception and shown(at)


def press_together(sessions: list[AppTest], key: str) -> None:
    """Each session presses the button it sees: the first queues the job, the others join it."""
    for at in sessions:
        at.button(key=key).click().run()
        assert not at.exception


def qat_session() -> AppTest:
    at = student("pages/quantization.py")
    at.radio(key="quant_mode").set_value("qat").run()
    at.slider(key="quant_qat_bits").set_value(4)
    at.number_input(key="quant_qat_epochs").set_value(1).run()
    assert not at.exception and "quant_run" in [button.key for button in at.button]
    return at


def test_two_students_pressing_the_same_qat_run_share_one_job_and_both_see_its_run(classroom):
    sessions = [qat_session(), qat_session()]
    press_together(sessions, "quant_run")
    wait_until(sessions, lambda at: any(metric.label.startswith("Post-training at the same setting") for metric in at.metric))
    [job] = JobStore(classroom.root / "jobs").all()
    assert job.kind == "quantize" and job.state == "done" and job.config["quantization"]["bits"] == 4
    [run] = runs_of(classroom, "quantize")
    assert job.result["run_id"] == run.id
    for at in sessions:
        assert any(f"run {run.id}" in str(message.value) for message in at.success)
        assert any(metric.label.startswith("Accuracy (") and metric.value == f"{run.metrics['accuracy']:.1%}" for metric in at.metric)


def race_session() -> AppTest:
    at = student("pages/distillation.py")
    at.number_input(key="distill_teacher_epochs").set_value(1).run()
    at.number_input(key="distill_epochs").set_value(1).run()
    assert not at.exception and "distill_run" in [button.key for button in at.button]
    return at


def test_two_students_pressing_the_same_race_share_one_job_and_both_see_its_figures(classroom):
    get_baseline(teacher_config(TINY_RACE, TINY_BASELINE.dataset), classroom)  # the teacher, trained beforehand
    sessions = [race_session(), race_session()]
    press_together(sessions, "distill_run")
    wait_until(sessions, lambda at: any(metric.label == "Student, distilled" for metric in at.metric))
    [job] = JobStore(classroom.root / "jobs").all()
    assert job.kind == "distill" and job.state == "done"
    [run] = runs_of(classroom, "distill")
    assert job.result["run_id"] == run.id
    for at in sessions:
        assert any(f"run {run.id}" in str(message.value) for message in at.success)
        assert any(metric.label == "Gain, points (distilled − hard)" for metric in at.metric)
        assert not at.warning or all("settings above have changed" not in str(warning.value) for warning in at.warning)


TINY_PRUNE = PruneConfig(granularity="channel", amount=0.3, remove=True, finetune_epochs=1, layer_amounts=(("conv1", 0.2),))


def test_a_prune_config_survives_its_dict_and_a_bad_one_is_refused():
    assert prune_config_from_dict(TINY_PRUNE.as_dict()) == TINY_PRUNE
    assert prune_config_from_dict(PruneConfig(layers=("conv1",)).as_dict()).layers == ("conv1",)
    with pytest.raises(UserError):
        prune_config_from_dict(PruneConfig(iterative_steps=2).as_dict())  # an iterative schedule needs fine-tuning


def test_the_prune_kind_fine_tunes_records_a_prune_run_and_returns_its_id(workspace):
    baseline = get_baseline(TINY_BASELINE, workspace)
    config = {"source": {"baseline": asdict(TINY_BASELINE)}, "prune": PruneConfig(amount=0.5, finetune_epochs=1).as_dict(), "seed": 0}
    result = JOB_KINDS["prune"](config, workspace, no_progress, never_stopped(workspace))
    [run] = runs_of(workspace, "prune")
    assert result["run_id"] == run.id and run.parent_id == baseline.run_id
    assert run.params["amount"] == 0.5 and run.params["finetune_epochs"] == 1
    assert run.metrics["accuracy"] == pytest.approx(result["accuracy"])
    figures = recorded_figures(workspace, run.id)  # what the page shows of it
    assert figures.source_run_id == baseline.run_id and figures.headline.accuracy_after == pytest.approx(result["accuracy"])
    assert len(figures.finetune_history) == 1 and figures.sparsity == pytest.approx(run.metrics["details"]["sparsity"])
    assert figures.artifact_path is not None and figures.artifact_path.is_dir()
    with pytest.raises(UserError, match="no longer in the history"):
        recorded_figures(workspace, run.id + 1)


def prune_session() -> AppTest:
    at = student("pages/pruning.py")
    at.slider(key="prune_amount").set_value(0.5)
    at.number_input(key="prune_finetune_epochs").set_value(1).run()
    assert not at.exception and "prune_run" in [button.key for button in at.button]
    return at


def test_two_students_pressing_the_same_prune_run_share_one_job_and_both_see_its_run(classroom):
    sessions = [prune_session(), prune_session()]
    press_together(sessions, "prune_run")
    wait_until(sessions, lambda at: any(metric.label == "After fine-tuning" for metric in at.metric))
    [job] = JobStore(classroom.root / "jobs").all()
    assert job.kind == "prune" and job.state == "done" and job.config["prune"]["finetune_epochs"] == 1
    [run] = runs_of(classroom, "prune")
    assert job.result["run_id"] == run.id and run.params["amount"] == 0.5
    for at in sessions:
        assert any(f"run {run.id}" in str(message.value) for message in at.success)
        assert [metric.value for metric in at.metric if metric.label == "After fine-tuning"] == [f"{run.metrics['accuracy']:.1%}"]
        [points] = at.session_state["prune_finetuned"].values()
        assert points == [(pytest.approx(run.metrics["details"]["sparsity"]), pytest.approx(run.metrics["accuracy"]))]
    sessions[0].run()  # a later rerun shows the same run and adds no second point
    assert [len(points) for points in sessions[0].session_state["prune_finetuned"].values()] == [1]


def test_a_queued_prune_run_gone_from_the_history_is_one_warning(classroom):
    at = prune_session()
    at.button(key="prune_run").click().run()
    wait_until([at], lambda at: any(metric.label == "After fine-tuning" for metric in at.metric))
    [run] = runs_of(classroom, "prune")
    history.delete_run(classroom.history_db, run.id)
    fresh = prune_session()  # another student with the same settings, after the run was deleted
    assert not fresh.exception and not any("Saved as run" in str(message.value) for message in fresh.success)
    assert [str(warning.value) for warning in fresh.warning if "no longer in the history" in str(warning.value)] == [
        f"run #{run.id}, which the queued job recorded, is no longer in the history; press the run button to run it again"
    ]


# --------------------------------------------------------------------- the Explore page's sweep


def test_a_sweep_spec_survives_its_dict_and_a_bad_one_is_refused():
    from core.sweep.grid import parse_grid
    from core.sweep.run import SweepSpec
    from core.sweep.search import parse_search

    spec = SweepSpec(parse_grid(["prune.amount=0.3:0.6:0.3", "prune.granularity=unstructured,channel"]), parse_search("random:3"), "latency", 2.5, 7)
    assert SweepSpec.from_dict(spec.as_dict()) == spec
    with pytest.raises(UserError):
        SweepSpec.from_dict({**spec.as_dict(), "objective": "colour"})


def sweep_session() -> AppTest:
    at = student("pages/explore.py")
    at.number_input(key="explore_amount_max").set_value(0.6).run()  # two trials: amounts 0.3 and 0.6
    assert not at.exception and [metric.value for metric in at.metric if metric.label == "To run"] == ["2"]
    assert "explore_start" in [button.key for button in at.button] and not at.text_input  # no Ray address to type: the queue's cluster
    return at


def test_two_students_starting_the_same_sweep_share_one_job_on_the_queues_cluster_and_both_see_its_trials(classroom):
    sessions = [sweep_session(), sweep_session()]
    press_together(sessions, "explore_start")
    wait_until(sessions, lambda at: bool(at.dataframe) and [metric.value for metric in at.metric if metric.label == "To run"] == ["0"])
    [job] = JobStore(classroom.root / "jobs").all()
    assert job.kind == "sweep" and job.state == "done"  # one job for both (AppTest's sessions share one id)
    swept = [run for run in history.list_runs(classroom.history_db) if "sweep" in run.params]
    assert sorted(run.params["sweep"]["point"]["prune.amount"] for run in swept) == [0.3, 0.6]
    assert job.result["sweep_id"] == swept[0].params["sweep"]["id"] and job.result["trials_run"] == 2
    assert job.result["run_id"] in {run.id for run in swept}  # the recommendation
    for at in sessions:
        assert sorted(int(run_id) for run_id in at.dataframe[0].value["run"]) == sorted(run.id for run in swept)
        assert any(f"Recommended: run #{job.result['run_id']}" in str(message.value) for message in at.success)

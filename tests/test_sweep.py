"""Sweeps: grid parsing, the frontier and the recommendation on hand-made points, the budget
search's reasoning, and real sweeps on a local Ray cluster (in-process and through the CLI), a
cluster started by `ray start`, resume and failing trials."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.contract.context import RunContext
from core.contract.source import ModelSource
from core.foundation import history
from core.foundation.errors import UserError
from core.sweep import engine, store
from core.sweep.frontier import TrialOutcome, frontier, recommend, within_budget
from core.sweep.grid import parse_axis, parse_grid
from core.sweep.run import EngineOptions, SweepSpec, run_sweep
from core.sweep.search import Search, candidates, next_trials, parse_search, ruled_out_by
from core.sweep.trials import plan_trial
from tests.conftest import REPO_ROOT, cli_in_process

# ------------------------------------------------------------------------------------- grid


def test_grid_ranges_lists_and_single_values():
    grid = parse_grid(["prune.amount=0.5:0.9:0.1", "quantize.bits=8,4", "prune.granularity=channel"])
    assert grid.axes[0].values == (0.5, 0.6, 0.7, 0.8, 0.9)  # typed values, inclusive stop, no float noise
    assert grid.axes[1].values == (8, 4) and all(isinstance(value, int) for value in grid.axes[1].values)
    assert grid.size == 10 and len(grid.points()) == 10
    assert grid.techniques == ("prune", "quantize")  # the lab's order, whatever order the axes came in
    assert {"prune.amount": 0.5, "quantize.bits": 4, "prune.granularity": "channel"} in grid.points()
    assert parse_axis("quantize.per-channel=true,false").values == (True, False)
    assert parse_axis("distill.temperature=1:4:1.5").values == (1.0, 2.5, 4.0)
    assert parse_grid(["prune.amount=0.3,0.3,0.5"]).axes[0].values == (0.3, 0.5)  # duplicates once


@pytest.mark.parametrize(
    "text, message",
    [
        ("prune.amount=0.9:0.5:0.1", "empty range"),
        ("prune.amount=0.5:0.9:0", "step must be greater than 0"),
        ("prune.amount=1.2", "--amount must be in [0, 1), got 1.2"),
        ("prune.finetune_epochs=-1", "--finetune-epochs must be in 0..50, got -1"),
        ("quantize.bits=1", "--bits must be in 2..8, got 1"),
        ("quantize.bits=4.5", "'4.5' is not a whole number"),
        ("prune.granularity=rows", "must be one of unstructured, channel"),
        ("prune.speed=3", "prune has no parameter 'speed'"),
        ("train.epochs=3", "unknown technique 'train'"),
        ("prune.amount", "is not TECHNIQUE.PARAM=VALUES"),
        ("prune.amount=", "has no values"),
        ("prune.granularity=a:b:c", "needs a numeric parameter"),
    ],
)
def test_bad_grid_names_what_is_wrong(text, message):
    with pytest.raises(UserError) as raised:
        parse_grid([text])
    assert message in str(raised.value) and text in str(raised.value) and "\n" not in str(raised.value)


def test_grid_refuses_a_parameter_twice_and_no_axes():
    with pytest.raises(UserError, match="given twice"):
        parse_grid(["prune.amount=0.5", "prune.amount=0.6"])
    with pytest.raises(UserError, match="at least one --grid"):
        parse_grid([])


def test_search_parsing():
    assert parse_search("grid") == Search("grid") and parse_search("budget") == Search("budget")
    assert parse_search("random:5") == Search("random", 5)
    for bad in ("random", "random:0", "random:x", "best"):
        with pytest.raises(UserError):
            parse_search(bad)


# ------------------------------------------------------------------------ frontier, recommendation


def outcome(run_id, accuracy, size, latency=1.0, change=None, status="ok", macs=100, latency_before=10.0):
    return TrialOutcome(
        str(run_id),
        {"run": run_id},
        status,
        "prune",
        run_id=run_id,
        accuracy=accuracy,
        accuracy_change_points=change if change is not None else 100 * (accuracy - 0.9),
        size_bytes=size,
        latency_ms=latency,
        latency_ms_before=latency_before,
        macs=macs,
    )


def test_frontier_ties_equal_sizes_and_missing_latency():
    outcomes = [
        outcome(1, 0.90, 1000, latency=5.0),
        outcome(2, 0.88, 500, latency=None),  # no latency: out of the latency frontier only
        outcome(3, 0.88, 500, latency=4.0),  # a twin of 2 on size and accuracy: both on the size frontier
        outcome(4, 0.85, 500, latency=6.0),  # same size as 2 and 3, less accurate: dominated
        outcome(5, 0.91, 2000, latency=9.0),
        outcome(6, 0.70, 100, latency=1.0),
        TrialOutcome("7", {}, "failed", "prune", error="boom"),
    ]
    assert frontier(outcomes, "size") == [6, 2, 3, 1, 5]
    assert frontier(outcomes, "latency") == [6, 3, 1, 5]
    assert frontier([], "size") == []


def test_latency_ranks_by_each_trials_ratio_to_the_source_timed_together():
    # Trial 2 ran beside a busy neighbour: its milliseconds are higher, but it is 4x faster than
    # the source timed in the same trial, against trial 1's 2x.
    fast_on_a_busy_core = outcome(2, 0.90, 500, latency=5.0, latency_before=20.0)
    slower_on_a_quiet_core = outcome(1, 0.90, 500, latency=4.0, latency_before=8.0)
    assert fast_on_a_busy_core.latency_ratio == 0.25 and slower_on_a_quiet_core.latency_ratio == 0.5
    assert recommend([slower_on_a_quiet_core, fast_on_a_busy_core], "latency", 1.0).run_id == 2
    assert outcome(3, 0.9, 1, latency=None).objective_value("latency") is None


def test_recommendation_is_the_best_objective_within_the_budget():
    outcomes = [outcome(1, 0.90, 1000, change=-0.2), outcome(2, 0.89, 400, change=-1.0), outcome(3, 0.87, 300, change=-3.0), outcome(4, 0.895, 400, change=-0.5)]
    chosen = recommend(outcomes, "size", budget_points=1.0)
    assert chosen.run_id == 4  # 2 and 4 tie on size (400 B); 4 is more accurate. 3 is smaller but loses 3 points
    assert within_budget(outcomes[1], 1.0)  # exactly at the budget is within it
    assert recommend(outcomes, "size", budget_points=5.0).run_id == 3
    none = recommend(outcomes, "size", budget_points=0.1)
    assert none.run_id is None and "run #1" in none.reason and "-0.20" in none.reason
    assert recommend([], "size", 1.0).run_id is None


# ----------------------------------------------------------------------------- budget search


def plans_for(texts):
    grid = parse_grid(texts)
    return [plan_trial(point, grid.techniques, "simple_cnn", 0, "cpu") for point in grid.points()]


def test_budget_search_rules_out_by_monotonicity():
    plans = plans_for(["prune.amount=0.1:0.9:0.1"])
    by_amount = {plan.point["prune.amount"]: plan for plan in plans}
    first = next_trials(Search("budget"), plans, {}, set(), 1, 1.0)
    assert [plan.point["prune.amount"] for plan in first] == [0.5]  # the middle of the chain: a bisection
    finished = {by_amount[0.5].key: outcome(1, 0.895, 500, change=-0.5)}  # within budget: 0.1..0.4 cannot be smaller
    assert all(ruled_out_by(by_amount[a], plans, finished, 1.0) is not None for a in (0.1, 0.2, 0.3, 0.4))
    assert ruled_out_by(by_amount[0.8], plans, finished, 1.0) is None
    finished[by_amount[0.7].key] = outcome(2, 0.85, 300, change=-5.0)  # over budget: 0.8 and 0.9 lose at least as much
    assert ruled_out_by(by_amount[0.9], plans, finished, 1.0).run_id == 2
    assert [plan.point["prune.amount"] for plan in next_trials(Search("budget"), plans, finished, set(), 4, 1.0)] == [0.6]


def test_budget_search_compares_only_points_that_agree_elsewhere():
    plans = plans_for(["prune.amount=0.5,0.7", "quantize.bits=8,4,2"])
    find = {(plan.point["prune.amount"], plan.point["quantize.bits"]): plan for plan in plans}
    finished = {find[(0.5, 4)].key: outcome(1, 0.895, 500, change=-0.5)}
    # 4 bits is simulated and 8 bits the real int8 model: different modes, so nothing is inferred across them.
    assert ruled_out_by(find[(0.5, 8)], plans, finished, 1.0) is None
    assert ruled_out_by(find[(0.7, 2)], plans, finished, 1.0) is None  # more aggressive: might still be within budget
    finished[find[(0.5, 4)].key] = outcome(1, 0.80, 500, change=-10.0)
    assert ruled_out_by(find[(0.7, 2)], plans, finished, 1.0) is not None  # over budget already at 0.5 / 4 bits
    assert ruled_out_by(find[(0.7, 8)], plans, finished, 1.0) is None


def test_random_search_draws_distinct_points_reproducibly():
    plans = plans_for(["prune.amount=0.1:0.9:0.1", "prune.finetune_epochs=0,1"])
    drawn = candidates(plans, Search("random", 5), seed=3)
    assert len({plan.key for plan in drawn}) == 5 and drawn == candidates(plans, Search("random", 5), seed=3)
    assert candidates(plans, Search("random", 100), seed=3) == plans


# ------------------------------------------------------------------------------ real sweeps


@pytest.fixture(scope="module")
def baseline_workspace(tmp_path_factory):
    """A workspace holding only the default digits baseline (trained once for this module)."""
    from core.foundation.baseline.trained import get_baseline
    from core.foundation.workspace import Workspace
    from tests.conftest import DEFAULT_BASELINE_CONFIG

    root = tmp_path_factory.mktemp("sweep-baseline")
    get_baseline(DEFAULT_BASELINE_CONFIG, Workspace.open(root))
    return root


@pytest.fixture()
def sweep_workspace(baseline_workspace, tmp_path):
    """A copy of that workspace per test, so each test sees its own runs only (and Ray is shut down after)."""
    from core.foundation.workspace import Workspace

    shutil.copytree(baseline_workspace, tmp_path / "ws")
    yield Workspace.open(tmp_path / "ws")
    engine.shutdown()


def source_in(workspace) -> ModelSource:
    from core.foundation.baseline.trained import get_baseline
    from tests.conftest import DEFAULT_BASELINE_CONFIG

    baseline = get_baseline(DEFAULT_BASELINE_CONFIG, workspace)
    assert baseline.from_cache and baseline.run_id is not None
    return ModelSource.from_baseline(baseline)


@pytest.mark.slow
def test_four_trial_sweep_on_local_ray_records_runs_frontier_and_recommendation(sweep_workspace):
    source = source_in(sweep_workspace)
    spec = SweepSpec(parse_grid(["prune.amount=0.3,0.6", "prune.granularity=unstructured,channel"]), Search("grid"), "size", budget_points=2.0)
    updates = []
    state = run_sweep(source, spec, RunContext(sweep_workspace), EngineOptions(local_cpus=2), on_update=lambda s: updates.append(len(s.outcomes)))
    assert state.trials_run == 4 and state.cluster is not None and state.cluster.local and state.slots == 2
    assert [outcome.status for outcome in state.outcomes] == ["ok"] * 4
    runs = store.finished_trials(sweep_workspace.history_db, state.sweep_id)
    assert sorted(run.id for run in runs.values()) == sorted(outcome.run_id for outcome in state.outcomes)
    for run in runs.values():
        assert run.parent_id == source.run_id and run.technique == "prune"
        assert run.params["sweep"]["id"] == state.sweep_id and run.params["amount"] == run.params["sweep"]["point"]["prune.amount"]
        assert sweep_workspace.resolve_artifact(run.artifact_path).exists()
    from core.compare.runs import comparison_table, table_records
    from core.contract.run_summary import summarize

    summaries = [summarize(run) for run in runs.values()]  # the compare page's table and the report's CSV name the sweep
    assert {record["sweep_id"] for record in table_records(comparison_table(summaries, summaries[0]))} == {state.sweep_id}
    assert updates[:4] == [1, 2, 3, 4]  # the page's redraw hook saw each trial as it finished
    front = state.frontier()
    assert front and set(front) <= {outcome.run_id for outcome in state.outcomes}
    recommended = state.recommendation
    assert recommended.run_id in runs_ids(runs)
    eligible = [o for o in state.outcomes if o.accuracy_change_points >= -2.0]
    assert recommended.value == min(o.size_bytes for o in eligible)

    again = run_sweep(source, spec, RunContext(sweep_workspace), EngineOptions(local_cpus=2))
    assert again.trials_run == 0 and again.cluster is None  # nothing missing: Ray is not even started
    assert [o.run_id for o in again.outcomes] == [o.run_id for o in state.outcomes] and all(o.previous for o in again.outcomes)
    assert history.count_runs(sweep_workspace.history_db) == 1 + 4  # the baseline and the four trials


def runs_ids(runs):
    return {run.id for run in runs.values()}


@pytest.mark.slow
def test_failing_trials_are_recorded_and_the_sweep_goes_on(sweep_workspace):
    source = source_in(sweep_workspace)
    # ln + unstructured is refused by the config (before any worker); global channel pruning at 95%
    # would empty a layer, which only the pruning itself finds out (in the worker).
    spec = SweepSpec(parse_grid(["prune.amount=0.3,0.95", "prune.granularity=channel", "prune.scope=global", "prune.method=l1,ln"]))
    state = run_sweep(source, spec, RunContext(sweep_workspace), EngineOptions(local_cpus=2))
    by_point = {(o.point["prune.amount"], o.point["prune.method"]): o for o in state.outcomes}
    assert by_point[(0.3, "l1")].status == "ok" and by_point[(0.3, "ln")].status == "ok"
    for method in ("l1", "ln"):
        failed = by_point[(0.95, method)]
        assert failed.status == "failed" and failed.run_id is None and "would remove every channel" in failed.error and "\n" not in failed.error
    assert set(store.failed_trials(sweep_workspace.history_db, state.sweep_id)) == {by_point[(0.95, m)].key for m in ("l1", "ln")}
    refused = run_sweep(source, SweepSpec(parse_grid(["prune.method=ln", "prune.granularity=unstructured"])), RunContext(sweep_workspace), EngineOptions(local_cpus=2))
    assert refused.outcomes[0].status == "failed" and "ranks whole channels" in refused.outcomes[0].error and refused.cluster is None


@pytest.mark.slow
def test_stop_keeps_finished_trials_and_a_restart_runs_only_the_missing_ones(sweep_workspace):
    import threading

    source = source_in(sweep_workspace)
    spec = SweepSpec(parse_grid(["prune.amount=0.1:0.6:0.1"]))
    stop = threading.Event()
    state = run_sweep(source, spec, RunContext(sweep_workspace, stop=stop), EngineOptions(local_cpus=1), on_update=lambda s: stop.set())
    assert state.stopped and 1 <= len(state.outcomes) < 6
    kept = {o.key: o.run_id for o in state.outcomes}
    rest = run_sweep(source, spec, RunContext(sweep_workspace), EngineOptions(local_cpus=2))
    assert rest.trials_run == 6 - len(kept) and len(rest.outcomes) == 6
    assert {o.key: o.run_id for o in rest.outcomes if o.previous} == kept
    assert history.count_runs(sweep_workspace.history_db) == 1 + 6


# ------------------------------------------------------------------------------------- CLI


def run_cli(*args, home, env_extra=None, timeout=600):
    env = {**os.environ, "MEL_HOME": str(home), "OMP_NUM_THREADS": "1", **(env_extra or {})}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_cli_bad_grid_exits_2_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEL_HOME", str(tmp_path / "home"))
    for args, message in (
        (["--grid", "prune.amount=0.9:0.1:0.1"], "empty range"),
        (["--grid", "prune.bogus=1"], "no parameter 'bogus'"),
        (["--grid", "prune.amount=0.5", "--search", "best"], "unknown --search"),
        (["--grid", "prune.amount=0.5", "--budget-points", "-1"], "--budget-points"),
    ):
        completed = cli_in_process(capsys, "sweep", *args)
        assert completed.returncode == 2, completed.stderr
        assert completed.stderr.strip().count("\n") == 0 and message in completed.stderr
    assert not (tmp_path / "home").exists()  # refused before a workspace, a baseline or Ray


@pytest.mark.slow
def test_cli_sweep_json_and_rerun(baseline_workspace, tmp_path):
    home = tmp_path / "ws"
    shutil.copytree(baseline_workspace, home)  # the sweep's source is the cached baseline, as on the page
    args = ("sweep", "--grid", "prune.amount=0.3,0.6", "--grid", "quantize.bits=8", "--objective", "size", "--budget-points", "3")
    completed = run_cli(*args, home=home)
    assert completed.returncode == 0, completed.stderr[-3000:]
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    assert payload["engine"] == "ray" and payload["ray_address"] and payload["trials_run"] == 2 and payload["sweep_id"].startswith("sweep-")
    for trial in payload["trials"]:
        assert set(trial) >= {"run_id", "status", "params", "accuracy", "size_bytes", "latency_ms", "macs", "error"}
        assert trial["status"] == "ok" and trial["params"]["quantize.bits"] == 8
    run_ids = {trial["run_id"] for trial in payload["trials"]}
    assert set(payload["frontier"]) <= run_ids and (payload["recommended"] in run_ids or payload["recommended"] is None)
    assert "[sweep]" in completed.stderr
    from core.foundation.workspace import Workspace

    runs = history.list_runs(Workspace.open(home).history_db, technique="pipeline")  # prune + quantize: each trial a pipeline
    assert {run.id for run in runs} == run_ids
    again = json.loads(run_cli(*args, home=home).stdout.strip().splitlines()[-1])
    assert again["trials_run"] == 0 and {trial["run_id"] for trial in again["trials"]} == run_ids


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_cli_sweep_on_a_cluster_started_with_ray_start(tmp_path):
    """`ray start --head` on loopback with token authentication; the sweep connects with that
    cluster's token through --address, and a wrong or missing token is one line naming the file to
    copy. Only this cluster is stopped, by its process group: `ray stop` would end every Ray
    cluster on the machine, other people's included."""
    import secrets
    import signal
    import time

    port = free_port()
    head_home = tmp_path / "head-home"  # the head's own ~/.ray/auth_token; the machine's is left alone
    token = head_home / ".ray" / "auth_token"
    token.parent.mkdir(parents=True)
    token.write_text(secrets.token_hex(32))  # what `ray get-auth-token --generate` writes there
    token.chmod(0o600)
    env = {name: value for name, value in os.environ.items() if name not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    head_env = {**env, "HOME": str(head_home), "RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # the last: Ray keeps 127.0.0.1 as the node's address
    log = tmp_path / "ray-start.log"
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    with log.open("w") as output:  # a file, not a pipe nobody reads: a full pipe would block Ray
        head = subprocess.Popen([*command, "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats"], env=head_env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    workspace = tmp_path / "ws"
    address = f"127.0.0.1:{port}"

    def sweep(grid: str, **env_extra: str) -> subprocess.CompletedProcess:
        sweep_env = {**env, "MEL_HOME": str(workspace), "OMP_NUM_THREADS": "1", **env_extra}
        return subprocess.run([sys.executable, "-m", "core", "sweep", "--grid", grid, "--address", address], cwd=REPO_ROOT, env=sweep_env, capture_output=True, text=True, timeout=600)

    try:
        deadline = time.monotonic() + 300  # a hang guard, not a speed check
        while "Ray runtime started" not in log.read_text() and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Ray runtime started" in log.read_text(), log.read_text()[-2000:]

        completed = sweep("prune.amount=0.3,0.6", RAY_AUTH_TOKEN_PATH=str(token))  # the head's token, copied to this machine
        assert completed.returncode == 0, completed.stderr[-3000:]
        payload = json.loads(completed.stdout.strip().splitlines()[-1])
        assert payload["trials_run"] == 2 and all(trial["status"] == "ok" for trial in payload["trials"])
        assert payload["cluster"]["local"] is False and payload["ray_address"] == address and payload["cluster"]["cpus"] == 2

        wrong = tmp_path / "another-token"
        wrong.write_text(secrets.token_hex(32))
        refused = sweep("prune.amount=0.4", RAY_AUTH_TOKEN_PATH=str(wrong))  # a point not run yet: a finished one needs no cluster
        assert refused.returncode == 2, refused.stderr[-3000:]
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: the Ray cluster at {address} refused the token in {wrong}: copy ~/.ray/auth_token from the machine that ran `ray start`"), (
            refused.stderr
        )

        nowhere = tmp_path / "home-without-a-token"
        nowhere.mkdir()
        missing = sweep("prune.amount=0.4", HOME=str(nowhere))
        assert missing.returncode == 2, missing.stderr[-3000:]
        lines = missing.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: the Ray cluster at {address} needs the token of the machine that ran `ray start`"), missing.stderr
        assert f"copy ~/.ray/auth_token from that machine to {nowhere / '.ray' / 'auth_token'}" in lines[0]
    finally:
        # SIGTERM to `ray start --block` alone: it drains its idle node and stops the processes it
        # started (measured: ~4 s). SIGTERM to the whole group would kill the raylet under it first,
        # and the drain would then wait ~45 s for it. Whatever of this group is left is killed.
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=120)
        finally:
            try:
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the group is empty: everything stopped
            head.wait(timeout=60)


@pytest.mark.slow
def test_cli_unreachable_cluster_is_one_line(baseline_workspace):
    port = free_port()  # nothing listens there
    completed = run_cli("sweep", "--grid", "prune.amount=0.3", "--address", f"127.0.0.1:{port}", home=baseline_workspace, timeout=300)
    assert completed.returncode == 2 and "cannot reach the Ray cluster" in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith("error: cannot reach the Ray cluster")


@pytest.mark.slow
def test_cli_more_cpus_per_trial_than_the_cluster_has_is_one_line(baseline_workspace):
    completed = run_cli("sweep", "--grid", "prune.amount=0.3", "--cpus-per-trial", "1000", home=baseline_workspace, timeout=300)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert completed.stderr.strip().splitlines()[-1].startswith("error: each trial asks for 1000 CPUs but the Ray cluster")


@pytest.mark.slow
def test_a_killed_sweep_keeps_its_finished_trials_and_the_rerun_runs_only_the_rest(baseline_workspace, tmp_path):
    import signal
    import time

    from core.foundation.workspace import Workspace

    home = tmp_path / "ws"
    shutil.copytree(baseline_workspace, home)
    args = ("sweep", "--grid", "prune.amount=0.1:0.8:0.1", "--grid", "prune.finetune_epochs=2")
    env = {**os.environ, "MEL_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "core", *args], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = Workspace.open(home).history_db
    deadline = time.monotonic() + 400
    try:
        while history.count_runs(db) < 2 and process.poll() is None and time.monotonic() < deadline:  # the baseline, then a first trial
            time.sleep(0.05)
        # Seven trials of two fine-tuning epochs each were still to run: no machine ends them between two polls.
        assert process.poll() is None, "the sweep ended before it could be killed"
        process.send_signal(signal.SIGKILL)  # no cleanup, no finally: what a crashed server leaves
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    kept = {run.params["sweep"]["trial"]: run.id for run in history.list_runs(db) if "sweep" in run.params}
    assert 1 <= len(kept) < 8
    completed = run_cli(*args, home=home)
    assert completed.returncode == 0, completed.stderr[-3000:]
    payload = json.loads(completed.stdout.strip().splitlines()[-1])
    assert payload["trials_run"] == 8 - len(kept) and len(payload["trials"]) == 8
    assert {trial["run_id"] for trial in payload["trials"] if trial["previous"]} == set(kept.values())


@pytest.mark.slow
def test_a_distillation_sweep_prepares_the_teacher_in_the_driver(sweep_workspace):
    """Workers only read the teacher and its logits: the driver trains (or loads) them first."""
    source = source_in(sweep_workspace)
    spec = SweepSpec(parse_grid(["distill.temperature=2,4", "distill.teacher_epochs=2"]))
    state = run_sweep(source, spec, RunContext(sweep_workspace), EngineOptions(local_cpus=2))
    assert [outcome.status for outcome in state.outcomes] == ["ok", "ok"], [outcome.error for outcome in state.outcomes]
    teachers = history.list_runs(sweep_workspace.history_db, model="teacher")
    assert len(teachers) == 1  # trained once, by the driver, before the trials
    for outcome in state.outcomes:
        run = history.get_run(sweep_workspace.history_db, outcome.run_id)
        assert run.technique == "distill" and run.params["temperature"] == outcome.point["distill.temperature"] and run.params["teacher_run_id"] == teachers[0].id
    assert any((sweep_workspace.root / "teacher-logits").iterdir())


@pytest.mark.slow
def test_a_local_cluster_started_from_a_thread_that_ends_keeps_serving():
    """A Streamlit script run (or a sweep's thread) starts Ray and ends; the cluster must outlive it."""
    import threading
    import time

    import ray

    engine.shutdown()
    starter = threading.Thread(target=lambda: engine.connect(None, local_cpus=1))
    starter.start()
    starter.join()
    time.sleep(3)  # Ray's processes, were they tied to the ended thread, are gone by now

    @ray.remote(num_cpus=1)
    def answer() -> int:
        return 42

    try:
        assert ray.get(answer.remote(), timeout=120) == 42
    finally:
        engine.shutdown()

"""The fair-share scenario (issue 28, `bench_classroom.py --scenario fair-share`): --students protocol
sessions each ask the queue for three trainings, --browsers others only move the Pruning slider,
and the instructor, unlocked on the Instructor page with the server's secret, cancels some jobs.

Each queueing student opens the Overview, types a small training into the sidebar (--fair-train-size
images, --fair-epochs epochs) and presses Train baseline for three seeds of its own, a few seconds
apart, reading after each press whether the sidebar follows a job ("queued") or says the one-line
refusal of a session over its share ("refused"); then it stays on the page (the sidebar follows its
last job once a second, as a browser does) until --duration is over. The instructor waits until the
students have pressed, then cancels --instructor-cancels jobs, each with its own row's Cancel
button: the running one if there is one, then queued ones spread over the queue.

The figures (fair_share_report): the queue's records read after every job ended, each session's
most jobs queued or running at one moment (from the records' submitted/finished times), every
accepted job done or cancelled by the instructor, no result lost (a done job's run in the history
and its checkpoint on disk, one record per accepted press), the errors, and the slider latencies of
the sessions that only browse. Targets: at most 2 per session, 0 errors, 0 lost, browse-only slider p95 <= 1 s.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path

from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.classroom.results import interaction_figures, percentile
from bench.classroom.scenario import EPOCHS_KEY, SEED_KEY, TRAIN_KEY, Log
from bench.classroom.students import Student
from bench.streamlit_client import ProtocolError, StreamlitClient, number_state, trigger_state
from core.foundation import history
from core.jobs.store import CANCELLED, DEFAULT_MAX_PER_SESSION, DONE, JobRecord

TRAIN_SIZE_KEY = "sidebar_train_size"
SECRET_INPUT_KEY, UNLOCK_KEY, CANCEL_ALL_KEY = "instructor_secret_input", "instructor_unlock", "instructor_cancel_all"
SEED_BASE = 1000  # student i's seeds: SEED_BASE + 3 i, + 1, + 2 (no two students ask for the same training)
REFUSAL = "the most one session may have at once"
JOB_CAPTION = re.compile(r"Job (baseline-[0-9a-f]+) ")
FAIR_TARGETS = {"per_session_max": DEFAULT_MAX_PER_SESSION, "errors": 0, "lost_results": 0, "browse_slider_p95_s": 1.0}


def string_state(widget_id: str, value: str) -> WidgetState:
    return WidgetState(id=widget_id, string_value=value)


def alerts(client: StreamlitClient) -> list[str]:
    return [element.alert.body for element in client.elements.values() if element.WhichOneof("type") == "alert"]


class Queuer:
    """A student who asks for three trainings of their own and then waits on the page."""

    def __init__(self, index: int, url: str, log: Log, args):
        self.index, self.log, self.args = index, log, args
        self.name = f"queuer-{index}"
        self.client = StreamlitClient(url, self.name, timeout_s=args.timeout)
        self.think = random.Random(args.seed * 1000 + 500 + index)
        self.seeds = [SEED_BASE + 3 * index + offset for offset in range(3)]
        self.outcomes: list[dict] = []  # per press: seed, outcome ("queued" / "refused"), the job id or the line

    timed = Student.timed  # the same logged rerun (it reads .client, .log and .name, which a Queuer has too)

    async def run(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        step = "connect"
        try:
            await self.client.connect()
            step = "open overview"
            await self.timed(step)
            end = time.perf_counter() + self.args.duration
            step = "set the training"
            size, epochs = self.client.widget(key=TRAIN_SIZE_KEY), self.client.widget(key=EPOCHS_KEY)
            if size is None or epochs is None:
                raise ProtocolError("the sidebar shows no train-size or epochs input")
            await self.timed(step, widget_states=[number_state(size.id, self.args.fair_train_size), number_state(epochs.id, self.args.fair_epochs)])
            for seed in self.seeds:
                await asyncio.sleep(self.think.uniform(1.0, 3.0))
                step = "set seed"
                seed_widget = self.client.widget(key=SEED_KEY)
                if seed_widget is None:
                    raise ProtocolError("the sidebar shows no seed input")
                await self.timed(step, widget_states=[number_state(seed_widget.id, seed)])
                step = "train press"
                button = self.client.widget(key=TRAIN_KEY)
                if button is None:
                    raise ProtocolError(f"seed {seed}: no Train baseline button (a job or a baseline for these settings already?)")
                await self.timed(step, widget_states=[trigger_state(button.id)])
                self.outcomes.append({"seed": seed, **self.read_outcome(seed)})
            while time.perf_counter() < end:  # on the page, the sidebar following the last job
                await asyncio.sleep(1.0)
        except ProtocolError as error:
            self.log.error(self.name, step, str(error))
        except Exception as error:  # a broken session is counted, the class goes on
            self.log.error(self.name, step, f"{type(error).__name__}: {error}")
        finally:
            await self.client.close()

    def read_outcome(self, seed: int) -> dict:
        refused = [line for line in alerts(self.client) if REFUSAL in line]
        if refused:
            return {"outcome": "refused", "line": refused[0]}
        jobs = [match.group(1) for text in self.client.texts() for match in [JOB_CAPTION.search(text)] if match]
        if jobs:
            return {"outcome": "queued", "job_id": jobs[0]}
        if "Baseline cached" in " ".join(alerts(self.client)):
            return {"outcome": "done at once"}  # the job finished before the page redrew
        self.log.error(self.name, "train press", f"seed {seed}: neither a followed job nor a refusal; alerts {alerts(self.client)[:3]}")
        return {"outcome": "unclear"}


class Instructor:
    """The instructor's session: unlocks the Instructor page, then cancels jobs by their rows' buttons."""

    def __init__(self, url: str, log: Log, args, secret: str, store):
        self.log, self.args, self.secret, self.store = log, args, secret, store
        self.client = StreamlitClient(url, "instructor", timeout_s=args.timeout)
        self.cancelled: list[dict] = []  # job id, its state when cancelled
        self.unlocked = False
        self.refused_without_secret = None  # whether the page held no instructor action before the secret

    async def timed(self, name: str, **rerun):
        at = time.time()
        result = await self.client.rerun(**rerun)
        self.log.add("instructor", name, at, result.seconds, who="instructor")
        for text in result.exceptions:
            self.log.error("instructor", name, f"exception shown: {text}")
        return result

    async def run(self, act_at: float) -> None:
        step = "connect"
        try:
            await self.client.connect()
            step = "open the instructor page"
            await self.timed(step)
            await self.timed(step, page="Instructor")
            field, unlock = self.client.widget(key=SECRET_INPUT_KEY), self.client.widget(key=UNLOCK_KEY)
            if field is None or unlock is None:
                raise ProtocolError("the Instructor page shows no secret field")
            self.refused_without_secret = self.client.widget(key=CANCEL_ALL_KEY) is None
            step = "unlock"
            await self.timed(step, widget_states=[string_state(field.id, self.secret), trigger_state(unlock.id)])
            self.unlocked = self.client.widget(key=CANCEL_ALL_KEY) is not None
            if not self.unlocked:
                raise ProtocolError("the secret did not unlock the Instructor page")
            await asyncio.sleep(max(0.0, act_at - time.perf_counter()))
            step = "cancel a job"
            for record in self.choose():
                button = self.client.widget(key=f"instructor_cancel_{record.job_id}")
                if button is None:
                    await self.timed("redraw")  # the table's last redraw did not have it yet
                    button = self.client.widget(key=f"instructor_cancel_{record.job_id}")
                if button is None:
                    continue  # ended meanwhile
                await self.timed(step, widget_states=[trigger_state(button.id)])
                self.cancelled.append({"job_id": record.job_id, "state_when_cancelled": record.state})
                await asyncio.sleep(0.5)
        except ProtocolError as error:
            self.log.error("instructor", step, str(error))
        except Exception as error:
            self.log.error("instructor", step, f"{type(error).__name__}: {error}")
        finally:
            await self.client.close()

    def choose(self) -> list[JobRecord]:
        """The running job, then queued ones spread evenly over the queue, --instructor-cancels in all."""
        active = [record for record in self.store.all() if record.state in ("queued", "running")]
        running = [record for record in active if record.state == "running"][:1]
        queued = [record for record in active if record.state == "queued"]
        wanted = max(0, self.args.instructor_cancels - len(running))
        step = max(1, len(queued) // max(1, wanted))
        return running + queued[::step][:wanted]


async def fair_share_class(url: str, log: Log, args, secret: str, store) -> tuple[list[Queuer], list[Student], Instructor]:
    queuers = [Queuer(i, url, log, args) for i in range(args.students)]
    browsers = [Student(args.students + i, url, log, args, train_seed=None, shared=False) for i in range(args.browsers)]
    for browser in browsers:
        browser.name = f"browser-{browser.index - args.students}"
        browser.client.name = browser.name
    instructor = Instructor(url, log, args, secret, store)
    start = time.perf_counter()
    everyone = queuers + browsers
    order = random.Random(args.seed).sample(range(len(everyone)), len(everyone))  # browsers and queuers arrive mixed
    tasks = [everyone[slot].run(start + args.ramp * rank / max(1, len(everyone))) for rank, slot in enumerate(order)]
    await asyncio.gather(instructor.run(start + args.ramp + args.instructor_delay), *tasks)
    return queuers, browsers, instructor


def most_at_once(records: list[JobRecord]) -> dict[str, int]:
    """Each starting session's most jobs queued or running at one moment (an end before a start at the same instant)."""
    events: dict[str, list[tuple[float, int]]] = {}
    for record in records:
        owner = record.asked_by[0] if record.asked_by else "?"
        events.setdefault(owner, []).append((record.submitted_at, 1))
        events[owner].append((record.finished_at if record.finished_at is not None else float("inf"), -1))
    most = {}
    for owner, points in events.items():
        level = peak = 0
        for _, change in sorted(points, key=lambda point: (point[0], point[1])):
            level += change
            peak = max(peak, level)
        most[owner] = peak
    return most


def lost_results(records: list[JobRecord], workspace_root: Path, accepted: list[str]) -> list[str]:
    """What was accepted and is not there: a press the page called queued without a record, a done
    job without its run in the history or its checkpoint on disk."""
    runs = {run.id: run for run in history.list_runs(workspace_root / "runs.sqlite")}
    by_id = {record.job_id: record for record in records}
    lost = [f"{job_id}: accepted, no record" for job_id in accepted if job_id not in by_id]
    for record in records:
        if record.state != DONE:
            continue
        run_id = (record.result or {}).get("run_id")
        checkpoint = (record.result or {}).get("checkpoint")
        if run_id not in runs:
            lost.append(f"{record.job_id}: done, run {run_id} not in the history")
        elif not checkpoint or not any(Path(checkpoint).glob("*.safetensors")):
            lost.append(f"{record.job_id}: done, no checkpoint at {checkpoint}")
    return lost


def fair_share_report(args, log: Log, queuers: list[Queuer], browsers: list[Student], instructor: Instructor, records: list[JobRecord], workspace_root: Path, extra: dict) -> dict:
    presses = [outcome for queuer in queuers for outcome in queuer.outcomes]
    accepted = [outcome["job_id"] for outcome in presses if outcome["outcome"] == "queued"]
    refusal_lines = sorted({outcome["line"] for outcome in presses if outcome["outcome"] == "refused"})
    final = {record.job_id: record.state for record in records}
    for row in instructor.cancelled:
        row["final_state"] = final.get(row["job_id"])  # done: it had ended before the press reached the queue
    cancelled_by_instructor = {row["job_id"] for row in instructor.cancelled}
    most = most_at_once(records)
    ended_right = [record for record in records if record.state == DONE or (record.state == CANCELLED and record.job_id in cancelled_by_instructor)]
    wrong = [{"job_id": record.job_id, "state": record.state, "error": record.error} for record in records if record not in ended_right]
    lost = lost_results(records, workspace_root, accepted)
    interactions = interaction_figures(log.rows, records)
    browse_moves = [row["seconds"] for row in log.rows if row["client"] == "protocol" and row["interaction"] == "slider move" and str(row.get("who", "")).startswith("browser-")]
    browse = {"count": len(browse_moves), **({"median_s": percentile(browse_moves, 0.5), "p95_s": percentile(browse_moves, 0.95), "max_s": max(browse_moves)} if browse_moves else {})}
    spans = [(record.started_at, record.finished_at or time.time()) for record in records if record.started_at and record.state == DONE]
    while_training = [
        row["seconds"]
        for row in log.rows
        if row["interaction"] == "slider move" and str(row.get("who", "")).startswith("browser-") and any(row["at"] < end and row["at"] + row["seconds"] > begin for begin, end in spans)
    ]
    checks = {
        "sessions": {"value": f"{len(queuers)} queueing + {len(browsers)} browsing", "target": "30 queueing 3 jobs each", "met": len(queuers) >= 30 and len(presses) == 3 * len(queuers)},
        "per_session_max_queued_or_running": {
            "value": max(most.values(), default=0),
            "target": f"<= {FAIR_TARGETS['per_session_max']}",
            "met": 0 < max(most.values(), default=0) <= FAIR_TARGETS["per_session_max"],
        },
        "every_accepted_job_done_or_cancelled_by_the_instructor": {"value": f"{len(ended_right)} of {len(records)}", "target": "all", "met": bool(records) and not wrong},
        "errors": {"value": len(log.errors), "target": "0", "met": not log.errors},
        "lost_results": {"value": len(lost), "target": "0", "met": not lost},
        "browse_only_slider_p95_s": {
            "value": browse.get("p95_s"),
            "target": f"<= {FAIR_TARGETS['browse_slider_p95_s']}",
            "met": bool(browse_moves) and browse["p95_s"] <= FAIR_TARGETS["browse_slider_p95_s"],
        },
        "instructor_actions_absent_before_the_secret": {"value": instructor.refused_without_secret, "target": "True", "met": instructor.refused_without_secret is True and instructor.unlocked},
    }
    return {
        "scenario": {
            "name": "fair-share",
            "queueing_students": args.students,
            "browsing_students": args.browsers,
            "ramp_seconds": args.ramp,
            "duration_seconds": args.duration,
            "think_seconds": [args.think_min, args.think_max],
            "train_size": args.fair_train_size,
            "epochs": args.fair_epochs,
            "instructor_cancels": args.instructor_cancels,
            "instructor_acts_after_s": args.ramp + args.instructor_delay,
            "seed": args.seed,
            "MEL_CLASSROOM": "1",
        },
        "presses": {
            "total": len(presses),
            "queued": len(accepted),
            "refused": sum(outcome["outcome"] == "refused" for outcome in presses),
            "other": [outcome for outcome in presses if outcome["outcome"] not in ("queued", "refused")],
            "refusal_lines": refusal_lines,
            "per_student": {queuer.name: [outcome["outcome"] for outcome in queuer.outcomes] for queuer in queuers},
        },
        "jobs": {
            "records": len(records),
            "states": {state: sum(record.state == state for record in records) for state in dict.fromkeys(record.state for record in records)},
            "cancelled_by_instructor": instructor.cancelled,
            "not_done_nor_cancelled_by_the_instructor": wrong,
            "lost": lost,
            "most_at_once_per_session": sorted(most.values(), reverse=True),
            "job_seconds_median": percentile([record.duration_seconds for record in records if record.state == DONE and record.duration_seconds], 0.5)
            if any(record.state == DONE for record in records)
            else None,
        },
        "browse_only_slider": {**browse, "while_training": {"count": len(while_training), **({"p95_s": percentile(while_training, 0.95)} if while_training else {})}},
        "interactions": interactions,
        "errors": log.errors,
        "checks": checks,
        **extra,
    }


def print_fair_share(payload: dict) -> None:
    presses, jobs, browse = payload["presses"], payload["jobs"], payload["browse_only_slider"]
    print(f"\npresses: {presses['total']} ({presses['queued']} queued, {presses['refused']} refused); refusal: {presses['refusal_lines'][:1]}")
    print(f"jobs: {jobs['records']} records {jobs['states']}; instructor pressed Cancel on {len(jobs['cancelled_by_instructor'])}; most at once per session {jobs['most_at_once_per_session'][:5]}...")
    print(f"browse-only slider: {browse}")
    print(f"errors: {len(payload['errors'])}")
    for error in payload["errors"][:10]:
        print("   ", error)
    print("targets:")
    for name, check in payload["checks"].items():
        print(f"   {name:56s} {str(check['value']):>24s}  target {check['target']:10s} {'met' if check['met'] else 'NOT MET'}")

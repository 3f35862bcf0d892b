"""`python -m core jobs`: the queue's jobs in this workspace and the instructor's settings; the
instructor's way in from a terminal (the Instructor page does the same on a classroom server):
`--cancel ID` stops one job for everyone (a running job stops at its next batch), `--cancel-all`
every queued and running one, `--pause` / `--resume` the queue, `--max-per-session N` the share
of one browser session. A running server reads the settings file at each request and each round
of its queue, so these act on it at once."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import asdict

from core.cli.main import workspace_from_args
from core.foundation.errors import UserError
from core.jobs.store import ACTIVE_STATES, MAX_PER_SESSION_CEILING, JobStore


def register(subparsers, common: argparse.ArgumentParser) -> None:
    jobs = subparsers.add_parser("jobs", parents=[common], help="the job queue's jobs (queued, running, ended) and settings; --cancel ID stops one")
    jobs.add_argument("--cancel", metavar="JOB_ID", help="cancel this queued or running job for every session waiting on it")
    jobs.add_argument("--cancel-all", action="store_true", help="cancel every queued and running job")
    pause = jobs.add_mutually_exclusive_group()
    pause.add_argument("--pause", action="store_true", help="hand no more jobs to Ray (running ones go on; new ones are accepted and wait)")
    pause.add_argument("--resume", action="store_true", help="start handing the waiting jobs to Ray again")
    jobs.add_argument("--max-per-session", type=int, metavar="N", help=f"queued or running jobs one browser session may have at once (1 to {MAX_PER_SESSION_CEILING}; default 2)")
    jobs.set_defaults(handler=jobs_command)


def jobs_command(args: argparse.Namespace) -> dict:
    store = JobStore(workspace_from_args(args).root / "jobs")
    changes = {}
    if args.pause or args.resume:
        changes["paused"] = bool(args.pause)
    if args.max_per_session is not None:
        changes["max_per_session"] = args.max_per_session
    if changes:
        store.save_settings(dataclasses.replace(store.settings(), **changes))  # validated: one line when out of range
    if args.cancel:
        record = store.load(args.cancel)
        if record is None:
            raise UserError(f"no job '{args.cancel}' in this workspace; `python -m core jobs` lists them")
        if record.state not in ACTIVE_STATES:
            raise UserError(f"job '{args.cancel}' has already ended ({record.state})")
        store.cancel_path(record.job_id).touch()
        return {"cancelled": record.job_id}
    if args.cancel_all:
        active = [record.job_id for record in store.all() if record.state in ACTIVE_STATES]
        for job_id in active:
            store.cancel_path(job_id).touch()
        return {"cancelled": active, "settings": asdict(store.settings())}
    return {"jobs": [asdict(record) for record in store.all()], "settings": asdict(store.settings())}

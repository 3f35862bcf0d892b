"""`python -m core jobs`: the queue's jobs in this workspace; `--cancel ID` stops one for everyone
(the instructor's way in from a terminal: the running job stops at its next batch)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from core.cli.main import workspace_from_args
from core.foundation.errors import UserError
from core.jobs.store import ACTIVE_STATES, JobStore


def register(subparsers, common: argparse.ArgumentParser) -> None:
    jobs = subparsers.add_parser("jobs", parents=[common], help="the job queue's jobs (queued, running, ended); --cancel ID stops one")
    jobs.add_argument("--cancel", metavar="JOB_ID", help="cancel this queued or running job for every session waiting on it")
    jobs.set_defaults(handler=jobs_command)


def jobs_command(args: argparse.Namespace) -> dict:
    store = JobStore(workspace_from_args(args).root / "jobs")
    if args.cancel:
        record = store.load(args.cancel)
        if record is None:
            raise UserError(f"no job '{args.cancel}' in this workspace; `python -m core jobs` lists them")
        if record.state not in ACTIVE_STATES:
            raise UserError(f"job '{args.cancel}' has already ended ({record.state})")
        store.cancel_path(record.job_id).touch()
        return {"cancelled": record.job_id}
    return {"jobs": [asdict(record) for record in store.all()]}

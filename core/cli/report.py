"""`python -m core report`: the self-contained HTML report of chosen runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.compare import history_options
from core.cli.main import workspace_from_args
from core.compare.selection import baseline_for, load_summaries, parse_architectures, parse_run_ids
from core.foundation.errors import UserError
from core.foundation.workspace import atomic_write_bytes
from core.report.html import build_report, example_sections, runtime_sections


def register(subparsers, common: argparse.ArgumentParser) -> None:
    history_common = history_options()
    report = subparsers.add_parser(
        "report",
        parents=[history_common],
        help="write the self-contained HTML report of chosen runs",
        description="Write one HTML file (plotly.js embedded once, works offline) with the baseline, the chosen runs side by side, the charts, "
        "what changed example by example and layer by layer (each run against the reference), the deployment runtimes "
        "(the saved measurement of each run and its source: `python -m core runtimes --run N`; nothing is timed here), and the parameters used.",
    )
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument("--runs", help="comma-separated run ids, e.g. 3,5,8 (default: every run, filtered by --dataset/--model/--architecture/--technique when given)")
    report.add_argument("--technique", help="only runs of this technique")
    report.add_argument("--reference", type=int, help="run id to compare against (default: the baseline the chosen runs derive from)")
    report.add_argument("--title", default="Model Efficiency Lab report")
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> dict:
    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out should name an .html file, got {out}")
    workspace = workspace_from_args(args)
    run_ids = parse_run_ids(args.runs)
    summaries = load_summaries(workspace.history_db, run_ids, args.dataset, args.model, args.technique, parse_architectures(args.architecture))
    if not summaries:
        raise UserError(f"no runs to report in {workspace.history_db}; run a technique first, or check the filters")
    reference = baseline_for(workspace.history_db, summaries, args.reference)
    # The same sections the Compare page's report download holds: each run against the reference,
    # and the saved runtime measurements (read, never measured here).
    document = build_report(summaries, reference, title=args.title, examples=example_sections(workspace, summaries, reference), runtimes=runtime_sections(workspace, summaries, reference))
    try:
        atomic_write_bytes(out.resolve(), document.encode())
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror}") from None
    print(f"wrote {out} ({len(document) / 1e6:.1f} MB, {len(summaries)} runs)", file=sys.stderr)
    return {"out": str(out.resolve()), "run_ids": [summary.run_id for summary in summaries], "reference_run_id": reference.run_id, "bytes": len(document.encode())}

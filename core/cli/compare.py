"""`python -m core runs`: the run history from the command line."""

from __future__ import annotations

import argparse

from core.cli.main import common_options, workspace_from_args
from core.compare.runs import comparison_table, table_records
from core.compare.selection import baseline_for, load_summaries, parse_architectures


def history_options() -> argparse.ArgumentParser:
    """For runs/report, --dataset and --model filter the history and default to "any"; --architecture
    filters by the architectures of the runs' models (the Compare page's Architecture filter)."""
    history_common = common_options()
    history_common.set_defaults(dataset=None, model=None)
    history_common.add_argument("--architecture", help="only runs whose model is one of these registry architectures, comma-separated, e.g. resnet18,mobilenet_v2_x0_5")
    return history_common


def register(subparsers, common: argparse.ArgumentParser) -> None:
    # A fresh copy of the common options carries the "any" defaults (argparse shares a parent's actions between parsers).
    history_common = history_options()
    runs = subparsers.add_parser(
        "runs",
        parents=[history_common],
        help="list the run history",
        description="List every recorded run (filtered by --dataset/--model/--technique when given). Without --json a readable table goes to stdout before the JSON line.",
    )
    runs.add_argument("--json", action="store_true", help="put every run's full record in the JSON line")
    runs.add_argument("--technique", help="only runs of this technique (train, distill, prune, quantize, pipeline)")
    runs.set_defaults(handler=run_runs)


def run_runs(args: argparse.Namespace) -> dict:
    workspace = workspace_from_args(args)
    summaries = load_summaries(workspace.history_db, dataset=args.dataset, model=args.model, technique=args.technique, architectures=parse_architectures(args.architecture))
    reference = baseline_for(workspace.history_db, summaries) if summaries else None
    records = table_records(comparison_table(summaries, reference)) if reference else []
    if not args.json:
        print(_text_table(records))
        return {"count": len(records), "run_ids": [record["run_id"] for record in records], "history_db": str(workspace.history_db)}
    for record, summary in zip(records, summaries):
        record["run_params"] = summary.run_params  # beside the parameter count, never over it
        record["artifact_path"] = summary.artifact_path
        record.pop("params_json")
    return {"count": len(records), "runs": records, "reference_run_id": reference.run_id if reference else None, "history_db": str(workspace.history_db)}


TEXT_COLUMNS = (
    ("run_id", "id", 5),
    ("technique", "technique", 10),
    ("dataset", "dataset", 12),
    ("architecture", "architecture", 34),
    ("parent_id", "parent", 6),
    ("accuracy_percent", "acc %", 7),
    ("size_bytes", "bytes", 10),
    ("compression_ratio", "ratio", 6),
    ("latency_ms", "ms", 8),
    ("speedup", "speedup", 7),
    ("pinned", "pin", 3),
)


def _text_table(records: list[dict]) -> str:
    if not records:
        return "no runs recorded yet"
    lines = [" ".join(f"{title:>{width}}" for _, title, width in TEXT_COLUMNS)]
    for record in records:
        cells = []
        for key, _, width in TEXT_COLUMNS:
            value = record.get(key)
            text = "" if value is None else ("*" if value is True else "" if value is False else str(value))
            cells.append(f"{text[-width:]:>{width}}")
        lines.append(" ".join(cells))
    return "\n".join(lines)

"""`python -m core runs | report | pipeline`: the run history, the HTML report and the combined
pipeline from the command line."""

from __future__ import annotations

import argparse
import copy
import importlib
import sys
from pathlib import Path

from core.cli import baseline_from_args, common_options, workspace_from_args
from core.compare.report import build_report
from core.compare.runs import comparison_table, table_records
from core.compare.selection import baseline_for, load_summaries, parse_run_ids
from core.errors import UserError
from core.workspace import atomic_write_bytes


def register(subparsers, common: argparse.ArgumentParser) -> None:
    # For runs/report, --dataset and --model filter the history and default to "any": a fresh copy of
    # the common options carries those defaults (argparse shares a parent's actions between parsers).
    history_common = common_options()
    history_common.set_defaults(dataset=None, model=None)
    runs = subparsers.add_parser(
        "runs", parents=[history_common], help="list the run history",
        description="List every recorded run (filtered by --dataset/--model/--technique when given). Without --json a readable table goes to stdout before the JSON line.",
    )
    runs.add_argument("--json", action="store_true", help="put every run's full record in the JSON line")
    runs.add_argument("--technique", help="only runs of this technique (train, distill, prune, quantize, pipeline)")
    runs.set_defaults(handler=run_runs)

    report = subparsers.add_parser(
        "report", parents=[history_common], help="write the self-contained HTML report of chosen runs",
        description="Write one HTML file (plotly.js embedded once, works offline) with the baseline, the chosen runs side by side, the charts and the parameters used.",
    )
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument("--runs", help="comma-separated run ids, e.g. 3,5,8 (default: every run, filtered by --dataset/--model/--technique when given)")
    report.add_argument("--technique", help="only runs of this technique")
    report.add_argument("--reference", type=int, help="run id to compare against (default: the baseline the chosen runs derive from)")
    report.add_argument("--title", default="Model Efficiency Lab report")
    report.set_defaults(handler=run_report)

    from core.compare.pipeline import PRESETS, STEP_ORDER

    pipeline = subparsers.add_parser(
        "pipeline", parents=[common], help="distill -> prune -> quantize in one go, then the compressed encoding",
        description="Run the chosen steps in order on the cached baseline (trained first when missing), each recorded as a run whose parent is the "
        "previous step, then write the model zip (the honest compressed artifact). Step options are those of `distill`, `prune` and `quantize`, "
        "under the same names; a preset fills them in and any option given explicitly overrides it. The last stdout line is one JSON object.",
    )
    pipeline.add_argument("--steps", help=f"comma-separated, in this order: {','.join(STEP_ORDER)} (default: the preset's)")
    pipeline.add_argument("--preset", choices=sorted(PRESETS), help="; ".join(f"{name}: {preset.title}" for name, preset in PRESETS.items()))
    for command, actions in step_actions().items():
        group = pipeline.add_argument_group(f"{command} step options (as in `python -m core {command}`)")
        for action in actions:
            group._add_action(action)  # argparse has no public call to re-add an existing action
    pipeline.set_defaults(handler=run_pipeline_command)


STEP_COMMANDS = {"distill": "core.distillation.cli", "prune": "core.pruning.cli", "quantize": "core.quantization.cli"}


def step_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each technique's own subcommand parser, built by its own register() without the common options."""
    holder = argparse.ArgumentParser(add_help=False)
    subparsers = holder.add_subparsers()
    for command, module in STEP_COMMANDS.items():
        importlib.import_module(module).register(subparsers, argparse.ArgumentParser(add_help=False))
    return {command: subparsers.choices[command] for command in STEP_COMMANDS}


def step_actions() -> dict[str, list[argparse.Action]]:
    """Copies of the techniques' options for the pipeline parser: same flags, help and choices,
    never required (a step may be left out) and absent unless given, so a preset can fill them."""
    copies = {}
    for command, parser in step_parsers().items():
        copies[command] = []
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            twin = copy.copy(action)
            twin.required = False
            twin.default = argparse.SUPPRESS
            copies[command].append(twin)
    return copies


def step_option_defaults() -> dict:
    """Every step option's default, by dest, as the technique's own command has it."""
    defaults = {}
    for parser in step_parsers().values():
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                defaults.setdefault(action.dest, action.default)
    return defaults


def pipeline_options(args: argparse.Namespace) -> dict:
    """Technique defaults, then the preset's values, then whatever was given on the command line."""
    from core.compare.pipeline import PRESETS

    step_dests = set(step_option_defaults())
    given = {dest: value for dest, value in vars(args).items() if dest in step_dests}
    preset = PRESETS[args.preset].options if args.preset else {}
    options = {**step_option_defaults(), **preset, **given, "preset": args.preset or "custom"}
    if args.steps:
        options["steps"] = args.steps
    if not options.get("steps"):
        raise UserError("choose the steps (--steps distill,prune,quantize, any of them in that order) or a --preset")
    return options


def run_pipeline_command(args: argparse.Namespace) -> dict:
    from core.compare.pipeline import build_pipeline_config, run_pipeline
    from core.progress import stderr_progress

    config = build_pipeline_config(pipeline_options(args), args.model, args.seed, args.epochs, args.device)  # checked before any training
    workspace = workspace_from_args(args)
    baseline = baseline_from_args(args, workspace)
    result = run_pipeline(baseline, config, workspace, stderr_progress())
    return {**result.summary(), "dataset": baseline.dataset.summary(), "baseline_checkpoint": str(baseline.checkpoint)}


def run_runs(args: argparse.Namespace) -> dict:
    workspace = workspace_from_args(args)
    summaries = load_summaries(workspace.history_db, dataset=args.dataset, model=args.model, technique=args.technique)
    reference = baseline_for(workspace.history_db, summaries) if summaries else None
    records = table_records(comparison_table(summaries, reference)) if reference else []
    if not args.json:
        print(_text_table(records))
        return {"count": len(records), "run_ids": [record["run_id"] for record in records], "history_db": str(workspace.history_db)}
    for record, summary in zip(records, summaries):
        record["params"] = summary.run_params
        record["artifact_path"] = summary.artifact_path
        record.pop("params_json")
    return {"count": len(records), "runs": records, "reference_run_id": reference.run_id if reference else None, "history_db": str(workspace.history_db)}


def run_report(args: argparse.Namespace) -> dict:
    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out should name an .html file, got {out}")
    workspace = workspace_from_args(args)
    run_ids = parse_run_ids(args.runs)
    summaries = load_summaries(workspace.history_db, run_ids, args.dataset, args.model, args.technique)
    if not summaries:
        raise UserError(f"no runs to report in {workspace.history_db}; run a technique first, or check the filters")
    reference = baseline_for(workspace.history_db, summaries, args.reference)
    document = build_report(summaries, reference, title=args.title)
    try:
        atomic_write_bytes(out.resolve(), document.encode())
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror}") from None
    print(f"wrote {out} ({len(document) / 1e6:.1f} MB, {len(summaries)} runs)", file=sys.stderr)
    return {"out": str(out.resolve()), "run_ids": [summary.run_id for summary in summaries], "reference_run_id": reference.run_id, "bytes": len(document.encode())}


TEXT_COLUMNS = (("run_id", "id", 5), ("technique", "technique", 10), ("dataset", "dataset", 12), ("model", "model", 18), ("parent_id", "parent", 6), ("accuracy_percent", "acc %", 7), ("size_bytes", "bytes", 10), ("compression_ratio", "ratio", 6), ("latency_ms", "ms", 8), ("speedup", "speedup", 7), ("pinned", "pin", 3))


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

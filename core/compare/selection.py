"""Choosing runs to compare and the reference they are compared with (shared by the page and the CLI)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from core.compare.runs import pick_reference
from core.contract.run_summary import RunSummary, summarize
from core.foundation import history
from core.foundation.errors import UserError


def parse_run_ids(text: str | None) -> list[int] | None:
    """ "3,5,8" -> [3, 5, 8]; None or "" -> None (all runs)."""
    if not text or not text.strip():
        return None
    ids = []
    for part in text.split(","):
        part = part.strip().lstrip("#")
        if not part:
            continue
        if not part.isdigit():
            raise UserError(f"run ids are whole numbers separated by commas, e.g. 3,5,8; got '{part}'")
        ids.append(int(part))
    return ids or None


def load_summaries(db: Path, run_ids: list[int] | None = None, dataset: str | None = None, model: str | None = None, technique: str | None = None) -> list[RunSummary]:
    runs = history.list_runs(db, dataset=dataset, model=model, technique=technique, run_ids=run_ids)
    if run_ids is not None:
        missing = sorted(set(run_ids) - {run.id for run in runs})
        if missing:
            raise UserError(f"no run with id {', '.join(map(str, missing))} in {db}; `python -m core runs` lists them")
    return [summarize(run) for run in runs]


def baseline_for(db: Path, chosen: list[RunSummary], preferred_id: int | None = None) -> RunSummary:
    """The reference: `preferred_id` if given, else the training run most of the chosen runs derive
    from, else the newest training run in the history."""
    if preferred_id is not None:
        run = history.get_run(db, preferred_id)
        if run is None:
            raise UserError(f"no run with id {preferred_id} to use as the reference")
        return summarize(run)
    roots: Counter[int] = Counter()
    for summary in chosen:
        chain = history.lineage(db, summary.run_id)
        trained = [run for run in chain if run.technique == "train"]
        if trained:
            roots[trained[-1].id] += 1  # the nearest training run: the model this one was derived from
    if roots:
        return summarize(history.get_run(db, roots.most_common(1)[0][0]))
    reference = pick_reference([summarize(run) for run in history.list_runs(db, technique="train")])
    if reference is None:
        reference = pick_reference(chosen)
    if reference is None:
        raise UserError(f"the run history at {db} is empty; train a baseline first (`python -m core train`)")
    return reference

"""Choosing runs to compare and the reference they are compared with (shared by the page and the CLI)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from core.compare.runs import pick_reference
from core.contract.run_summary import RunSummary, summarize
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.models.names import ARCHITECTURES


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


def load_summaries(
    db: Path, run_ids: list[int] | None = None, dataset: str | None = None, model: str | None = None, technique: str | None = None, architectures: list[str] | None = None
) -> list[RunSummary]:
    runs = history.list_runs(db, dataset=dataset, model=model, technique=technique, run_ids=run_ids)
    if run_ids is not None:
        missing = sorted(set(run_ids) - {run.id for run in runs})
        if missing:
            raise UserError(f"no run with id {', '.join(map(str, missing))} in {db}; `python -m core runs` lists them")
    return with_architectures([summarize(run) for run in runs], architectures)


def architecture_choices(runs: list[RunSummary]) -> list[str]:
    """The architectures these runs recorded, as a filter offers them: the registry's order (the lab's
    own, then torchvision), then any name this version's registry lacks, alphabetically."""
    recorded = {run.architecture for run in runs if run.architecture}
    order = [architecture.name for architecture in ARCHITECTURES]
    return [name for name in order if name in recorded] + sorted(recorded - set(order))


def with_architectures(runs: list[RunSummary], architectures: list[str] | None) -> list[RunSummary]:
    """The runs whose architecture is one of `architectures` (None or empty: all of them)."""
    if not architectures:
        return runs
    wanted = set(architectures)
    return [run for run in runs if run.architecture in wanted]


def parse_architectures(text: str | None) -> list[str] | None:
    """ "resnet18,mobilenet_v2_x0_5" -> the names; None or "" -> None (any). A name the registry lacks
    is refused in one line (a run recorded under a name it no longer has is still found by --model)."""
    if not text or not text.strip():
        return None
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    known = [architecture.name for architecture in ARCHITECTURES]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(f"unknown architecture {', '.join(repr(name) for name in unknown)} for --architecture; the registry has {', '.join(known)}")
    return names or None


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

"""Compression-identified exemplars (Hooker et al. 2019): the test images a baseline gets right and
most of its compressed descendants get wrong. They are the atypical images compression forgets
first, the ones a class should look at.

    report = exemplars_for_baseline(workspace, baseline_run_id)
    report.exemplars   # ranked: most failing descendants first
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from core.contract.predictions import RunPredictions, run_predictions
from core.foundation import history
from core.foundation.data.datasets import Dataset
from core.foundation.errors import UserError
from core.foundation.progress import Progress, ProgressCallback, no_progress
from core.foundation.workspace import Workspace

MIN_FAILING_SHARE = 0.5  # "most descendants": more than half of them get the image wrong


@dataclass
class Exemplar:
    index: int  # position in the test set
    true_label: int
    failing_descendants: int
    descendants: int
    commonest_wrong_label: int  # what the failing descendants most often say instead


@dataclass
class ExemplarReport:
    baseline_run_id: int
    descendant_run_ids: list[int]  # the descendants whose predictions were compared
    test_images: int
    baseline_accuracy: float
    exemplars: list[Exemplar]
    class_names: list[str]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # descendants left out, with the reason
    dataset: Dataset | None = field(default=None, repr=False)  # the test images, for the gallery

    def sentence(self) -> str:
        used = len(self.descendant_run_ids)
        skipped = f" ({len(self.skipped)} more left out: {self.skipped[0][1]})" if self.skipped else ""
        if not used:
            return f"Run #{self.baseline_run_id} has no compressed descendants on this test set yet{skipped}; compress it on a technique page first."
        right = round(self.baseline_accuracy * self.test_images)
        return (
            f"{len(self.exemplars):,} of the {right:,} test images run #{self.baseline_run_id} gets right (of {self.test_images:,}) are missed by more than half "
            f"of its {used} compressed descendant{'s' if used != 1 else ''}{skipped}."
        )

    def as_dict(self, limit: int = 100) -> dict:
        return {
            "baseline_run_id": self.baseline_run_id,
            "descendant_run_ids": self.descendant_run_ids,
            "descendants": len(self.descendant_run_ids),
            "test_images": self.test_images,
            "exemplar_count": len(self.exemplars),
            "sentence": self.sentence(),
            "exemplars": [
                {
                    "index": e.index,
                    "true_label": self.class_names[e.true_label],
                    "failing_descendants": e.failing_descendants,
                    "descendants": e.descendants,
                    "commonest_wrong_label": self.class_names[e.commonest_wrong_label],
                }
                for e in self.exemplars[:limit]
            ],
            "skipped": [{"run_id": run_id, "reason": reason} for run_id, reason in self.skipped],
        }


def find_exemplars(baseline_predicted: torch.Tensor, descendant_predicted: list[torch.Tensor], labels: torch.Tensor, min_share: float = MIN_FAILING_SHARE) -> list[Exemplar]:
    """Images the baseline gets right and more than `min_share` of the descendants get wrong,
    most failures first (ties: test-set order)."""
    if not descendant_predicted:
        return []
    stacked = torch.stack(descendant_predicted)  # [descendants, images]
    wrong = stacked != labels.view(1, -1)
    failing = wrong.sum(0)
    chosen = torch.nonzero((baseline_predicted == labels) & (failing > min_share * len(descendant_predicted))).flatten()
    order = chosen[torch.argsort(-failing[chosen], stable=True)]
    exemplars = []
    for index in order.tolist():
        answers = stacked[:, index][wrong[:, index]].tolist()
        exemplars.append(Exemplar(index, int(labels[index]), int(failing[index]), len(descendant_predicted), Counter(answers).most_common(1)[0][0]))
    return exemplars


def exemplars_for_baseline(workspace: Workspace, baseline_run_id: int, progress: ProgressCallback = no_progress) -> ExemplarReport:
    """Exemplars over every recorded descendant of the baseline that predicts on its test set."""
    if history.get_run(workspace.history_db, baseline_run_id) is None:
        raise UserError(f"no run #{baseline_run_id} in {workspace.history_db}; `python -m core runs` lists them")
    from core.diff.runs import dataset_loader

    dataset_of = dataset_loader(workspace)
    baseline_dataset = dataset_of(history.get_run(workspace.history_db, baseline_run_id))
    baseline = run_predictions(workspace, baseline_run_id, baseline_dataset)
    used: list[RunPredictions] = []
    skipped: list[tuple[int, str]] = []
    descendants = history.descendants(workspace.history_db, baseline_run_id)
    for done, run in enumerate(descendants):
        progress(Progress("exemplars", done, len(descendants), f"predictions of run #{run.id}"))
        try:
            predictions = run_predictions(workspace, run.id, dataset_of(run))
        except UserError as error:
            skipped.append((run.id, str(error)))
            continue
        if predictions.test_set_id != baseline.test_set_id:
            skipped.append((run.id, f"run #{run.id} was evaluated on a different test set"))
            continue
        used.append(predictions)
    exemplars = find_exemplars(baseline.predicted, [p.predicted for p in used], baseline.labels)
    return ExemplarReport(baseline_run_id, [p.run_id for p in used], len(baseline.labels), baseline.accuracy, exemplars, baseline.class_names, skipped, baseline_dataset)

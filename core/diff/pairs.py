"""What changed between two models, example by example (Hooker et al. 2019; Compress and Compare 2024).

Both models' logits on the same test images go in; out come the top-1 agreement, the 2x2 table of
who got which image right, per-class accuracy of each, how the probability of the true class moved,
and the images whose prediction flipped, worst first. A is the model under study (the compressed
one), B the model it is compared with (its source, by default).

    diff = diff_predictions(a.logits, b.logits, labels, class_names, "run #7 (prune)", "run #3 (train)")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from core.foundation.errors import UserError

CONFIDENCE_BINS = 40  # histogram bins of the true-class probability change, over [-1, 1]


@dataclass
class ClassChange:
    class_name: str
    images: int
    accuracy_a: float
    accuracy_b: float

    @property
    def change_points(self) -> float:
        return 100.0 * (self.accuracy_a - self.accuracy_b)


@dataclass
class FlippedImage:
    """A test image the two models label differently."""

    index: int  # position in the test set
    true_label: int
    prediction_a: int
    confidence_a: float  # A's softmax probability of its own prediction
    prediction_b: int
    confidence_b: float
    true_probability_change: float  # A's minus B's probability of the true class: most negative = worst


@dataclass
class PredictionDiff:
    label_a: str
    label_b: str
    run_a: int | None
    run_b: int | None
    class_names: list[str]
    test_images: int
    agreement: float  # share of test images with the same top-1 prediction
    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int
    per_class: list[ClassChange]
    flipped: list[FlippedImage]  # every image whose top-1 changed, worst (for A) first
    true_probability_change: list[float] = field(repr=False, default_factory=list)  # per image, A minus B

    @property
    def accuracy_a(self) -> float:
        return (self.both_right + self.only_a_right) / self.test_images if self.test_images else 0.0

    @property
    def accuracy_b(self) -> float:
        return (self.both_right + self.only_b_right) / self.test_images if self.test_images else 0.0

    def losing_classes(self, count: int = 2) -> list[ClassChange]:
        """The classes whose accuracy fell most from B to A (only those that fell)."""
        falling = sorted((change for change in self.per_class if change.change_points < 0), key=lambda change: change.change_points)
        return falling[:count]

    def sentence(self) -> str:
        """One plain sentence for above the charts: how often they agree and who lost most."""
        head = (
            f"{self.label_a} agrees with {self.label_b} on {self.agreement:.1%} of {self.test_images:,} test images; "
            f"{self.only_b_right:,} that {self.label_b} got right it gets wrong, and {self.only_a_right:,} the other way round."
        )
        losers = self.losing_classes()
        if not losers:
            return head + " No class lost accuracy."
        named = " and ".join(f"{change.class_name} ({change.change_points:+.1f} points)" for change in losers)
        return head + f" The class{'es' if len(losers) > 1 else ''} that lose{'' if len(losers) > 1 else 's'} most: {named}."

    def confidence_histogram(self) -> tuple[list[float], list[int]]:
        """Bin edges and counts of the true-class probability change over [-1, 1]."""
        counts = torch.histc(torch.tensor(self.true_probability_change), bins=CONFIDENCE_BINS, min=-1.0, max=1.0)
        edges = torch.linspace(-1.0, 1.0, CONFIDENCE_BINS + 1)
        return edges.tolist(), [int(count) for count in counts.tolist()]

    def as_dict(self, flipped_details: int = 50) -> dict:
        """The CLI's and the report's figures (the per-image probability change is summarised)."""
        changes = torch.tensor(self.true_probability_change) if self.true_probability_change else torch.zeros(0)
        return {
            "label_a": self.label_a,
            "label_b": self.label_b,
            "run_a": self.run_a,
            "run_b": self.run_b,
            "test_images": self.test_images,
            "agreement": self.agreement,
            "both_right": self.both_right,
            "only_a_right": self.only_a_right,
            "only_b_right": self.only_b_right,
            "both_wrong": self.both_wrong,
            "accuracy_a": self.accuracy_a,
            "accuracy_b": self.accuracy_b,
            "per_class": [{"class": c.class_name, "images": c.images, "accuracy_a": c.accuracy_a, "accuracy_b": c.accuracy_b, "change_points": c.change_points} for c in self.per_class],
            "flipped": [image.index for image in self.flipped],
            "flipped_details": [asdict(image) for image in self.flipped[:flipped_details]],
            "losing_classes": [c.class_name for c in self.losing_classes()],
            "sentence": self.sentence(),
            "true_probability_change_mean": float(changes.mean()) if len(changes) else 0.0,
            "true_probability_change_histogram": dict(zip(("edges", "counts"), self.confidence_histogram())),
        }


def diff_predictions(
    logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor, class_names: list[str], label_a: str = "A", label_b: str = "B", run_a: int | None = None, run_b: int | None = None
) -> PredictionDiff:
    """Compare two models' logits on the same labelled images."""
    if logits_a.shape != logits_b.shape or logits_a.shape[0] != labels.shape[0]:
        raise UserError(f"{label_a} and {label_b} were evaluated on different test sets ({logits_a.shape[0]:,} and {logits_b.shape[0]:,} images); compare runs made on the same test set")
    probabilities_a, probabilities_b = logits_a.float().softmax(1), logits_b.float().softmax(1)
    confidence_a, predicted_a = probabilities_a.max(1)
    confidence_b, predicted_b = probabilities_b.max(1)
    right_a, right_b = predicted_a == labels, predicted_b == labels
    true_change = probabilities_a.gather(1, labels.view(-1, 1)).flatten() - probabilities_b.gather(1, labels.view(-1, 1)).flatten()
    per_class = []
    for index, name in enumerate(class_names):
        in_class = labels == index
        count = int(in_class.sum())
        per_class.append(ClassChange(name, count, float(right_a[in_class].float().mean()) if count else 0.0, float(right_b[in_class].float().mean()) if count else 0.0))
    changed = torch.nonzero(predicted_a != predicted_b).flatten()
    order = changed[torch.argsort(true_change[changed], stable=True)]  # the biggest loss of the true class first
    flipped = [FlippedImage(int(i), int(labels[i]), int(predicted_a[i]), float(confidence_a[i]), int(predicted_b[i]), float(confidence_b[i]), float(true_change[i])) for i in order.tolist()]
    return PredictionDiff(
        label_a=label_a,
        label_b=label_b,
        run_a=run_a,
        run_b=run_b,
        class_names=list(class_names),
        test_images=int(labels.numel()),
        agreement=float((predicted_a == predicted_b).float().mean()) if labels.numel() else 0.0,
        both_right=int((right_a & right_b).sum()),
        only_a_right=int((right_a & ~right_b).sum()),
        only_b_right=int((~right_a & right_b).sum()),
        both_wrong=int((~right_a & ~right_b).sum()),
        per_class=per_class,
        flipped=flipped,
        true_probability_change=true_change.tolist(),
    )

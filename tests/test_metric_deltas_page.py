"""The Pruning page draws no arrow for a change of zero (ui/metrics.py's rule), and keeps real ones."""

from __future__ import annotations

from tests.conftest import open_app_page


def metric(at, label_start: str):
    return next(m for m in at.metric if m.label.startswith(label_start))


def test_pruning_page_shows_no_arrow_for_unchanged_parameters(digits_baseline):
    at = open_app_page("pages/pruning.py")  # unstructured pruning: weights zeroed, none removed
    assert metric(at, "Zero weights").value == "50.0%"
    for label in ("Parameters", "MACs per image"):
        assert metric(at, label).value and metric(at, label).delta == "", label  # no delta, so no arrow
    at.slider(key="prune_amount").set_value(0.95).run()
    assert metric(at, "Accuracy").delta.startswith("-")  # a real change keeps its delta and arrow
    at.radio(key="prune_granularity").set_value("channel").run()
    at.checkbox(key="prune_remove").check().run()
    assert not at.exception
    assert metric(at, "Parameters").delta.startswith("-")  # channels removed: a real change, with its arrow

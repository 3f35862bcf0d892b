"""A change of zero shows no arrow: the shared delta rule (ui/metrics.py); the Pruning page using it is
tested in tests/test_metric_deltas_page.py."""

from __future__ import annotations

import math

import pytest

from ui.metrics import delta_or_none


@pytest.mark.parametrize(
    "change, template, fields, expected",
    [
        (0, "{:+,}", {}, None),  # "Parameters 39,742 ↑ +0" was the bug
        (-1200, "{:+,}", {}, "-1,200"),
        (35, "{:+,}", {}, "+35"),
        (0.0, "{:+.2f} M", {}, None),
        (0.04, "{:+.1f} points", {}, None),  # rounds to "+0.0": no arrow either
        (-0.04, "{:+.1f} points", {}, None),  # "-0.0"
        (0.06, "{:+.1f} points", {}, "+0.1 points"),
        (-2.5, "QAT {:+.1f} points", {}, "QAT -2.5 points"),
        (0.0, "{:+.1f} points vs fp32 {fp32:.1%}", {"fp32": 0.972}, None),
        (-1.0, "{:+.1f} points vs fp32 {fp32:.1%}", {"fp32": 0.972}, "-1.0 points vs fp32 97.2%"),
        (math.nan, "{:+.1f} points", {}, None),
        (None, "{:+.1f} points", {}, None),
    ],
)
def test_delta_is_the_formatted_change_or_none_when_it_shows_as_zero(change, template, fields, expected):
    assert delta_or_none(change, template, **fields) == expected

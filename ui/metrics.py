"""The one rule for st.metric's delta on every page: a change that shows as zero gets no delta.

Streamlit draws an arrow for any delta, "+0" included: an up arrow, red where delta_color is
"inverse" ("Parameters 39,742 ↑ +0"). Pure Python, so it is tested without Streamlit.
"""

from __future__ import annotations

import math


def delta_or_none(change: float, template: str, **fields) -> str | None:
    """`template.format(change, **fields)` for st.metric's delta, e.g.
    delta_or_none(-1200, "{:+,}") == "-1,200"; None when the change is zero or rounds to zero in
    that format (delta_or_none(0.04, "{:+.1f} points") is None), or is not a number."""
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return None
    text = template.format(change, **fields)
    zero = type(change)(0)
    if text in (template.format(zero, **fields), template.format(-zero, **fields)):
        return None
    return text

"""A share link carrying hostile values (issue 28): each page opens without a traceback, its widgets at
the defaults a plain opening gives, with one short plain-text warning line per value ignored, naming it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT
from ui.link_params import sidebar_params
from ui.plain_text import literal

SCRIPT = "<script>alert(1)</script>"
UNKNOWN_NAME = "<img src=x onerror=alert(1)>"

# 21 values over the five pages' links and the sidebar's: negative, huge, NaN, infinite, unknown
# names, script text, paths, empty, very long, Markdown and unicode (full-width letters, a superscript digit).
HOSTILE = {
    "pages/pruning.py": {
        "seed": "9" * 400,  # a whole number no widget can hold
        "epochs": "1e308",
        "train-size": "nan",
        "model": SCRIPT,
        "device": "",
        "amount": "NaN",
        "granularity": "../../etc/passwd",
        "scope": "x" * 5000,
        "remove": "✓",
        UNKNOWN_NAME: "1",
    },
    "pages/quantization.py": {"mode": "ＱＡＴ", "bits": "-8"},
    "pages/distillation.py": {"temperature": "inf", "alpha": "1e308", "preset": "[log in](http://evil.example)", "teacher-epochs": "-1"},
    "pages/compare.py": {"dataset": "/etc/passwd", "reference": "²", "runs": SCRIPT},
    "pages/explore.py": {"grid": "../../etc/passwd", "budget-points": "-inf"},
}
# A widget of each page's link, so the comparison is seen to cover the page and not only the sidebar.
PAGE_WIDGET = {
    "pages/pruning.py": "prune_amount",
    "pages/quantization.py": "quant_mode",
    "pages/distillation.py": "distill_temperature",
    "pages/compare.py": "compare_reference",
    "pages/explore.py": "explore_budget",
}
KINDS = ("slider", "select_slider", "radio", "selectbox", "number_input", "checkbox", "toggle", "multiselect", "text_input")


def open_link(page: str, query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.query_params.update(query)
    at.switch_page(page)
    at.run()
    return at


def widget_values(at: AppTest) -> dict:
    return {widget.key: widget.value for kind in KINDS for widget in at.get(kind) if widget.key}


def test_twenty_hostile_values_are_counted():
    assert sum(map(len, HOSTILE.values())) >= 20


@pytest.mark.parametrize("page", list(HOSTILE))
def test_a_hostile_link_opens_the_page_at_its_defaults_with_one_plain_line_per_value(page, digits_baseline):
    query = HOSTILE[page]
    plain = open_link(page, {})
    at = open_link(page, query)
    assert not at.exception, [exception.value for exception in at.exception]
    assert not at.error
    values = widget_values(at)
    assert PAGE_WIDGET[page] in values and "sidebar_seed" in values
    assert values == widget_values(plain), "every widget holds what the page shows without a link"
    lines = [warning.value for warning in at.warning]
    assert len(lines) == len(query), lines
    for name, text in query.items():
        naming = [line for line in lines if line.startswith((f"Link: {literal(name)}=", f"Link: {literal(name)} ", f"Link: unknown parameter {literal(name)} "))]
        assert len(naming) == 1, (name, lines)
        line = naming[0]
        assert literal(text) in line, "the line names the value, cut short and as plain text"
        if literal(text) != text:
            assert text not in line, "no Markdown, HTML or 5,000 characters of the link's text reach the page"
    assert all("\n" not in line and len(line) < 400 for line in lines)
    assert not any(at.query_params.get(name) == text for name, text in query.items() if text), "the address bar no longer holds what was ignored"
    at.run()
    assert not at.exception and not at.warning, "said once, when the link is opened"


def test_no_link_number_is_too_large_for_a_widget_or_a_seed():
    """Each whole-number or number setting of the sidebar and the pages refuses what no number box
    (2**53) or torch seed (2**64) holds, and infinities, with a line; no check raises on them."""
    from ui import share

    every = [sidebar_params(), *(module.link_params() for name, module in share.PAGES.items() if name != "compare")]
    numbers = [param for params in every for param in params.values() if param.kind in (int, float)]
    assert len(numbers) >= 12
    for param in numbers:
        for text in ("9" * 400, "1e308", "-1e308", "inf", "nan"):
            value, warning = param.read(text)
            assert warning is not None and value == param.default, (param.name, text)
            assert literal(text) in warning and len(warning) < 400

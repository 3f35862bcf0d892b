"""AppTest of the Compare page's "Example by example" tab on real digits runs: two chosen runs
compared image by image, runs on different test sets refused in one line, and the baseline's
compression-identified exemplars with the number of descendants they come from."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.diff.exemplars import exemplars_for_baseline
from core.diff.runs import diff_runs
from tests.conftest import open_app_page


def open_examples_tab() -> AppTest:
    at = open_app_page("pages/compare.py")
    at.session_state["compare_tab"] = "Example by example"
    at.run()
    assert not at.exception
    return at


def markdown_text(at: AppTest) -> str:
    return "\n".join(element.value for element in at.markdown)


def test_two_chosen_runs_are_compared_image_by_image(digits_baseline, session_workspace, random_prune_run):
    at = open_examples_tab()
    at.selectbox(key="compare_diff_a").set_value(random_prune_run).run()
    assert not at.exception
    assert at.selectbox(key="compare_diff_b").value == digits_baseline.run_id  # A's parent, by default
    expected = diff_runs(session_workspace, random_prune_run, digits_baseline.run_id).predictions
    assert expected.sentence() in markdown_text(at)
    agreement = next(metric for metric in at.metric if metric.label == "Top-1 agreement")
    assert agreement.value == f"{expected.agreement:.1%}"
    assert not at.error
    # Any run can be run B: the run against itself agrees everywhere.
    at.selectbox(key="compare_diff_b").set_value(random_prune_run).run()
    assert not at.exception
    assert next(metric for metric in at.metric if metric.label == "Top-1 agreement").value == "100.0%"


def test_runs_on_different_test_sets_get_one_error_line_and_the_page_keeps_working(digits_baseline, random_prune_run, subset_test_run):
    at = open_examples_tab()
    at.selectbox(key="compare_diff_a").set_value(subset_test_run).run()
    at.selectbox(key="compare_diff_b").set_value(digits_baseline.run_id).run()
    assert not at.exception
    assert len(at.error) == 1 and "different test sets" in at.error[0].value
    assert not any(metric.label == "Top-1 agreement" for metric in at.metric)
    assert any(element.value == "Compression-identified exemplars" for element in at.subheader)  # the rest of the tab still draws
    # Back to two comparable runs: the comparison returns and the error goes.
    at.selectbox(key="compare_diff_a").set_value(random_prune_run).run()
    assert not at.exception and not at.error
    assert any(metric.label == "Top-1 agreement" for metric in at.metric)


def test_exemplars_say_how_many_descendants_they_come_from(digits_baseline, session_workspace, random_prune_run):
    at = open_examples_tab()
    assert at.selectbox(key="compare_exemplar_baseline").value == digits_baseline.run_id  # the reference, by default
    report = exemplars_for_baseline(session_workspace, digits_baseline.run_id)
    used = len(report.descendant_run_ids)
    assert random_prune_run in report.descendant_run_ids
    text = markdown_text(at)
    assert report.sentence() in text
    assert f"of its {used} compressed descendant" in text

"""The HTML report's example-by-example and layer-by-layer sections on real digits runs: the
flipped-images gallery and the 2x2 numbers of a prune run, no network anywhere, a run on another test set
gets its one line, and `python -m core report` writes what the page's download builds."""

from __future__ import annotations

import html
import json
import re

from core.cli.main import main
from core.contract.run_summary import summarize
from core.diff.runs import diff_runs
from core.foundation import history
from core.report.html import REPORT_GALLERY_SIZE, build_report, example_sections, runtime_sections


def summary(workspace, run_id):
    return summarize(history.get_run(workspace.history_db, run_id))


def section(document: str, start: str, end: str) -> str:
    """The HTML between two markers (each must be there)."""
    begin = document.index(start)
    return document[begin : document.index(end, begin + len(start))]


def test_the_report_shows_a_prune_run_image_by_image(digits_baseline, session_workspace, random_prune_run):
    reference = summary(session_workspace, digits_baseline.run_id)
    runs = [summary(session_workspace, random_prune_run)]
    examples = example_sections(session_workspace, runs, reference)
    document = build_report(runs, reference, examples=examples)

    diff = diff_runs(session_workspace, random_prune_run, digits_baseline.run_id).predictions
    assert diff.flipped, "70% random pruning should change some predictions"
    run_section = section(document, f'<h3 id="diff-{random_prune_run}">', "<h3")  # up to the exemplars
    shown = min(REPORT_GALLERY_SIZE, len(diff.flipped))
    assert run_section.count('<img src="data:image/png;base64,') == shown
    assert f"the first {shown} shown" in run_section
    assert html.escape(diff.sentence()) in run_section
    for count in (diff.both_right, diff.only_a_right, diff.only_b_right, diff.both_wrong):  # the 2x2 numbers
        assert f"<td>{count:,} (" in run_section
    assert f"Top-1 agreement {diff.agreement:.1%}" in run_section
    assert "<h2>What changed, example by example</h2>" in document
    # The per-class chart and the layer chart, drawn with the plotly.js embedded once at the top.
    assert f'id="diff-{random_prune_run}-classes"' in document and f'id="layers-{random_prune_run}"' in document
    assert "Where the error enters: run #" in document
    assert document.count("plotly.js v") == 1
    # The reference has a descendant now, so its exemplars are there with the number of descendants used.
    assert examples.exemplars is not None and random_prune_run in examples.exemplars.descendant_run_ids
    assert "Compression-identified exemplars of run #" in document
    assert f"of its {len(examples.exemplars.descendant_run_ids)} compressed descendant" in document


def test_the_report_fetches_nothing_from_the_network(digits_baseline, session_workspace, random_prune_run):
    reference = summary(session_workspace, digits_baseline.run_id)
    runs = [summary(session_workspace, random_prune_run)]
    document = build_report(runs, reference, examples=example_sections(session_workspace, runs, reference))
    assert not re.search(r"<script[^>]*\bsrc\s*=", document, re.IGNORECASE)
    assert not re.search(r"<img[^>]*\bsrc\s*=\s*[\"']?(https?:|//)", document, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:|//)", document, re.IGNORECASE)
    images = re.findall(r"<img[^>]*\bsrc\s*=\s*\"([^\"]*)\"", document)
    assert images and all(source.startswith("data:image/png;base64,") for source in images)


def test_a_run_that_cannot_be_diffed_gets_its_line_and_the_report_builds(digits_baseline, session_workspace, random_prune_run, subset_test_run):
    reference = summary(session_workspace, digits_baseline.run_id)
    runs = [summary(session_workspace, random_prune_run), summary(session_workspace, subset_test_run)]
    examples = example_sections(session_workspace, runs, reference)
    failed = next(entry for entry in examples.diffs if entry.run_id == subset_test_run)
    assert failed.comparison is None and failed.error
    document = build_report(runs, reference, examples=examples)
    failed_section = section(document, f'<h3 id="diff-{subset_test_run}">', "</p>")
    assert 'class="failed"' in failed_section and "different test sets" in failed_section
    assert document.count(f"Run #{subset_test_run} against reference") == 2  # its line in both sections, no chart
    assert f'id="layers-{subset_test_run}"' not in document
    assert f'id="layers-{random_prune_run}"' in document  # the other run is still compared
    assert document.rstrip().endswith("</html>")


def test_the_cli_writes_the_report_the_page_builds(digits_baseline, session_workspace, random_prune_run, subset_test_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    chosen = f"{random_prune_run},{subset_test_run}"
    assert main(["report", "--workspace", str(session_workspace.root), "--runs", chosen, "--reference", str(digits_baseline.run_id), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_ids"] == sorted([random_prune_run, subset_test_run])  # history order, whatever the fixtures' ids
    # What the page's download calls: the same runs, the reference, example_sections and runtime_sections (see pages/compare.py report_html).
    runs = [summarize(run) for run in history.list_runs(session_workspace.history_db, run_ids=[random_prune_run, subset_test_run])]
    reference = summary(session_workspace, digits_baseline.run_id)
    page_document = build_report(runs, reference, examples=example_sections(session_workspace, runs, reference), runtimes=runtime_sections(session_workspace, runs, reference))

    def without_timestamp(document: str) -> str:
        return re.sub(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d", "Generated", document)

    assert without_timestamp(out.read_text()) == without_timestamp(page_document)

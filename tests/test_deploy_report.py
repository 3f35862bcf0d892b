"""The HTML report's deployment runtimes section (issue 14) on a small digits history: the saved
measurement of each run and its source, as table, charts and caption with the measured numbers,
an unavailable runtime's reason, the one line for runs never measured, each set once, nothing timed
while building, nothing fetched from the network, and `python -m core report` writes the same."""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import sys

import pytest

from core.cli.main import main
from core.contract.run_summary import summarize
from core.deploy.runtimes import ONNXRUNTIME, OPENVINO, default_runs, measure_runtimes, table_rows
from core.foundation import history
from core.foundation.baseline.trained import get_baseline
from core.foundation.measures.latency import BATCH_SIZES, EAGER
from core.foundation.workspace import Workspace
from core.report.html import build_report, example_sections, runtime_sections
from tests.conftest import DEFAULT_BASELINE_CONFIG, record_prune_run

FAST_RUNTIMES = (EAGER, ONNXRUNTIME)  # no compiling: the whole module takes well under a minute


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict:
    """Its own workspace (saved measurements must not leak into other tests' workspaces): the
    digits baseline, a pruned run whose runtimes are measured with its source, another pruned run
    never measured, and the baseline alone measured with OpenVINO made unimportable."""
    workspace = Workspace.open(tmp_path_factory.mktemp("deploy-report-home"))
    baseline = get_baseline(DEFAULT_BASELINE_CONFIG, workspace)
    measured_run = record_prune_run(baseline, workspace, amount=0.7, method="random")
    unmeasured_run = record_prune_run(baseline, workspace, amount=0.5, method="l1")
    pair = default_runs(workspace, measured_run)
    assert pair == [baseline.run_id, measured_run]  # the run beside its source
    pair_report = measure_runtimes(workspace, pair, rounds=1, runtimes=FAST_RUNTIMES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
        alone_report = measure_runtimes(workspace, default_runs(workspace, baseline.run_id), rounds=1, runtimes=(EAGER, OPENVINO))
    return {"workspace": workspace, "baseline": baseline.run_id, "measured": measured_run, "unmeasured": unmeasured_run, "pair": pair, "pair_report": pair_report, "alone_report": alone_report}


def summary(workspace, run_id):
    return summarize(history.get_run(workspace.history_db, run_id))


def report_of(lab, run_ids, reference_id=None, **kwargs) -> tuple[str, object]:
    workspace = lab["workspace"]
    runs = [summary(workspace, run_id) for run_id in run_ids]
    reference = summary(workspace, reference_id or lab["baseline"])
    sections = runtime_sections(workspace, runs, reference)
    return build_report(runs, reference, runtimes=sections, **kwargs), sections


def section(document: str, start: str, ends: tuple[str, ...]) -> str:
    """The HTML from `start` (which must be there) up to the first of `ends` after it, or the end."""
    begin = document.index(start)
    stops = [found for end in ends if (found := document.find(end, begin + len(start))) != -1]
    return document[begin : min(stops, default=len(document))]


def tables_by_batch(measurement_html: str) -> dict[int, list[list[str]]]:
    """Each batch's table under its <h4>Batch N heading, as rows of cell texts."""
    tables = {}
    for part in measurement_html.split("<h4>")[1:]:
        size = int(re.match(r"Batch (\d+)", part).group(1))
        table = part[part.index('<table class="runtimes">') : part.index("</table>")]
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>", 1)[1])
        tables[size] = [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]
    return tables


def number(cell: str) -> float | None:
    return None if cell == "—" else float(cell.rstrip("×%"))


def test_the_section_shows_the_measured_table_charts_and_caption(lab):
    document, sections = report_of(lab, [lab["measured"], lab["unmeasured"]])
    report, (first, second) = lab["pair_report"], lab["pair"]
    assert '<h2 id="deployment-runtimes">Deployment runtimes</h2>' in document
    measurement = section(document, f'<h3 id="runtimes-{first}-{second}">', ("<h3", "<h2"))
    # Every row table_rows gives is in its batch's table with the same numbers, as shown (3 significant digits, 2 decimals).
    tables = tables_by_batch(measurement)
    rows = table_rows(report)
    assert set(tables) == set(BATCH_SIZES) and sum(len(shown) for shown in tables.values()) == len(rows)
    for row in rows:
        shown = next(cells for cells in tables[row["batch_size"]] if cells[:3] == [row["model"], row["runtime"], row["precision"]])
        for cell, value, tolerance in zip(
            shown[3:8],
            (row["latency_ms"], row["per_image_ms"], row["speedup_vs_fp32_eager"], row["int8_speedup_same_runtime"], None if row["accuracy"] is None else 100 * row["accuracy"]),
            (6e-3, 6e-3, 0, 0, 0),
        ):
            if value is None:
                assert cell == "—"
            else:
                assert number(cell) == pytest.approx(value, rel=tolerance, abs=0.006)
        assert shown[8] == row["status"]
    # ONNX Runtime's int8 ran, so its speed-up over its own fp32 is there; torch eager has no int8 and says why.
    assert any(row["int8_speedup_same_runtime"] is not None for row in rows if row["runtime"] == ONNXRUNTIME)
    eager_int8 = next(row for row in rows if row["runtime"] == EAGER and row["precision"] == "int8")
    assert eager_int8["status"].startswith("unavailable: ") and html.escape(eager_int8["status"]) in measurement
    # One chart per batch size, drawn with the plotly.js embedded once at the top.
    for size in BATCH_SIZES:
        assert f'id="runtimes-{first}-{second}-batch-{size}"' in measurement
        assert f"Latency per image by runtime, batch {size}" in measurement
    assert document.count("plotly.js v") == 1
    # The caption: threads, CPU, when, where each int8 model came from.
    caption = html.unescape(re.search(r'<p class="note">(.*?)</p>', measurement).group(1))
    assert f"{report.threads} thread" in caption and report.machine["cpu_model"] in caption and f"measured {report.measured_at}" in caption
    assert report.int8_sources and all(f"int8 of {model}: {source}" in caption for model, source in report.int8_sources.items())
    assert sections.unmeasured == [lab["unmeasured"]]


def test_an_unavailable_runtime_shows_its_reason(lab):
    document, _ = report_of(lab, [lab["measured"]])
    report, baseline = lab["alone_report"], lab["baseline"]
    openvino = [figure for figure in report.figures if figure.runtime == OPENVINO]
    assert openvino and all(not figure.available and "openvino is not installed" in figure.reason for figure in openvino)
    measurement = section(document, f'<h3 id="runtimes-{baseline}">', ("<h3", "<h2"))
    tables = tables_by_batch(measurement)
    for figure in openvino:
        shown = next(cells for cells in tables[figure.batch_size] if cells[1:3] == [OPENVINO, figure.precision])
        assert shown[3:8] == ["—"] * 5 and shown[8] == f"unavailable: {figure.reason}"
    assert 'class="failed"' in measurement


def test_runs_never_measured_get_one_sentence_and_each_set_is_shown_once(lab):
    baseline, measured, unmeasured = lab["baseline"], lab["measured"], lab["unmeasured"]
    # The baseline is both the reference and a chosen run; the measured run's set includes it.
    document, sections = report_of(lab, [baseline, measured, unmeasured], reference_id=baseline)
    assert [entry.run_ids for entry in sections.measured] == [[baseline], lab["pair"]]
    assert document.count(f'<h3 id="runtimes-{baseline}">') == 1 and document.count(f'<h3 id="runtimes-{baseline}-{measured}">') == 1
    sentence = section(document, '<p class="note unmeasured">', ("</p>",))
    assert f"No saved runtime measurement for run #{unmeasured}:" in sentence
    assert f"python -m core runtimes --run {unmeasured}" in sentence and "Deploy tab" in sentence
    assert f"#{baseline}" not in sentence and f"#{measured}" not in sentence
    # Only unmeasured runs: no table, no chart, just the sentence.
    alone, sections = report_of(lab, [unmeasured], reference_id=unmeasured)
    assert sections.measured == [] and sections.unmeasured == [unmeasured]
    assert '<table class="runtimes">' not in alone and 'id="runtimes-' not in alone
    assert f"No saved runtime measurement for run #{unmeasured}:" in alone


def test_a_run_timed_in_another_runs_set_is_not_called_unmeasured(lab, monkeypatch):
    import core.report.html

    baseline, measured = lab["baseline"], lab["measured"]
    saved = core.report.html.cached_runtime_report
    monkeypatch.setattr(core.report.html, "cached_runtime_report", lambda workspace, run_ids: None if run_ids == [baseline] else saved(workspace, run_ids))
    document, sections = report_of(lab, [baseline, measured], reference_id=baseline)  # the baseline alone was never measured now
    assert [entry.run_ids for entry in sections.measured] == [lab["pair"]] and sections.unmeasured == []
    assert '<p class="note unmeasured">' not in document  # its fp32 model is in the pair's table
    assert f'<h3 id="runtimes-{baseline}-{measured}">' in document


def test_a_run_whose_set_cannot_be_named_gets_its_line_and_the_report_builds(lab):
    workspace, baseline = lab["workspace"], lab["baseline"]
    # A quantize run whose checkpoint is gone: which models it stands for cannot be read.
    broken = history.record_run(workspace.history_db, "quantize", "digits", "simple_cnn", {"mode": "static"}, {"accuracy_after": 0.9}, parent_id=baseline)
    document, sections = report_of(lab, [lab["measured"], broken])
    assert [run_id for run_id, _ in sections.errors] == [broken] and broken not in sections.unmeasured
    line = section(document, '<p class="failed runtimes-error">', ("</p>",))
    assert f"Runtimes of run #{broken} cannot be looked up: " in line and html.escape(sections.errors[0][1]) in line
    assert f'<h3 id="runtimes-{baseline}-{lab["measured"]}">' in document  # the other run's measurement is still shown
    assert document.rstrip().endswith("</html>")


def test_building_the_section_never_measures(lab, monkeypatch):
    import core.deploy.runtimes

    def refuse(*args, **kwargs):
        raise AssertionError("the report measured runtimes; it must only read saved measurements")

    monkeypatch.setattr(core.deploy.runtimes, "deploy_models", refuse)  # the first step of any measurement
    monkeypatch.setattr(core.deploy.runtimes, "median_call_ms", refuse)
    document, sections = report_of(lab, [lab["measured"], lab["unmeasured"]])
    assert len(sections.measured) == 2 and all(entry.report.from_cache for entry in sections.measured)
    assert "Deployment runtimes" in document


def test_the_report_with_runtimes_fetches_nothing_from_the_network(lab):
    document, _ = report_of(lab, [lab["measured"], lab["unmeasured"]])
    assert 'id="runtimes-' in document
    assert not re.search(r"<script[^>]*\bsrc\s*=", document, re.IGNORECASE)
    assert not re.search(r"<img[^>]*\bsrc\s*=\s*[\"']?(https?:|//)", document, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:|//)", document, re.IGNORECASE)
    assert not re.search(r"<(iframe|object|embed|source|video|audio)[^>]*\b(src|data)\s*=\s*[\"']?(https?:|//)", document, re.IGNORECASE)
    assert document.rstrip().endswith("</html>")


def test_the_cli_report_includes_the_section(lab, tmp_path):
    workspace, baseline, measured, unmeasured = lab["workspace"], lab["baseline"], lab["measured"], lab["unmeasured"]
    out = tmp_path / "report.html"
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(io.StringIO()):
        code = main(["report", "--workspace", str(workspace.root), "--runs", f"{measured},{unmeasured}", "--reference", str(baseline), "--out", str(out)])
    assert code == 0 and json.loads(output.getvalue().strip().splitlines()[-1])["out"] == str(out.resolve())
    written = out.read_text()
    assert '<h2 id="deployment-runtimes">Deployment runtimes</h2>' in written
    assert f'id="runtimes-{baseline}-{measured}-batch-256"' in written and f'id="runtimes-{baseline}-{measured}-batch-1"' in written
    assert f"python -m core runtimes --run {unmeasured}" in written
    # What the page's download builds with the same inputs (see the pages/compare.py report_html change).
    runs = [summarize(run) for run in history.list_runs(workspace.history_db, run_ids=[measured, unmeasured])]
    reference = summary(workspace, baseline)
    page_document = build_report(runs, reference, examples=example_sections(workspace, runs, reference), runtimes=runtime_sections(workspace, runs, reference))

    def without_timestamp(document: str) -> str:
        return re.sub(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d", "Generated", document)

    assert without_timestamp(written) == without_timestamp(page_document)

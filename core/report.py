"""Exports for presenting: the self-contained HTML report and the CSV of the run table.

The report embeds plotly.js once (the offline bundle shipped inside the plotly package) and every
chart after it reuses that copy, so the single file opens in any browser with no network.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json

import plotly.graph_objects as go

from core.charts.compare import format_bytes, latency_accuracy_figure, lineage_tree_figure, pipeline_waterfall_figure, size_accuracy_figure
from core.compare.lineage import lineage_nodes
from core.compare.runs import TABLE_COLUMNS, ComparisonRow, RunSummary, comparison_table, table_records, waterfall_steps

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; font-size: 17px; }
h1 { font-size: 2rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid #0072B2; padding-bottom: .3rem; }
table { border-collapse: collapse; width: 100%; font-size: 15px; } th, td { border: 1px solid #ccc; padding: .35rem .5rem; text-align: right; }
th { background: #f0f4f8; } td.text, th.text { text-align: left; } tr.reference { background: #fff7e0; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; } .card { border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1.2rem; min-width: 10rem; }
.card .value { font-size: 1.6rem; font-weight: 600; } .card .name { color: #555; }
pre { background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: 13px; } .note { color: #555; }
"""


def runs_csv(rows: list[ComparisonRow]) -> str:
    """The run table as CSV: one row per run, columns as on the page."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TABLE_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in table_records(rows):
        writer.writerow({key: "" if value is None else value for key, value in record.items()})
    return buffer.getvalue()


def report_figures(runs: list[RunSummary], reference: RunSummary) -> list[go.Figure]:
    """The report's charts, in order: size and latency against accuracy, each pipeline's waterfall, lineage."""
    shown = _with_reference(runs, reference)
    figures = [size_accuracy_figure(shown, reference.run_id), latency_accuracy_figure(shown, reference.run_id)]
    for run in runs:
        steps = waterfall_steps(run)
        if steps:
            figures.append(pipeline_waterfall_figure(steps, title=f"Pipeline {run.label}: size after each step"))
    figures.append(lineage_tree_figure(lineage_nodes(shown), reference.run_id))
    return figures


def build_report(runs: list[RunSummary], reference: RunSummary, title: str = "Model Efficiency Lab report", generated_at: dt.datetime | None = None) -> str:
    """One HTML document: the baseline, the chosen runs side by side, the charts and every run's parameters."""
    generated_at = generated_at or dt.datetime.now()
    rows = comparison_table(_with_reference(runs, reference), reference)
    figures = report_figures(runs, reference)
    chart_html = [figure.to_html(full_html=False, include_plotlyjs=(index == 0), config=PLOTLY_CONFIG, div_id=f"chart-{index}") for index, figure in enumerate(figures)]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Generated {generated_at:%Y-%m-%d %H:%M} · {len(runs)} run(s) compared with baseline #{reference.run_id} · self-contained: opens offline in any browser.</p>',
        "<h2>Baseline</h2>",
        _baseline_cards(reference),
        "<h2>Runs side by side</h2>",
        '<p class="note">Size is each run\'s smallest honest artifact (bytes of a real file or encoding, named in "size measure"); '
        "compression and speedup are relative to the baseline; a speedup is shown only when the timings are like for like.</p>",
        _table_html(rows, reference.run_id),
        "<h2>Charts</h2>",
        *[f'<div class="chart">{chart}</div>' for chart in chart_html],
        "<h2>Parameters used</h2>",
        *[_parameters_html(run) for run in _with_reference(runs, reference)],
        "</body></html>",
    ]
    return "\n".join(parts)


def _with_reference(runs: list[RunSummary], reference: RunSummary) -> list[RunSummary]:
    return runs if any(run.run_id == reference.run_id for run in runs) else [reference, *runs]


def _baseline_cards(reference: RunSummary) -> str:
    cards = [
        ("run", f"#{reference.run_id} {reference.technique}"),
        ("model", f"{reference.model} on {reference.dataset}"),
        ("accuracy", "—" if reference.accuracy is None else f"{100 * reference.accuracy:.2f}%"),
        ("size (fp32)", format_bytes(reference.dense_size_bytes or reference.size_bytes)),
        ("parameters", "—" if reference.params is None else f"{reference.params:,}"),
        ("MACs per image", "—" if reference.macs is None else f"{reference.macs / 1e6:.2f} M"),
        ("latency", "—" if reference.latency_ms is None else f"{reference.latency_ms:.3g} ms (batch {reference.latency_batch_size}, {reference.latency_threads} threads)"),
    ]
    return '<div class="cards">' + "".join(f'<div class="card"><div class="name">{html.escape(name)}</div><div class="value">{html.escape(value)}</div></div>' for name, value in cards) + "</div>"


REPORT_COLUMNS = (
    ("run", "text"), ("technique", "text"), ("model", "text"), ("accuracy", ""), ("Δ accuracy (points)", ""), ("size", ""), ("size measure", "text"),
    ("compression", ""), ("latency (ms)", ""), ("speedup", ""), ("params (nonzero)", ""), ("MACs", ""),
)


def _table_html(rows: list[ComparisonRow], reference_id: int) -> str:
    head = "".join(f'<th class="{kind}">{html.escape(name)}</th>' for name, kind in REPORT_COLUMNS)
    body = []
    for row in rows:
        run = row.run
        cells = [
            f"#{run.run_id}" + (" (baseline)" if run.run_id == reference_id else "") + (" 📌" if run.pinned else ""),
            run.technique,
            run.model,
            "—" if run.accuracy is None else f"{100 * run.accuracy:.2f}%",
            "—" if row.accuracy_change_points is None else f"{row.accuracy_change_points:+.2f}",
            format_bytes(run.size_bytes),
            run.size_measure,
            "—" if row.compression_ratio is None else f"{row.compression_ratio:.1f}×",
            "—" if run.latency_ms is None else f"{run.latency_ms:.3g} (batch {run.latency_batch_size})",
            "—" if row.speedup is None else f"{row.speedup:.2f}× ({row.speedup_basis})",
            "—" if run.params is None else f"{run.params:,}" + (f" ({run.nonzero_params:,})" if run.nonzero_params is not None else ""),
            "—" if run.macs is None else f"{run.macs / 1e6:.2f} M",
        ]
        css = ' class="reference"' if run.run_id == reference_id else ""
        body.append(f"<tr{css}>" + "".join(f'<td class="{kind}">{html.escape(cell)}</td>' for cell, (_, kind) in zip(cells, REPORT_COLUMNS)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _parameters_html(run: RunSummary) -> str:
    text = json.dumps(run.run_params, indent=2, sort_keys=True, default=str)
    return f"<h3>{html.escape(run.label)} · {html.escape(run.model)} on {html.escape(run.dataset)} · {html.escape(run.created)}</h3><pre>{html.escape(text)}</pre>"

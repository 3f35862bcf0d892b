"""Exports for presenting: the self-contained HTML report and the CSV of the run table.

The report embeds plotly.js once (the offline bundle shipped inside the plotly package) and every
chart after it reuses that copy, so the single file opens in any browser with no network. Test
images (the flipped predictions, the exemplars) are inline PNG data URIs for the same reason.

build_report is pure: the per-example comparisons it shows are computed first by
example_sections (which loads models), and the deployment runtimes by runtime_sections (which only
reads saved measurements, never times anything), so the page and `python -m core report` share them.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
from dataclasses import dataclass, field

import plotly.graph_objects as go

from core.charts.compare import format_bytes, latency_accuracy_figure, lineage_tree_figure, pipeline_waterfall_figure, size_accuracy_figure
from core.charts.deploy import runtime_latency_figure
from core.charts.diff import class_change_figure, layer_error_figure
from core.compare.lineage import lineage_nodes
from core.compare.runs import TABLE_COLUMNS, ComparisonRow, comparison_table, table_records, waterfall_steps
from core.contract.run_summary import RunSummary
from core.deploy.runtimes import RuntimeReport, baseline_figure, cached_runtime_report, default_runs, table_rows
from core.diff.exemplars import ExemplarReport, exemplars_for_baseline
from core.diff.gallery import DEFAULT_GALLERY_SIZE, exemplar_caption, flipped_caption, image_data_uri
from core.diff.runs import RunDiff, diff_runs
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.measures.latency import BATCH_SIZES, EAGER
from core.foundation.workspace import Workspace

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; font-size: 17px; }
h1 { font-size: 2rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid #0072B2; padding-bottom: .3rem; }
table { border-collapse: collapse; width: 100%; font-size: 15px; } th, td { border: 1px solid #ccc; padding: .35rem .5rem; text-align: right; }
th { background: #f0f4f8; } td.text, th.text { text-align: left; } tr.reference { background: #fff7e0; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; } .card { border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1.2rem; min-width: 10rem; }
.card .value { font-size: 1.6rem; font-weight: 600; } .card .name { color: #555; }
pre { background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: 13px; } .note { color: #555; }
table.agreement { width: auto; } .gallery { display: flex; flex-wrap: wrap; gap: .6rem; }
.gallery figure { margin: 0; width: 10rem; font-size: 12px; color: #444; } .gallery img { width: 96px; image-rendering: pixelated; display: block; }
.failed { color: #9a3412; }
"""
REPORT_GALLERY_SIZE = DEFAULT_GALLERY_SIZE  # images per gallery: enough to see a pattern, small enough to keep the file light


@dataclass
class ReportDiff:
    """One chosen run compared with the report's reference, or the one line saying why it cannot be."""

    run_id: int
    reference_id: int
    comparison: RunDiff | None
    error: str = ""


@dataclass
class ExampleSections:
    """What the report's example-by-example and layer-by-layer sections show."""

    diffs: list[ReportDiff]
    exemplars: ExemplarReport | None  # of the reference; None when it has no descendants or they failed
    exemplars_error: str = ""


def example_sections(workspace: Workspace, runs: list[RunSummary], reference: RunSummary) -> ExampleSections:
    """Each chosen run (not the reference) against the reference, and the reference's exemplars.

    Against the reference rather than the parent: the report's table gives every run's accuracy
    change against the reference, and a stakeholder reads these sections as the same comparison,
    image by image. Predictions are cached in the workspace, so a second report is quick."""
    diffs = []
    for run in runs:
        if run.run_id == reference.run_id:
            continue
        try:
            diffs.append(ReportDiff(run.run_id, reference.run_id, diff_runs(workspace, run.run_id, reference.run_id)))
        except UserError as error:  # e.g. a dynamic int8 run without predictions, or another test set
            diffs.append(ReportDiff(run.run_id, reference.run_id, None, str(error)))
    exemplars, exemplars_error = None, ""
    if history.descendants(workspace.history_db, reference.run_id):
        try:
            exemplars = exemplars_for_baseline(workspace, reference.run_id)
        except UserError as error:
            exemplars_error = str(error)
    return ExampleSections(diffs, exemplars, exemplars_error)


@dataclass
class RuntimeMeasurement:
    """One saved runtime measurement: the runs measured together (default_runs of each report run
    in `for_runs`) and what was measured."""

    run_ids: list[int]
    for_runs: list[int]
    report: RuntimeReport


@dataclass
class RuntimeSections:
    """What the report's deployment runtimes section shows."""

    measured: list[RuntimeMeasurement]  # one per distinct default_runs list, in report order
    unmeasured: list[int]  # report runs with no saved measurement of theirs, and in none shown
    errors: list[tuple[int, str]] = field(default_factory=list)  # report runs whose default set cannot be named


def runtime_sections(workspace: Workspace, runs: list[RunSummary], reference: RunSummary) -> RuntimeSections:
    """The saved runtime measurement of each report run's default set (the run and its source, as
    the Deploy tab and `python -m core runtimes --run N` measure it), each distinct set once.

    Reads only what was saved (cached_runtime_report): measuring takes a minute, and a report is
    built in seconds. A run with no measurement of its own whose model is in one shown (a baseline
    beside the run it was pruned into) is not listed as unmeasured."""
    measured: dict[tuple[int, ...], RuntimeMeasurement] = {}
    missing: list[int] = []
    errors: list[tuple[int, str]] = []
    for run in _with_reference(runs, reference):
        try:
            run_ids = default_runs(workspace, run.run_id)
        except UserError as error:
            errors.append((run.run_id, str(error)))
            continue
        key = tuple(run_ids)
        if key in measured:
            if run.run_id not in measured[key].for_runs:
                measured[key].for_runs.append(run.run_id)
            continue
        report = cached_runtime_report(workspace, run_ids)
        if report is None:
            missing.append(run.run_id)
        else:
            measured[key] = RuntimeMeasurement(list(run_ids), [run.run_id], report)
    covered = {run_id for entry in measured.values() for run_id in (*entry.report.run_ids, *(f.run_id for f in entry.report.figures))}
    unmeasured = list(dict.fromkeys(run_id for run_id in missing if run_id not in covered))
    return RuntimeSections(list(measured.values()), unmeasured, errors)


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


def build_report(
    runs: list[RunSummary],
    reference: RunSummary,
    title: str = "Model Efficiency Lab report",
    generated_at: dt.datetime | None = None,
    examples: ExampleSections | None = None,
    runtimes: RuntimeSections | None = None,
) -> str:
    """One HTML document: the baseline, the chosen runs side by side, the charts, what changed
    example by example and layer by layer (when `examples` is given), the deployment runtimes
    (when `runtimes` is given) and every run's parameters."""
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
        *(_examples_html(examples) if examples is not None else []),
        *(_runtimes_html(runtimes) if runtimes is not None else []),
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
        ("architecture", f"{reference.architecture_label} on {reference.dataset}"),
        ("accuracy", "—" if reference.accuracy is None else f"{100 * reference.accuracy:.2f}%"),
        ("size (fp32)", format_bytes(reference.dense_size_bytes or reference.size_bytes)),
        ("parameters", "—" if reference.params is None else f"{reference.params:,}"),
        ("MACs per image", "—" if reference.macs is None else f"{reference.macs / 1e6:.2f} M"),
        ("latency", "—" if reference.latency_ms is None else f"{reference.latency_ms:.3g} ms (batch {reference.latency_batch_size}, {reference.latency_threads} threads)"),
    ]
    brought = reference.run_params.get("brought_weights_sha256")
    if brought:  # the user's own model: exactly which file was compressed
        cards.insert(1, ("from your file", f"{reference.run_params.get('brought_weights_name', '?')} · SHA-256 {brought}"))
    return '<div class="cards">' + "".join(f'<div class="card"><div class="name">{html.escape(name)}</div><div class="value">{html.escape(value)}</div></div>' for name, value in cards) + "</div>"


REPORT_COLUMNS = (
    ("run", "text"),
    ("technique", "text"),
    ("architecture", "text"),  # the registry name and its group: "mobilenet_v2_x0_5 · torchvision"
    ("accuracy", ""),
    ("Δ accuracy (points)", ""),
    ("size", ""),
    ("size measure", "text"),
    ("compression", ""),
    ("latency (ms)", ""),
    ("speedup", ""),
    ("params (nonzero)", ""),
    ("MACs", ""),
)


def _table_html(rows: list[ComparisonRow], reference_id: int) -> str:
    head = "".join(f'<th class="{kind}">{html.escape(name)}</th>' for name, kind in REPORT_COLUMNS)
    body = []
    for row in rows:
        run = row.run
        cells = [
            f"#{run.run_id}" + (" (baseline)" if run.run_id == reference_id else "") + (" 📌" if run.pinned else ""),
            run.technique,
            run.architecture_label,
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
    return f"<h3>{html.escape(run.label)} · {html.escape(run.architecture_label)} on {html.escape(run.dataset)} · {html.escape(run.created)}</h3><pre>{html.escape(text)}</pre>"


# --------------------------------------------------------------- example by example, layer by layer


def _figure_html(figure: go.Figure, div_id: str) -> str:
    """A chart after the first: it reuses the plotly.js the first chart embedded."""
    return f'<div class="chart">{figure.to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG, div_id=div_id)}</div>'


def _examples_html(examples: ExampleSections) -> list[str]:
    parts = [
        "<h2>What changed, example by example</h2>",
        '<p class="note">Each run against the reference, on every test image: the same comparison as the table\'s accuracy change, '
        "but image by image. Two models with equal accuracy can still disagree on many images; the flipped images, worst first, "
        "are the ones whose prediction changed, the biggest loss of confidence in the true class first.</p>",
    ]
    if not examples.diffs:
        parts.append('<p class="note">No run besides the reference was chosen.</p>')
    parts += [_run_diff_html(entry) for entry in examples.diffs]
    if examples.exemplars is not None or examples.exemplars_error:
        parts.append(_exemplars_html(examples.exemplars, examples.exemplars_error))
    parts += [
        "<h2>Where the error enters</h2>",
        '<p class="note">Each layer\'s output error against the reference on a fixed batch of test images, in network order '
        "(SQNR in dB: higher is better). A sharp drop marks the layer where compression costs most.</p>",
    ]
    parts += [_layer_html(entry) for entry in examples.diffs]
    return parts


def _run_diff_html(entry: ReportDiff) -> str:
    heading = f'<h3 id="diff-{entry.run_id}">Run #{entry.run_id} against reference #{entry.reference_id}</h3>'
    if entry.comparison is None:
        return heading + f'<p class="failed">{html.escape(entry.error)}</p>'
    diff = entry.comparison.predictions
    parts = [heading, f"<p><strong>{html.escape(diff.sentence())}</strong></p>", _agreement_table_html(diff), _figure_html(class_change_figure(diff), f"diff-{entry.run_id}-classes")]
    shown = diff.flipped[:REPORT_GALLERY_SIZE]
    parts.append(f'<p class="note">Flipped predictions, worst first: {len(diff.flipped):,} images; the first {len(shown)} shown.</p>')
    if shown:
        dataset = entry.comparison.dataset
        parts.append(_gallery_html([(image.index, flipped_caption(image, diff.class_names, diff.label_a, diff.label_b)) for image in shown], dataset))
    return "\n".join(parts)


def _agreement_table_html(diff) -> str:
    """The 2x2 table: who gets which test image right, as counts and shares."""
    total = max(1, diff.test_images)

    def cell(count: int) -> str:
        return f"<td>{count:,} ({count / total:.1%})</td>"

    a, b = html.escape(diff.label_a), html.escape(diff.label_b)
    return (
        f'<table class="agreement"><thead><tr><th class="text">{diff.test_images:,} test images</th><th>{b} right</th><th>{b} wrong</th></tr></thead><tbody>'
        f'<tr><th class="text">{a} right</th>{cell(diff.both_right)}{cell(diff.only_a_right)}</tr>'
        f'<tr><th class="text">{a} wrong</th>{cell(diff.only_b_right)}{cell(diff.both_wrong)}</tr></tbody></table>'
        f'<p class="note">Top-1 agreement {diff.agreement:.1%} · accuracy {a} {diff.accuracy_a:.1%} · {b} {diff.accuracy_b:.1%}</p>'
    )


def _gallery_html(entries: list[tuple[int, str]], dataset) -> str:
    figures = [f'<figure><img src="{image_data_uri(dataset, index)}" alt="test image {index}"><figcaption>{html.escape(caption)}</figcaption></figure>' for index, caption in entries]
    return f'<div class="gallery">{"".join(figures)}</div>'


def _exemplars_html(report: ExemplarReport | None, error: str) -> str:
    if report is None:
        return f'<h3>Compression-identified exemplars</h3><p class="failed">{html.escape(error)}</p>'
    parts = [f"<h3>Compression-identified exemplars of run #{report.baseline_run_id}</h3>", f"<p><strong>{html.escape(report.sentence())}</strong></p>"]
    shown = report.exemplars[:REPORT_GALLERY_SIZE]
    if shown:
        parts.append(f'<p class="note">The first {len(shown)} of them, most failing descendants first.</p>')
        parts.append(_gallery_html([(exemplar.index, exemplar_caption(exemplar, report.class_names)) for exemplar in shown], report.dataset))
    return "\n".join(parts)


def _layer_html(entry: ReportDiff) -> str:
    heading = f"<h3>Run #{entry.run_id} against reference #{entry.reference_id}, layer by layer</h3>"
    if entry.comparison is None:
        return heading + f'<p class="failed">{html.escape(entry.error)}</p>'
    if entry.comparison.layers is None:
        return heading + f'<p class="note">{html.escape(entry.comparison.layers_reason)}</p>'
    report = entry.comparison.layers
    return heading + _figure_html(layer_error_figure(report, "sqnr_db"), f"layers-{entry.run_id}") + f'<p class="note">{html.escape(report.note)}</p>'


# ------------------------------------------------------------------------------ deployment runtimes


RUNTIME_COLUMNS = (
    ("model", "text"),
    ("runtime", "text"),
    ("precision", "text"),
    ("latency (ms)", ""),
    ("per image (ms)", ""),
    ("speed-up vs fp32 torch eager", ""),
    ("int8 speed-up, same runtime", ""),
    ("accuracy", ""),
    ("status", "text"),
)


def _runtimes_html(sections: RuntimeSections) -> list[str]:
    parts = [
        '<h2 id="deployment-runtimes">Deployment runtimes</h2>',
        '<p class="note">The same models in the runtimes people deploy with (torch eager, torch.compile, ONNX Runtime, OpenVINO), fp32 and int8, '
        "one thread count for all, interleaved rounds (each runner keeps its best round's median) and each runner's accuracy on the whole test set. "
        "Speed-ups are per image, above 1 when faster: against fp32 torch eager of the first model, and int8 against fp32 in the same runtime. "
        "These are saved measurements; building a report never times anything.</p>",
    ]
    for entry in sections.measured:
        parts.append(_runtime_measurement_html(entry))
    for run_id, error in sections.errors:
        parts.append(f'<p class="failed runtimes-error">Runtimes of run #{run_id} cannot be looked up: {html.escape(error)}</p>')
    if sections.unmeasured:
        names = _join([f"#{run_id}" for run_id in sections.unmeasured])
        commands = _join([f"<code>python -m core runtimes --run {run_id}</code>" for run_id in sections.unmeasured])
        parts.append(
            f'<p class="note unmeasured">No saved runtime measurement for run{"s" if len(sections.unmeasured) > 1 else ""} {names}: '
            f"measure with {commands}, or on the Compare page's Deploy tab, then build the report again.</p>"
        )
    elif not sections.measured and not sections.errors:
        parts.append('<p class="note">No run to show.</p>')
    return parts


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _runtime_measurement_html(entry: RuntimeMeasurement) -> str:
    report = entry.report
    slug = "-".join(str(run_id) for run_id in entry.run_ids)
    runs = _join([f"#{run_id}" for run_id in entry.for_runs])
    parts = [
        f'<h3 id="runtimes-{slug}">{html.escape(_join(report.models) or "no models")} · the default set for run{"s" if len(entry.for_runs) > 1 else ""} {runs}</h3>',
        f'<p class="note">{html.escape(_runtime_caption(report))}</p>',
    ]
    rows = table_rows(report)
    sizes = sorted({row["batch_size"] for row in rows} | set(BATCH_SIZES), reverse=True)  # the throughput batch first
    for size in sizes:
        shown = [row for row in rows if row["batch_size"] == size]
        if not shown:
            continue
        reference = baseline_figure(report, size)
        against = "" if reference is None else f" · speed-ups against fp32 {EAGER} of {reference.model}"
        parts.append(f"<h4>Batch {size}{html.escape(against)}</h4>")
        parts.append(_figure_html(runtime_latency_figure(report, size), f"runtimes-{slug}-batch-{size}"))
        parts.append(_runtime_table_html(shown))
    return "\n".join(parts)


def _runtime_caption(report: RuntimeReport) -> str:
    machine = report.machine
    features = [name for name, key in (("VNNI", "vnni"), ("AVX-512", "avx512"), ("AMX", "amx")) if machine.get(key)]
    cpu = str(machine.get("cpu_model") or "unknown CPU")
    if machine.get("cores"):
        cpu += f", {machine['cores']} cores"
    if features:
        cpu += ", " + "/".join(features)
    versions = ", ".join(f"{name} {version}" for name, version in report.versions.items())
    sources = "; ".join(f"int8 of {model}: {source}" for model, source in report.int8_sources.items())
    return (
        f"{report.threads} thread{'s' if report.threads != 1 else ''} for every runtime · CPU: {cpu} · measured {report.measured_at} · "
        f"{report.rounds} interleaved round{'s' if report.rounds != 1 else ''} · accuracy on {report.test_images:,} test images · {versions}" + (f" · {sources}" if sources else "")
    )


def _runtime_table_html(rows: list[dict]) -> str:
    head = "".join(f'<th class="{kind}">{html.escape(name)}</th>' for name, kind in RUNTIME_COLUMNS)
    body = []
    for row in rows:
        cells = [
            row["model"],
            row["runtime"],
            row["precision"],
            "—" if row["latency_ms"] is None else f"{row['latency_ms']:.3g}",
            "—" if row["per_image_ms"] is None else f"{row['per_image_ms']:.3g}",
            "—" if row["speedup_vs_fp32_eager"] is None else f"{row['speedup_vs_fp32_eager']:.2f}×",
            "—" if row["int8_speedup_same_runtime"] is None else f"{row['int8_speedup_same_runtime']:.2f}×",
            "—" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f}%",
            row["status"],
        ]
        css = ' class="failed"' if row["status"] != "available" else ""
        body.append(f"<tr{css}>" + "".join(f'<td class="{kind}">{html.escape(cell)}</td>' for cell, (_, kind) in zip(cells, RUNTIME_COLUMNS)) + "</tr>")
    return f'<table class="runtimes"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'

"""Compare and present: Pareto front, run summaries and ratios, charts, the HTML report and CSV,
the model zip (round trip, refusals, never unpickling), PNG availability, the CLI and the pipeline."""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch

from core.charts import png
from core.charts.compare import latency_accuracy_figure, lineage_sunburst_figure, lineage_tree_figure, pipeline_waterfall_figure, size_accuracy_figure
from core.cli.main import main
from core.compare.lineage import chain, lineage_nodes
from core.compare.runs import WaterfallStep, compare_to_reference, comparison_table, waterfall_steps
from core.contract import artifact
from core.contract.artifact import ModelPackage, QuantizedWeight, evaluate_package, load_model_zip, read_model_zip, write_model_zip
from core.contract.context import RunContext
from core.contract.record import record
from core.contract.run_models import package_for_run
from core.contract.run_summary import summarize
from core.contract.source import ModelSource
from core.distillation import DistillConfig
from core.foundation import history
from core.foundation.errors import UserError
from core.foundation.measures.latency import THROUGHPUT_BATCH_SIZE
from core.foundation.measures.pareto import pareto_front
from core.pipeline import build_pipeline_config, pipeline_options, run_pipeline
from core.pruning import PruneConfig, prune
from core.quantization.config import StaticInt8Config
from core.report.html import build_report, runs_csv

# ----------------------------------------------------------------------------------- Pareto


@pytest.mark.parametrize(
    "costs, accuracies, front",
    [
        ([1, 2, 3], [0.5, 0.6, 0.7], [0, 1, 2]),  # each costlier point is more accurate: all on the front
        ([1, 2, 3], [0.7, 0.6, 0.5], [0]),  # the cheapest is also the best
        ([3, 1, 2, 4, 5], [0.9, 0.5, 0.8, 0.85, 0.95], [1, 2, 0, 4]),  # (4, 0.85) is beaten by (3, 0.9)
        ([1, 1, 2], [0.5, 0.6, 0.6], [1]),  # same cost: only the more accurate; (2, 0.6) is dominated
        ([1, 1], [0.6, 0.6], [0, 1]),  # exact twins both stay
        ([2, None, 1, 3], [0.8, 0.99, None, 0.7], [0]),  # missing values are left out
        ([], [], []),
    ],
)
def test_pareto_front_on_hand_made_points(costs, accuracies, front):
    assert pareto_front(costs, accuracies) == front


def test_pareto_front_is_never_dominated_and_dominates_the_rest():
    generator = torch.Generator().manual_seed(0)
    costs = torch.rand(200, generator=generator).tolist()
    accuracies = torch.rand(200, generator=generator).tolist()
    front = set(pareto_front(costs, accuracies))
    for i in range(200):
        dominated = any(costs[j] <= costs[i] and accuracies[j] >= accuracies[i] and (costs[j], accuracies[j]) != (costs[i], accuracies[i]) for j in range(200))
        assert (i in front) == (not dominated)


# ---------------------------------------------------------------------- summaries and ratios


def make_history(db: Path) -> dict[str, int]:
    """baseline -> distilled -> pruned -> quantized -> pipeline, plus a standalone prune."""
    ids = {}
    ids["train"] = history.record_run(
        db,
        "train",
        "digits",
        "simple_cnn",
        {"epochs": 3, "dataset": {"name": "digits"}},
        {"accuracy": 0.98, "size_bytes": 160_000, "params": 40_000, "macs": 260_000, "latency_ms": 2.0, "latency_batch_size": 32, "latency_device": "cpu", "latency_threads": 1},
    )
    ids["distill"] = history.record_run(
        db,
        "distill",
        "digits",
        "simple_cnn_narrow",
        {"temperature": 4},
        {"accuracy": 0.96, "size_bytes": 50_000, "latency_ms": 1.0, "latency_batch_size": 32, "latency_device": "cpu", "latency_threads": 1},
        parent_id=ids["train"],
    )
    ids["prune"] = history.record_run(
        db,
        "prune",
        "digits",
        "simple_cnn_narrow",
        {"amount": 0.9},
        {
            "accuracy": 0.95,
            "accuracy_after": 0.95,
            "accuracy_before": 0.96,
            "size_bytes_dense": 50_000,
            "size_bytes_sparse": 9_000,
            "size_bytes_gzip": 11_000,
            "latency_ms_before": 4.0,
            "latency_ms_after": 4.0,
            "latency_batch_size": 256,
            "latency_device": "cpu",
            "latency_threads": 1,
        },
        parent_id=ids["distill"],
    )
    ids["quantize"] = history.record_run(
        db,
        "quantize",
        "digits",
        "simple_cnn_narrow",
        {"mode": "static"},
        {
            "accuracy_before": 0.95,
            "accuracy_after": 0.94,
            "artifact_bytes_before": 50_000,
            "artifact_bytes_after": 14_000,
            "size_bytes_after": 12_500,
            "latency_ms_fp32": 3.0,
            "latency_ms_quantized": 1.5,
        },
        parent_id=ids["prune"],
    )
    ids["pipeline"] = history.record_run(
        db,
        "pipeline",
        "digits",
        "simple_cnn_narrow",
        {"steps": ["distill", "prune", "quantize"]},
        {
            "accuracy": 0.94,
            "accuracy_before": 0.98,
            "size_bytes_compressed": 6_000,
            "size_bytes_dense": 50_000,
            "latency_ms_before": 8.0,
            "latency_ms_after": 2.0,
            "latency_batch_size": 256,
            "before_run_id": ids["train"],
            "steps": [
                {"step": "baseline", "size_bytes": 160_000, "accuracy": 0.98},
                {"step": "prune", "size_bytes": 9_000, "accuracy": 0.95},
                {"step": "encode", "size_bytes": 6_000, "accuracy": 0.94, "size_measure": "model zip (lzma)"},
            ],
        },
        parent_id=ids["quantize"],
    )
    ids["other"] = history.record_run(
        db,
        "prune",
        "digits",
        "simple_cnn",
        {"amount": 0.5},
        {"accuracy_after": 0.97, "accuracy_before": 0.98, "size_bytes_dense": 160_000, "size_bytes_sparse": 90_000, "latency_ms_before": 3.0, "latency_ms_after": 2.0, "latency_batch_size": 256},
        parent_id=ids["train"],
    )
    return ids


@pytest.fixture()
def summaries(tmp_path):
    db = tmp_path / "runs.sqlite"
    ids = make_history(db)
    return ids, {name: summarize(history.get_run(db, run_id)) for name, run_id in ids.items()}


def test_summaries_read_each_technique_s_own_metric_names(summaries):
    _, runs = summaries
    assert (runs["prune"].accuracy, runs["prune"].size_bytes, runs["prune"].size_measure) == (0.95, 9_000, "size_bytes_sparse")
    assert (runs["quantize"].accuracy, runs["quantize"].size_bytes, runs["quantize"].latency_ms) == (0.94, 14_000, 1.5)  # the real file, not the packed estimate
    assert (runs["pipeline"].size_bytes, runs["pipeline"].size_measure) == (6_000, "size_bytes_compressed")
    assert runs["train"].latency_ms_per_image == pytest.approx(2.0 / 32)
    assert [step.name for step in waterfall_steps(runs["pipeline"])] == ["baseline", "prune", "encode"]
    assert waterfall_steps(runs["prune"]) == []


def test_compression_speedup_and_accuracy_change_against_the_baseline(summaries):
    _, runs = summaries
    reference = runs["train"]
    pipeline = compare_to_reference(runs["pipeline"], reference)
    assert pipeline.compression_ratio == pytest.approx(160_000 / 6_000)
    assert pipeline.speedup == pytest.approx(4.0) and "together" in pipeline.speedup_basis  # its own interleaved pair, vs the baseline
    assert pipeline.accuracy_change_points == pytest.approx(-4.0)
    other = compare_to_reference(runs["other"], reference)
    assert other.speedup == pytest.approx(1.5) and other.accuracy_change_points == pytest.approx(-1.0)
    distilled = compare_to_reference(runs["distill"], reference)
    assert distilled.speedup == pytest.approx(2.0) and "separately" in distilled.speedup_basis  # same batch, device, threads
    pruned = compare_to_reference(runs["prune"], reference)
    assert pruned.speedup is None  # measured against the student at another batch size: not like for like
    assert compare_to_reference(reference, reference).compression_ratio == 1.0


def test_lineage_layout_places_parents_at_their_children(summaries):
    ids, runs = summaries
    nodes = {node.run_id: node for node in lineage_nodes(list(runs.values()))}
    assert nodes[ids["train"]].depth == 0 and nodes[ids["pipeline"]].depth == 4
    assert nodes[ids["pipeline"]].parent_id == ids["quantize"]
    assert nodes[ids["train"]].row == pytest.approx((nodes[ids["distill"]].row + nodes[ids["other"]].row) / 2)
    assert [run.run_id for run in chain(list(runs.values()), ids["pipeline"])] == [ids[k] for k in ("train", "distill", "prune", "quantize", "pipeline")]
    partial = lineage_nodes([runs["prune"], runs["quantize"]])  # the parent outside the set: a root here
    assert [(node.run_id, node.parent_id, node.depth) for node in partial] == [(ids["prune"], None, 0), (ids["quantize"], ids["prune"], 1)]


# ------------------------------------------------------------------------------------ charts


def test_size_chart_draws_the_front_the_baseline_and_pinned_runs(summaries, tmp_path):
    ids, runs = summaries
    runs["other"].pinned = True
    figure = size_accuracy_figure(list(runs.values()), ids["train"])
    traces = {trace.name: trace for trace in figure.data}
    front = traces["Pareto front"]
    plotted = [run for run in runs.values() if run.size_bytes is not None and run.accuracy is not None]
    expected = [plotted[i] for i in pareto_front([r.size_bytes for r in plotted], [r.accuracy for r in plotted])]
    assert list(front.x) == [run.size_bytes for run in expected]
    assert f"baseline #{ids['train']}" in traces and list(traces[f"baseline #{ids['train']}"].x) == [160_000]
    assert list(traces["pinned"].x) == [90_000]
    assert figure.layout.xaxis.type == "log"  # 6 KB to 160 KB is a wide range
    assert "amount = 0.9" in " ".join(traces["prune"].hovertext)
    narrow = size_accuracy_figure([runs["train"], runs["other"]], ids["train"])
    assert narrow.layout.xaxis.type != "log"


def test_latency_chart_uses_per_image_latency_and_other_charts_build(summaries):
    ids, runs = summaries
    figure = latency_accuracy_figure(list(runs.values()), ids["train"])
    train_trace = next(trace for trace in figure.data if trace.name == "train")
    assert list(train_trace.x) == [pytest.approx(2.0 / 32)]
    assert all(trace.name != "quantize" for trace in figure.data)  # its batch size was not recorded: not placed
    nodes = lineage_nodes(list(runs.values()))
    tree = lineage_tree_figure(nodes, ids["train"])
    assert sum(len(trace.x) for trace in tree.data[1:]) == len(runs)
    sunburst = lineage_sunburst_figure(nodes)
    assert list(sunburst.data[0].parents).count("") == 1
    waterfall = pipeline_waterfall_figure([WaterfallStep("baseline", 1000, 0.9), WaterfallStep("prune", 300, 0.88), WaterfallStep("encode", 100, None)])
    assert list(waterfall.data[0].y) == [1000, -700, -200]
    assert list(waterfall.data[1].x) == ["baseline", "prune"]  # no accuracy point for the encoding


# ----------------------------------------------------------------------------- report, CSV


def test_report_is_self_contained_and_holds_every_chosen_run(summaries):
    ids, runs = summaries
    chosen = [runs["prune"], runs["pipeline"], runs["other"]]
    document = build_report(chosen, runs["train"])
    assert not re.search(r"<script[^>]*\bsrc\s*=", document, re.IGNORECASE)  # nothing fetched from anywhere
    assert "cdn.plot.ly/plotly" not in document  # no CDN copy of plotly.js either
    assert document.count("plotly.js v") == 1  # the bundle's banner: embedded exactly once
    assert document.count('class="plotly-graph-div"') == 4  # size, latency, the pipeline's waterfall, lineage
    for run in chosen + [runs["train"]]:
        assert f'<td class="text">#{run.run_id}' in document
    assert "amount" in document and "&quot;steps&quot;" in document  # the parameters used
    assert "26.7×" in document  # the pipeline's compression ratio vs the baseline


def test_csv_has_one_row_per_run_with_ratios(summaries):
    ids, runs = summaries
    text = runs_csv(comparison_table(list(runs.values()), runs["train"]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["run_id"]) for row in rows] == [run.run_id for run in runs.values()]
    pipeline = next(row for row in rows if int(row["run_id"]) == ids["pipeline"])
    assert float(pipeline["compression_ratio"]) == pytest.approx(26.67, abs=0.01) and float(pipeline["speedup"]) == 4.0
    assert json.loads(pipeline["params_json"]) == {"steps": ["distill", "prune", "quantize"]}


# --------------------------------------------------------------------------------- model zip


def test_baseline_zip_loads_back_and_reproduces_its_accuracy(digits_baseline, session_workspace):
    run = history.get_run(session_workspace.history_db, digits_baseline.run_id)
    data, sizes = write_model_zip(package_for_run(run, session_workspace))
    assert sizes.zip_bytes == len(data) and sizes.dense_fp32_bytes == digits_baseline.metrics.size_bytes
    model, package = load_model_zip(data, "baseline.zip")
    assert evaluate_package(model, package, digits_baseline.dataset).accuracy == pytest.approx(digits_baseline.evaluation.accuracy, abs=1e-9)
    assert write_model_zip(package)[0] == data  # same model, same bytes


def test_pruned_and_channel_removed_zips_reproduce_accuracy_and_shrink(digits_baseline, session_workspace):
    source = ModelSource.from_baseline(digits_baseline)
    for config in (PruneConfig(method="l1", granularity="unstructured", amount=0.8, scope="global"), PruneConfig(method="ln", granularity="channel", amount=0.5, remove=True)):
        result = prune(source, config, RunContext(session_workspace))
        run_id = record(result, session_workspace)
        run = history.get_run(session_workspace.history_db, run_id)
        data, sizes = write_model_zip(package_for_run(run, session_workspace))
        model, package = load_model_zip(data)
        assert evaluate_package(model, package, digits_baseline.dataset).accuracy == pytest.approx(result.headline.accuracy_after, abs=1e-9)
        assert sizes.zip_bytes < sizes.encoded_bytes < digits_baseline.metrics.size_bytes
        if config.remove:
            assert package.pruned_channels and sum(p.numel() for p in model.parameters()) == result.headline.params_after
        # A run recorded under the contract is summarised straight from its headline.
        summary = summarize(run)
        assert (summary.accuracy, summary.accuracy_before, summary.size_bytes) == (result.headline.accuracy_after, result.headline.accuracy_before, result.headline.size_bytes_after)
        assert summary.size_measure == result.headline.size_measure and summary.before_run_id == digits_baseline.run_id
        assert summary.latency_ms == result.headline.latency_ms_after and summary.latency_ms_single == result.headline.latency_ms_single_after
        assert summary.latency_batch_size == THROUGHPUT_BATCH_SIZE and summary.latency_runtime == result.headline.latency_runtime
        row = compare_to_reference(summary, summarize(history.get_run(session_workspace.history_db, digits_baseline.run_id)))
        assert row.speedup == pytest.approx(result.headline.speedup) and "together" in row.speedup_basis
        assert row.accuracy_change_points == pytest.approx(result.headline.accuracy_change_points)


def test_quantized_weights_round_trip_exactly_through_sparse_encoding():
    codes = torch.zeros(8, 40, dtype=torch.int8)
    codes[::3, ::7] = torch.arange(1, 19, dtype=torch.int8).view(3, 6)
    dense = torch.randn(5, 3)
    package = ModelPackage("simple_cnn", (1, 8, 8), 10, {"b": dense, "z": torch.zeros(100)}, {"w": QuantizedWeight(codes, torch.rand(8) + 0.1)})
    encoded = artifact.encode_tensors(package)
    assert {"w::q_bitmask", "w::q_values", "w::q_shape", "w::q_scale", "b", "z::bitmask"} <= set(encoded)
    floats, quantized = artifact.decode_tensors(encoded)
    assert torch.equal(quantized["w"].codes, codes) and torch.equal(floats["b"], dense) and torch.equal(floats["z"], torch.zeros(100))


def tamper(data: bytes, member: str, change) -> bytes:
    """The zip rebuilt with one member's bytes changed."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info.filename, change(content) if info.filename == member else content)
    return buffer.getvalue()


class Explode:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture()
def good_zip(digits_baseline, session_workspace) -> bytes:
    run = history.get_run(session_workspace.history_db, digits_baseline.run_id)
    return write_model_zip(package_for_run(run, session_workspace))[0]


def test_tampered_weights_or_metadata_are_refused(good_zip):
    flipped = tamper(good_zip, artifact.WEIGHTS_MEMBER, lambda b: b[:-10] + bytes([b[-10] ^ 1]) + b[-9:])
    with pytest.raises(UserError, match="modified after export"):
        read_model_zip(flipped, "flipped.zip")
    boosted = tamper(good_zip, artifact.META_MEMBER, lambda b: b.replace(b'"architecture": "simple_cnn"', b'"architecture": "simple_cnn_wide"'))
    with pytest.raises(UserError, match="modified after export"):
        read_model_zip(boosted, "boosted.zip")


def test_non_safetensors_uploads_are_refused_and_a_pickle_never_runs(good_zip, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Explode(marker))
    with pytest.raises(UserError, match="not a model zip"):
        read_model_zip(payload, "model.pt")
    torch_style = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, torch_style)  # a real PyTorch checkpoint is a zip holding a pickle
    with pytest.raises(UserError, match="holds .*data.pkl.*only model.safetensors and metadata.json"):
        read_model_zip(torch_style.getvalue(), "checkpoint.pth")
    # A pickle in place of the weights, with the checksum recomputed so only the format check is left.
    source = zipfile.ZipFile(io.BytesIO(good_zip))
    metadata = json.loads(source.read(artifact.META_MEMBER))
    metadata["content_sha256"] = artifact.content_digest(payload, metadata)
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w") as target:
        target.writestr(artifact.WEIGHTS_MEMBER, payload)
        target.writestr(artifact.META_MEMBER, json.dumps(metadata))
    with pytest.raises(UserError, match="not a valid safetensors file") as refused:
        read_model_zip(forged.getvalue(), "forged.zip")
    assert "\n" not in str(refused.value)
    assert not marker.exists()
    monkeypatch.setattr(artifact, "MAX_ZIP_BYTES", 1000)
    with pytest.raises(UserError, match="model zips up to"):
        read_model_zip(good_zip, "big.zip")


def test_a_zip_whose_weights_do_not_fit_the_architecture_is_refused(digits_baseline):
    package = ModelPackage("simple_cnn", (1, 8, 8), 10, {"conv1.weight": torch.zeros(3, 1, 5, 5)}, info={"dataset": "digits"})
    with pytest.raises(UserError, match="do not fit simple_cnn"):
        load_model_zip(write_model_zip(package)[0])
    wrong_shape = ModelPackage("simple_cnn", (1, 8, 8), 10, {name: torch.zeros(1) for name in digits_baseline.model.state_dict()})
    with pytest.raises(UserError, match="has shape"):
        load_model_zip(write_model_zip(wrong_shape)[0])


# ------------------------------------------------------------------------------------- PNG


def test_png_export_says_plainly_why_it_is_unavailable(monkeypatch):
    monkeypatch.setattr(png.importlib.util, "find_spec", lambda name: None)
    status = png.png_export_status()
    assert not status.available and "kaleido" in status.reason
    with pytest.raises(UserError, match="kaleido"):
        png.figure_png(pipeline_waterfall_figure([WaterfallStep("baseline", 10, 0.5)]))
    monkeypatch.setattr(png.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(png.shutil, "which", lambda name: None)
    monkeypatch.delenv(png.BROWSER_ENV, raising=False)
    status = png.png_export_status()
    assert not status.available and "Chromium" in status.reason


# ------------------------------------------------------------------------------------ CLI


def run_cli(capsys, *arguments: str) -> tuple[int, dict | None, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 else None), captured.out, captured.err


def test_runs_and_report_commands(tmp_path, capsys):
    ids = make_history(tmp_path / "runs.sqlite")
    code, payload, out, _ = run_cli(capsys, "runs", "--workspace", str(tmp_path))
    assert code == 0 and payload["run_ids"] == list(ids.values()) and "pipeline" in out
    code, payload, _, _ = run_cli(capsys, "runs", "--json", "--workspace", str(tmp_path), "--technique", "prune")
    assert code == 0 and [run["run_id"] for run in payload["runs"]] == [ids["prune"], ids["other"]]
    assert payload["runs"][0]["run_params"] == {"amount": 0.9} and payload["reference_run_id"] == ids["train"]
    out_file = tmp_path / "report.html"
    code, payload, _, _ = run_cli(capsys, "report", "--workspace", str(tmp_path), "--out", str(out_file), "--runs", f"{ids['prune']},{ids['pipeline']}")
    assert code == 0 and payload["run_ids"] == [ids["prune"], ids["pipeline"]] and payload["reference_run_id"] == ids["train"]
    document = out_file.read_text()
    assert f"#{ids['pipeline']}" in document and f"#{ids['other']} " not in document
    code, _, _, error = run_cli(capsys, "report", "--workspace", str(tmp_path), "--out", str(out_file), "--runs", "3,999")
    assert code == 2 and "no run with id 999" in error
    code, _, _, error = run_cli(capsys, "report", "--workspace", str(tmp_path), "--out", str(tmp_path / "report.pdf"))
    assert code == 2 and ".html" in error


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([], "choose the steps"),
        (["--steps", "quantize,prune", "--amount", "0.5", "--mode", "static"], "in the order distill -> prune -> quantize"),
        (["--steps", "prune,compress"], "unknown pipeline step 'compress'"),
        (["--steps", "prune", "--epochs", "3"], "--epochs is the distill step's student budget"),
        (["--steps", "quantize", "--mode", "static", "--bits", "4"], "int8 only"),
        (["--preset", "deep-compression", "--amount", "1.2"], "amount must be in [0, 1)"),
        (["--steps", "quantize", "--mode", "dynamic"], "dynamic int8"),
    ],
)
def test_pipeline_refuses_bad_settings_before_any_work(tmp_path, capsys, arguments, message):
    code, _, _, error = run_cli(capsys, "pipeline", "--workspace", str(tmp_path), *arguments)
    assert code == 2 and message in error.strip().splitlines()[-1]
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained


def _subcommands() -> dict:
    from core.cli.main import build_parser

    return build_parser()._subparsers._group_actions[0].choices


def _flags(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings} - {"-h", "--help"}


def test_pipeline_options_come_from_the_technique_commands():
    commands = _subcommands()
    # --seeds is distill's alone: a pipeline distills one student.
    flags = (_flags(commands["distill"]) | _flags(commands["prune"]) | _flags(commands["quantize"])) - {"--seeds"}
    assert {"--method", "--granularity", "--amount", "--finetune-epochs", "--mode", "--bits", "--teacher", "--temperature", "--from-run", "--qat-epochs", "--observer"} <= flags
    assert flags <= _flags(commands["pipeline"])
    # With only the steps, the mode and the amount (which a pipeline asks for explicitly) given, every step config is its technique's own default.
    config = build_pipeline_config(pipeline_options(None, {"steps": "distill,prune,quantize", "mode": "static", "amount": PruneConfig.amount}), "simple_cnn")
    assert config.distill == DistillConfig(seeds=(0,)) and config.distill.temperature == DistillConfig.temperature
    assert config.prune == PruneConfig() and config.prune.method == "l1" and config.quantize == StaticInt8Config()


def test_a_flag_means_the_same_in_the_pipeline_as_in_its_own_command():
    from core.cli.quantize import config_from_args as quantize_config_from_args
    from core.contract.options import from_options
    from core.pruning.config import parse_layers

    commands = _subcommands()
    prune_flags = ["--method", "ln", "--granularity", "channel", "--amount", "0.3", "--remove", "--finetune-epochs", "2", "--iterative-steps", "2", "--layers", "conv1,conv2"]
    quantize_flags = ["--mode", "simulate", "--bits", "4", "--per-tensor", "--affine", "--activations", "--calibration-size", "64"]
    distill_flags = ["--teacher", "resnet18", "--student", "simple_cnn_narrow", "--temperature", "3", "--alpha", "0.25", "--teacher-epochs", "4", "--epochs", "5"]
    pipeline_args = commands["pipeline"].parse_args(["--steps", "distill,prune,quantize", *prune_flags, *quantize_flags, *distill_flags])
    given = {key: value for key, value in vars(pipeline_args).items() if key not in ("handler", "command", "preset")}
    config = build_pipeline_config(pipeline_options(None, given), "simple_cnn")

    prune_args = commands["prune"].parse_args(prune_flags)
    assert config.prune == from_options(PruneConfig, prune_args, layers=parse_layers(prune_args.layers), seed=prune_args.seed)
    assert config.quantize == quantize_config_from_args(commands["quantize"].parse_args(quantize_flags))
    from core.cli.distill import config_from_args as distill_config_from_args

    assert config.distill == distill_config_from_args(commands["distill"].parse_args(distill_flags), "simple_cnn")
    assert (config.distill.teacher, config.distill.temperature, config.distill.epochs, config.prune.amount, config.quantize.bits) == ("resnet18", 3.0, 5, 0.3, 4)


@pytest.mark.slow
def test_pipeline_cli_records_a_chain_and_its_zip_reproduces_the_accuracy(digits_baseline, session_workspace, capsys):
    code, payload, _, error = run_cli(
        capsys,
        "pipeline",
        "--workspace",
        str(session_workspace.root),
        "--steps",
        "prune,quantize",
        "--method",
        "l1",
        "--granularity",
        "unstructured",
        "--amount",
        "0.8",
        "--scope",
        "global",
        "--finetune-epochs",
        "1",
        "--mode",
        "static",
    )
    assert code == 0, error
    for key in ("accuracy_before", "accuracy_after", "size_bytes_before", "size_bytes_after", "compression_ratio", "latency_ms_before", "latency_ms_after", "steps"):
        assert key in payload
    assert payload["accuracy_before"] == pytest.approx(digits_baseline.evaluation.accuracy)
    assert payload["size_bytes_before"] == digits_baseline.metrics.size_bytes
    zip_path = Path(payload["artifact_path"])
    assert payload["size_bytes_after"] == zip_path.stat().st_size
    assert payload["compression_ratio"] == pytest.approx(payload["size_bytes_before"] / payload["size_bytes_after"])
    assert payload["compression_ratio"] > 8  # 80% zeros, int8, entropy coded
    assert [step["step"] for step in payload["steps"]] == ["baseline", "prune", "quantize", "encode"]
    sizes = [step["size_bytes"] for step in payload["steps"]]
    assert sizes == sorted(sizes, reverse=True)
    db = session_workspace.history_db
    chain_ids = [run.id for run in history.lineage(db, payload["run_id"])]
    assert chain_ids[-4:] == [digits_baseline.run_id, payload["steps"][1]["run_id"], payload["steps"][2]["run_id"], payload["run_id"]]
    assert [history.get_run(db, run_id).technique for run_id in chain_ids[-3:]] == ["prune", "quantize", "pipeline"]
    model, package = load_model_zip(zip_path.read_bytes())
    reloaded = evaluate_package(model, package, digits_baseline.dataset).accuracy
    assert reloaded == pytest.approx(payload["accuracy_after"], abs=1e-9)
    assert reloaded == pytest.approx(payload["steps"][2]["accuracy"], abs=1e-9)  # the zip computes what the int8 graph computed
    assert package.quantized_weights and package.activation_quant.keys() == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    summary = summarize(history.get_run(db, payload["run_id"]))
    assert summary.size_bytes == payload["size_bytes_after"] and len(waterfall_steps(summary)) == 4
    # Every run carries latency now: the pipeline's own before/after pair, and each step's.
    assert payload["latency_ms_before"] > 0 and payload["latency_ms_after"] > 0 and payload["latency_batch_size"] == THROUGHPUT_BATCH_SIZE
    assert payload["latency_ms_single_before"] > 0 and payload["latency_ms_single_after"] > 0 and payload["latency_runtime"]
    assert all(step["latency_ms"] > 0 and step["latency_batch_size"] == THROUGHPUT_BATCH_SIZE for step in payload["steps"][1:3])


@pytest.mark.slow
def test_pipeline_with_distillation_and_channel_removal(digits_baseline, session_workspace):
    given = {
        "steps": "distill,prune",
        "teacher": "teacher",
        "student": "simple_cnn_narrow",
        "temperature": 4.0,
        "alpha": 0.9,
        "learning_rate": None,
        "augment": None,
        "teacher_seed": 0,
        "teacher_epochs": 3,
        "epochs": 3,
        "method": "ln",
        "granularity": "channel",
        "amount": 0.3,
        "scope": "layer",
        "layers": "all",
        "remove": True,
        "finetune_epochs": 0,
        "iterative_steps": 1,
    }
    config = build_pipeline_config(pipeline_options(None, given), "simple_cnn")
    assert config.distill.epochs == 3 and config.distill.seeds == (0,) and config.prune.remove
    result = run_pipeline(ModelSource.from_baseline(digits_baseline), config, RunContext(session_workspace))
    run_id = record(result, session_workspace)
    db = session_workspace.history_db
    steps = result.report
    distill_run, prune_run = (history.get_run(db, step.run_id) for step in steps[1:3])
    assert distill_run.technique == "distill" and distill_run.parent_id == digits_baseline.run_id  # the previous step, not the teacher
    assert prune_run.parent_id == distill_run.id and history.get_run(db, run_id).parent_id == prune_run.id
    assert steps[2].params < steps[1].params < steps[0].params
    assert result.headline.latency_ms_before and result.headline.latency_ms_after and "eager" in result.headline.latency_runtime
    model, package = load_model_zip(Path(result.artifact.path).read_bytes())
    assert package.architecture == "simple_cnn_narrow" and package.pruned_channels
    assert evaluate_package(model, package, digits_baseline.dataset).accuracy == pytest.approx(result.headline.accuracy_after, abs=1e-9)


@pytest.mark.parametrize(
    "pruned, message",
    [
        ({"conv9": [0]}, "no convolution or linear layer"),
        ({"conv1": [0, 0]}, "distinct indices"),
        ({"conv1": [16]}, "distinct indices below 16"),
        ({"conv1": list(range(16))}, "leaving at least one"),
    ],
)
def test_recorded_channel_removals_are_checked_before_use(pruned, message):
    package = ModelPackage("simple_cnn", (1, 8, 8), 10, {}, pruned_channels=pruned)
    with pytest.raises(UserError, match=message):
        package.build_model()

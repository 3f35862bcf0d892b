"""The quantization technique: quantize a copy of the source as the config says, and measure it
against the source under the one latency protocol. int8 models are timed compiled (inductor), the
only runtime with their integer kernels, and so is the fp32 source beside them; simulated models
compute in fp32 and are timed eager, both sides.

    result = quantize(source, StaticInt8Config(calibration_size=512), context)
"""

from __future__ import annotations

import copy
import dataclasses
import time

from core.contract.context import RunContext
from core.contract.result import Artifact, TechniqueResult, build_headline, latency_pair
from core.contract.run_models import input_quantization as input_quantization_of
from core.contract.source import ModelSource
from core.foundation.training.quick_evaluation import QuickEvaluator
from core.quantization.apply import quantize_model
from core.quantization.config import QuantizationConfig

SIZE_MEASURE = "deployed bytes (values at their bit width, scales, zero points, fp32 biases)"
SIZE_MEASURE_BEFORE = "deployed bytes (fp32: 4 bytes per value)"
ARTIFACT_FORMAT = (
    "per quantized weight W: W.codes (int8 symmetric / uint8 affine, `bits` used of each), W.scale (fp32, per channel or per tensor), "
    "W.zero_point (int32, affine only; value = (code - zero_point) * scale); LAYER.input_scale / input_zero_point for quantized activations; other tensors fp32 as in the model"
)


def quantize(source: ModelSource, config: QuantizationConfig, context: RunContext, evaluator: QuickEvaluator | None = None) -> TechniqueResult:
    """Quantize and measure. Accuracies are on the full test split, or on `evaluator`'s subset
    (the page's quick view of a simulated setting) when one is given."""
    started = time.perf_counter()
    config.validate()
    source.check_compressible("quantization")
    dataset = source.dataset
    split = evaluator.split if evaluator is not None else dataset.test
    accuracy_before = source.accuracy if evaluator is None else evaluator.accuracy(source.model)
    result = quantize_model(source.model, dataset, config, eval_split=split, base_recipe=source.recipe, progress=context.progress, stop=context.stop, seed=source.seed, accuracy_before=accuracy_before)
    report = result.report
    fp32 = copy.deepcopy(source.model).cpu().eval()
    latency = latency_pair(fp32, result.model, source.example_input().cpu(), compiled=not report.simulated)
    headline = build_headline(
        source,
        fp32,
        report.accuracy_before,
        report.accuracy_after,
        report.eval_images,
        size_bytes_before=report.size_bytes_before,
        size_bytes_after=report.size_bytes_after,
        size_measure_before=SIZE_MEASURE_BEFORE,
        size_measure=SIZE_MEASURE,
        latency=latency,
    )  # parameters and MACs are counted on the fp32 copy: quantization changes their width, not their number
    details = {
        **{key: value for key, value in report.as_dict().items() if key not in ("train_history", "size")},
        "size": report.size.as_dict(),
        "train_history": [record.__dict__ for record in report.train_history],
        "bits": config.bits,
    }
    # Each layer's input quantization by layer name, so the run's model can be rebuilt from its file
    # (core.contract.predictions) even when it ran as an int8 graph whose nodes have no layer names.
    input_quantization = {layer: dataclasses.asdict(quant) for layer, quant in input_quantization_of(result.model).items()}
    meta = {"format": ARTIFACT_FORMAT, "report": report.as_dict(), "input_quantization": input_quantization}
    return TechniqueResult(
        technique="quantize",
        config=config.as_dict(),
        headline=headline,
        details=details,
        artifact=Artifact(tensors=result.artifact_tensors, meta=meta),
        model=result.model,
        architecture=source.architecture,
        source=source,
        pruned_channels=dict(source.pruned_channels),
        quantized=True,
        report=result,
        seconds=time.perf_counter() - started,
    )

"""Quantization lab: simulate low-bit weights, dynamic and static int8, and quantization-aware training.

    result = quantize(baseline.fresh_copy(), baseline.dataset, StaticInt8Config(calibration_size=512))
    result.model, result.report.accuracy_after, result.report.size.deployed_bytes
"""

from core.quantization.apply import (
    GranularityError,
    LayerReport,
    QuantizationReport,
    QuantizationResult,
    accuracy_by_bits,
    calibration_inputs,
    error_by_granularity,
    quantize,
    weight_error,
)
from core.quantization.config import MODES, DynamicInt8Config, QATConfig, QuantizationConfig, SimulateConfig, StaticInt8Config
from core.quantization.fake_quant import QuantizedTensor, QuantSpec, fake_quantize, quantize_tensor
from core.quantization.latency import LatencyComparison, measure_compiled_latency
from core.quantization.size import SizeReport, TensorStorage

__all__ = [
    "MODES",
    "DynamicInt8Config",
    "GranularityError",
    "LatencyComparison",
    "LayerReport",
    "QATConfig",
    "QuantSpec",
    "QuantizationConfig",
    "QuantizationReport",
    "QuantizationResult",
    "QuantizedTensor",
    "SimulateConfig",
    "SizeReport",
    "StaticInt8Config",
    "TensorStorage",
    "accuracy_by_bits",
    "calibration_inputs",
    "error_by_granularity",
    "fake_quantize",
    "measure_compiled_latency",
    "quantize",
    "quantize_tensor",
    "weight_error",
]

"""Quantization lab: simulate low-bit weights, dynamic and static int8, and quantization-aware training.

    result = quantize(source, StaticInt8Config(calibration_size=512), context)      # core.result.TechniqueResult
    bare = quantize_model(model, dataset, SimulateConfig(bits=4))                    # a QuantizationResult, nothing measured or saved
"""

from core.quantization.apply import (
    GranularityError,
    LayerReport,
    QuantizationReport,
    QuantizationResult,
    accuracy_by_bits,
    calibration_inputs,
    error_by_granularity,
    quantize_model,
    weight_error,
)
from core.quantization.run import quantize
from core.quantization.config import MODES, quantization_config, DynamicInt8Config, QATConfig, QuantizationConfig, SimulateConfig, StaticInt8Config
from core.quantization.fake_quant import QuantizedTensor, QuantSpec, fake_quantize, quantize_tensor
from core.quantization.size import SizeReport, TensorStorage

__all__ = [
    "MODES",
    "DynamicInt8Config",
    "GranularityError",
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
    "quantize",
    "quantize_model",
    "quantization_config",
    "quantize_tensor",
    "weight_error",
]

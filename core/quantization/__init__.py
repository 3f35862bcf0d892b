"""Quantization lab: simulate low-bit weights, dynamic and static int8, and quantization-aware training.

    result = quantize(source, StaticInt8Config(calibration_size=512), context)      # core.contract.result.TechniqueResult
    bare = quantize_model(model, dataset, SimulateConfig(bits=4))                    # a QuantizationResult, nothing measured or saved

Names are imported from their submodules on first use, so the torch-free ones (the configs) can
be read, e.g. by the share link, before torch is imported.
"""

from __future__ import annotations

from core.foundation.lazy_exports import lazy_exports

# Each public name, and the submodule that defines it.
_EXPORTS = {
    "GranularityError": "core.quantization.apply",
    "LayerReport": "core.quantization.apply",
    "QuantizationReport": "core.quantization.apply",
    "QuantizationResult": "core.quantization.apply",
    "accuracy_by_bits": "core.quantization.apply",
    "calibration_inputs": "core.quantization.apply",
    "error_by_granularity": "core.quantization.apply",
    "quantize_model": "core.quantization.apply",
    "weight_error": "core.quantization.apply",
    "DynamicInt8Config": "core.quantization.config",
    "MODES": "core.quantization.config",
    "QATConfig": "core.quantization.config",
    "QuantizationConfig": "core.quantization.config",
    "SimulateConfig": "core.quantization.config",
    "StaticInt8Config": "core.quantization.config",
    "quantization_config": "core.quantization.config",
    "QuantSpec": "core.quantization.config",
    "QuantizedTensor": "core.quantization.fake_quant",
    "fake_quantize": "core.quantization.fake_quant",
    "quantize_tensor": "core.quantization.fake_quant",
    "quantize": "core.quantization.run",
    "SizeReport": "core.quantization.size",
    "TensorStorage": "core.quantization.size",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

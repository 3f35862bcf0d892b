"""ONNX files from torch models: fp32 through torch's dynamo exporter, int8 through ONNX Runtime's
own quantization tools, each checked before anyone is given it.

- fp32: `torch.onnx.export(dynamo=True)` with a free batch dimension and the weights inside the
  file (no external data: one file to ship).
- static int8: ONNX Runtime's `quantize_static` in QDQ form (QuantizeLinear/DequantizeLinear
  around every Conv and Gemm, int8 weights one scale per output channel, uint8 activations) with
  ranges from training images; `reduce_range` where the CPU lacks VNNI, as ONNX Runtime advises
  (its u8*s8 kernels add pairs in int16 there and would saturate).
- dynamic int8: `quantize_dynamic` (MatMulInteger for the linear layers, convolutions fp32),
  the same split as torchao's dynamic mode.

All functions take and return the file's bytes; ONNX Runtime's quantizer wants paths, so it works
in a temporary folder.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.contract.artifact import ActivationQuant
from core.foundation.errors import UserError

OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
PRODUCER = "Model Efficiency Lab"
CALIBRATION_BATCH = 64  # images per calibration call; ranges are the same for any split


def float_onnx(model: nn.Module, example_input: torch.Tensor) -> bytes:
    """The model as an fp32 ONNX file whose first dimension (the batch) is free."""
    model = model.cpu().eval()
    batch = example_input[:1].cpu().expand(2, *example_input.shape[1:]).contiguous()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            model,
            (batch,),
            None,
            dynamo=True,
            external_data=False,
            verbose=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    proto = program.model_proto
    for node in proto.graph.node:
        # The exporter notes each node's Python stack trace and module path: local file paths that
        # a shipped file should not carry, and most of a small model's graph bytes.
        del node.metadata_props[:]
        node.doc_string = ""
    return proto.SerializeToString()


def attach_exportable_input_quantization(model: nn.Module, quantization: dict[str, ActivationQuant]) -> None:
    """Each listed layer's input fake-quantized with plain arithmetic (divide, round half to even,
    clamp, subtract, multiply): the same numbers as torch.fake_quantize_per_tensor_affine, which
    torch.export cannot capture, in ops every runtime has."""
    modules = dict(model.named_modules())
    for layer, quant in quantization.items():

        def quantize_input(module, args, quant=quant):
            codes = torch.clamp(torch.round(args[0] / quant.scale) + quant.zero_point, quant.quant_min, quant.quant_max)
            return ((codes - quant.zero_point) * quant.scale, *args[1:])

        modules[layer].register_forward_pre_hook(quantize_input)


def static_int8_onnx(float_bytes: bytes, calibration_images: np.ndarray, reduce_range: bool) -> bytes:
    """ONNX Runtime's static int8 (QDQ, per-channel int8 weights, uint8 activations) of an fp32 file."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self):
            chunks = np.array_split(calibration_images, max(1, len(calibration_images) // CALIBRATION_BATCH))
            self.feeds = iter([{INPUT_NAME: np.ascontiguousarray(chunk, dtype=np.float32)} for chunk in chunks])

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="mel-onnx-") as folder, _quiet_root_logger():
        source, target = Path(folder, "fp32.onnx"), Path(folder, "int8.onnx")
        source.write_bytes(float_bytes)
        quantize_static(
            str(source),
            str(target),
            Images(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return target.read_bytes()


def dynamic_int8_onnx(float_bytes: bytes) -> bytes:
    """ONNX Runtime's dynamic int8 of an fp32 file: int8 linear weights, activations quantized per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="mel-onnx-") as folder, _quiet_root_logger():
        source, target = Path(folder, "fp32.onnx"), Path(folder, "int8.onnx")
        source.write_bytes(float_bytes)
        quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, weight_type=QuantType.QInt8)
        return target.read_bytes()


@contextlib.contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantizer logs advice ("consider pre-processing") on the root logger at
    WARNING on every call; the shape inference it suggests changes nothing for these models."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def with_metadata(onnx_bytes: bytes, metadata: dict[str, str]) -> bytes:
    """The file with `metadata` as its metadata_props (what Netron and onnx.load show) and the lab
    as producer, without the intermediate shape annotations (value_info): optional in ONNX, every
    runtime infers them again, and in a small int8 model they are a tenth of the bytes."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    del proto.graph.value_info[:]
    del proto.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = PRODUCER
    return proto.SerializeToString()


def read_metadata(onnx_bytes: bytes) -> dict[str, str]:
    import onnx

    return {entry.key: entry.value for entry in onnx.load_from_string(onnx_bytes).metadata_props}


def operator_counts(onnx_bytes: bytes) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load_from_string(onnx_bytes).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def check_onnx(onnx_bytes: bytes, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """onnx.checker's full check, then one run in ONNX Runtime at batch 1 and 3 (the batch must be
    free): a file that fails either is never offered."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(onnx_bytes), full_check=True)
    except onnx.checker.ValidationError as error:
        raise UserError(f"the ONNX file failed onnx.checker: {str(error).splitlines()[0]}") from error
    session = ort_session(onnx_bytes, threads=1)
    for batch in (1, 3):
        outputs = session.run(None, {INPUT_NAME: np.zeros((batch, *input_shape), dtype=np.float32)})
        if outputs[0].shape != (batch, num_classes):
            raise UserError(f"the ONNX file gave outputs of shape {list(outputs[0].shape)} for {batch} image(s); expected {[batch, num_classes]}")


def ort_session(onnx_bytes: bytes, threads: int, spinning: bool = True):
    """An ONNX Runtime CPU session using `threads` threads inside each operator and no parallel
    operators (the same thread budget torch gets). Without `spinning`, its idle threads sleep
    instead of busy-waiting after each call: when runtimes take turns on the same cores, a spinning
    pool would steal the next runtime's CPU."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    return onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def ort_logits(onnx_bytes: bytes, images: np.ndarray, threads: int, batch_size: int = 256) -> np.ndarray:
    session = ort_session(onnx_bytes, threads)
    chunks = [session.run(None, {INPUT_NAME: np.ascontiguousarray(images[start : start + batch_size])})[0] for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)

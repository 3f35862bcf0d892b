"""Static int8 and 8-bit QAT through torchao's PT2E flow: torch.export, then prepare_pt2e (or
prepare_qat_pt2e) with X86InductorQuantizer, calibrate (or train), convert_pt2e. The converted graph
holds int8 weights with per-channel scales and uint8 activation quantize/dequantize pairs, which
torch.compile (inductor, freezing on) lowers to oneDNN int8 convolution and matmul kernels.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import torch
from torch import nn

# Activation observers the x86 backend accepts for its uint8 per-tensor activations.
from core.quantization.fake_quant import QuantizedTensor, QuantSpec, quantizable_layers

# The backend's fixed weight scheme: int8 per-channel symmetric, range [-128, 127].
BACKEND_WEIGHT_SPEC = QuantSpec(bits=8, per_channel=True, symmetric=True)

_aten = torch.ops.aten
_QUANTIZED_OPS = {_aten.conv2d.default: "conv", _aten.linear.default: "linear"}


def _imports():
    # torchao prints a deprecation notice for an enum on import; it is not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e import allow_exported_model_train_eval, observer
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
    return x86, observer, allow_exported_model_train_eval, prepare_pt2e, prepare_qat_pt2e, convert_pt2e


def export_model(model: nn.Module, example_input: torch.Tensor) -> torch.fx.GraphModule:
    """The model captured by torch.export with a free batch dimension (calibration and training
    batches differ in size), each call of a reused module its own call site (split_reused_call_sites)."""
    batch = example_input[:1].expand(2, *example_input.shape[1:]).contiguous()
    exported = torch.export.export(model, (batch,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)).module()
    split_reused_call_sites(exported, model)
    return exported


def split_reused_call_sites(graph_module: torch.fx.GraphModule, model: nn.Module | None = None) -> int:
    """Give each call of a parameter-free module that forward calls more than once its own name.

    torchvision's residual blocks call one `self.relu` twice (after bn1, and after the add). The
    exported graph names the second call `layer1.0.relu@1` in its module-stack key, but the x86
    quantizer groups nodes into patterns by the module's path alone, so both ReLUs land in one
    partition with two outputs and the conv + add + ReLU pattern fails ("Input partition has more
    than one output node"). Renaming the later calls `layer1.0.relu@1` makes each its own partition,
    which is what the model computes. Modules with weights keep their names (the layer names the
    int8 weights are read back by). Returns how many nodes were renamed. Without `model` (a user's
    exported program: no Python class), weights are looked up in `graph_module` itself, where a
    parameter-free module left no submodule behind, so a missing one counts as parameter-free."""
    renamed = 0
    for node in graph_module.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            continue
        key, (path, kind) = list(stack.items())[-1]
        _, at, call = key.rpartition("@")
        if not at or not call.isdigit() or path.endswith(f"@{call}"):
            continue
        try:
            module = (graph_module if model is None else model).get_submodule(path)
        except AttributeError:
            if model is not None:
                continue
            module = None
        if module is not None and next(module.parameters(recurse=False), None) is not None:
            continue
        stack[key] = (f"{path}@{call}", kind)
        renamed += 1
    return renamed


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies uint8 x int8 in one instruction (AVX512-VNNI, AVX-VNNI, AMX)."""
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(flag) for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def activation_quant_max() -> int:
    """255, or 127 on CPUs without VNNI: their int8 kernels add u8*s8 pairs in int16, which
    saturates with full-range activations (the backend's own advice: reduce_range)."""
    return 255 if cpu_has_vnni() else 127


def x86_quantizer(observer: str = "histogram", is_qat: bool = False):
    x86, observers, *_ = _imports()
    config = x86.get_default_x86_inductor_quantization_config(is_qat=is_qat, reduce_range=activation_quant_max() == 127)
    if not is_qat and observer != "histogram":
        constructor = {"minmax": observers.MinMaxObserver, "moving_average": observers.MovingAverageMinMaxObserver}[observer]
        activation = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=constructor.with_args(eps=2**-12))
        config = dataclasses.replace(config, input_activation=activation, output_activation=activation)
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(config)
    return quantizer


def prepare_static(model: nn.Module, example_input: torch.Tensor, observer: str) -> torch.fx.GraphModule:
    _, _, allow_train_eval, prepare_pt2e, _, _ = _imports()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The input of maxpool2d is not quantized")
        prepared = prepare_pt2e(export_model(model.eval(), example_input), x86_quantizer(observer))
    allow_train_eval(prepared)
    return prepared


def prepare_qat(model: nn.Module, example_input: torch.Tensor) -> torch.fx.GraphModule:
    """A trainable graph with fake-quantized int8 weights and uint8 activations (the backend's QAT config)."""
    _, _, allow_train_eval, _, prepare_qat_pt2e, _ = _imports()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The input of maxpool2d is not quantized")
        prepared = prepare_qat_pt2e(export_model(model.train(), example_input), x86_quantizer(is_qat=True))
    allow_train_eval(prepared)
    return prepared


@torch.no_grad()
def calibrate(prepared: torch.fx.GraphModule, inputs: torch.Tensor, batch_size: int = 256) -> None:
    prepared.eval()
    for chunk in inputs.split(batch_size):
        prepared(chunk)


def convert(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    _, _, allow_train_eval, _, _, convert_pt2e = _imports()
    prepared.eval()
    converted = convert_pt2e(prepared)
    allow_train_eval(converted)
    converted.eval()  # the patched eval() returns None, so no chaining
    return converted


@dataclass
class ConvertedGraph:
    """What a converted PT2E graph stores, read from its nodes."""

    weights: dict[str, QuantizedTensor]  # layer name -> int8 codes and per-channel scales
    layer_kinds: dict[str, str]  # layer name -> "conv" or "linear"
    float_tensors: dict[str, torch.Tensor]  # biases and anything else kept in fp32
    activation_qparams: dict[str, tuple[float, int]]  # quantize node -> (scale, zero point)
    activation_quant_max: int  # 255, or 127 where the CPU needs a reduced range


def _attribute(graph_module: torch.fx.GraphModule, node: torch.fx.Node) -> torch.Tensor:
    value = graph_module
    for part in node.target.split("."):
        value = getattr(value, part)
    return value


def read_converted(converted: torch.fx.GraphModule) -> ConvertedGraph:
    """Int8 weights per layer (named as in the original model), fp32 tensors and activation qparams."""
    dequantize_per_channel = torch.ops.quantized_decomposed.dequantize_per_channel.default
    quantize_per_tensor = torch.ops.quantized_decomposed.quantize_per_tensor.default
    weights, kinds, floats, activations = {}, {}, {}, {}
    quant_max = 255
    used_for_weights: set[str] = set()
    for node in converted.graph.nodes:
        if node.op == "call_function" and node.target in _QUANTIZED_OPS:
            weight_node = node.args[1]
            layer = list(node.meta["nn_module_stack"].values())[-1][0]
            kinds[layer] = _QUANTIZED_OPS[node.target]
            if isinstance(weight_node, torch.fx.Node) and weight_node.target == dequantize_per_channel:
                codes_node, scale_node, zero_point_node = weight_node.args[:3]
                used_for_weights |= {codes_node.target, scale_node.target, zero_point_node.target}
                weights[layer] = QuantizedTensor(
                    codes=_attribute(converted, codes_node),
                    scale=_attribute(converted, scale_node).float(),
                    zero_point=_attribute(converted, zero_point_node).to(torch.int32),
                    spec=BACKEND_WEIGHT_SPEC,
                )
        elif node.op == "call_function" and node.target == quantize_per_tensor:
            activations[node.name] = (float(node.args[1]), int(node.args[2]))
            quant_max = int(node.args[4])
    for node in converted.graph.nodes:
        if node.op == "get_attr" and node.target not in used_for_weights:
            value = _attribute(converted, node)
            if isinstance(value, torch.Tensor):
                floats[node.target] = value
    return ConvertedGraph(weights, kinds, floats, activations, quant_max)


def assert_all_layers_quantized(converted: ConvertedGraph, model: nn.Module) -> None:
    """Static int8 must convert every convolution and linear layer (the seed silently left convs in fp32)."""
    expected = set(quantizable_layers(model))
    missing = sorted(expected - set(converted.weights))
    assert not missing, f"PT2E left these layers in fp32: {', '.join(missing)}"
    kinds = set(converted.layer_kinds.values())
    has_conv = any(isinstance(layer, nn.Conv2d) for layer in quantizable_layers(model).values())
    assert not has_conv or "conv" in kinds, "PT2E converted no convolution"


def prepared_float_weights(prepared: torch.fx.GraphModule) -> dict[str, torch.Tensor]:
    """The fp32 weight each layer's observer sees (BN already folded), read before convert: the
    reference for per-layer error. A layer whose weight is rescaled in the graph (QAT conv+BN) is
    left out rather than compared against the wrong tensor."""
    weights: dict[str, torch.Tensor] = {}
    for node in prepared.graph.nodes:
        if node.op == "call_function" and node.target in _QUANTIZED_OPS:
            source = node.args[1]
            while isinstance(source, torch.fx.Node) and source.op == "call_module":
                source = source.args[0]
            if isinstance(source, torch.fx.Node) and source.op == "get_attr":
                layer = list(node.meta["nn_module_stack"].values())[-1][0]
                weights[layer] = _attribute(prepared, source).detach().clone()
    return weights

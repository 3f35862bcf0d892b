"""The model zip: one compressed model as safetensors plus JSON metadata, and loading it back.

Weights are stored in their cheapest honest form: int8 codes with their scales for quantized
layers, a bitmask plus the nonzero values for sparse tensors, plain tensors otherwise, in one
safetensors file; the zip then entropy-codes it (LZMA or Deflate, whichever is smaller on these
very bytes). The zip's length is the artifact's honest size.

Loading never unpickles anything: only `metadata.json` (JSON) and `model.safetensors` (parsed by
the safetensors library) are read, after size checks and a checksum over both files; anything
else is refused with a one-line UserError.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import lzma
import math
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_bytes
from torch import nn

from core.foundation.data.datasets import Dataset, class_balanced_subset
from core.foundation.errors import UserError
from core.foundation.models.registry import build_model
from core.foundation.training.loop import Evaluation, evaluate

FORMAT = "model-efficiency-lab/model-zip"
FORMAT_VERSION = 1
WEIGHTS_MEMBER = "model.safetensors"
META_MEMBER = "metadata.json"
MAX_ZIP_BYTES = 64 * 1024 * 1024  # uploads above this are refused before they are opened
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # uncompressed, per member: a zip bomb stops here
SEPARATOR = "::"
FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # same model, same bytes


@dataclass
class QuantizedWeight:
    """Integer codes and what maps them back: value = (code - zero_point) * scale, per output channel."""

    codes: torch.Tensor  # int8 (symmetric) or uint8 (affine)
    scale: torch.Tensor  # fp32, [out_channels] or [1]
    zero_point: torch.Tensor | None = None  # int32 like scale; None when symmetric (all zero)

    def dequantize(self) -> torch.Tensor:
        shape = (-1,) + (1,) * (self.codes.dim() - 1) if self.scale.numel() > 1 else ()
        codes = self.codes.float()
        if self.zero_point is not None:
            codes = codes - self.zero_point.float().view(shape)
        return codes * self.scale.float().view(shape)


@dataclass(frozen=True)
class ActivationQuant:
    """Per-tensor affine quantization of one layer's input, as an int8 runtime applies it."""

    scale: float
    zero_point: int
    quant_min: int
    quant_max: int


@dataclass
class ModelPackage:
    """Everything needed to rebuild and run a model, nothing executable."""

    architecture: str  # a core.foundation.models.registry name
    input_shape: tuple[int, int, int]  # channels, height, width
    num_classes: int
    float_tensors: dict[str, torch.Tensor]  # state-dict name -> tensor kept in floating point (or integer buffers)
    quantized_weights: dict[str, QuantizedWeight] = field(default_factory=dict)  # state-dict name -> codes
    activation_quant: dict[str, ActivationQuant] = field(default_factory=dict)  # layer name -> input quantization
    pruned_channels: dict[str, list[int]] = field(default_factory=dict)  # channels physically removed, per root layer
    info: dict = field(default_factory=dict)  # dataset, class names, normalization, accuracy, run id, technique, params

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.float_tensors, **{name: weight.dequantize() for name, weight in self.quantized_weights.items()}}

    def build_model(self) -> nn.Module:
        """The architecture, cut down as recorded, with these weights (and input quantization) in place."""
        channels, height, width = self.input_shape
        if channels not in (1, 3) or height != width or not 2 <= self.num_classes <= 1000:
            raise UserError(f"unsupported model shape: {channels}x{height}x{width} images, {self.num_classes} classes")
        model = build_model(self.architecture, channels, height, self.num_classes).eval()
        if self.pruned_channels:
            from core.foundation.models.channels import remove_channels

            check_pruned_channels(model, self.pruned_channels)
            model = remove_channels(model, self.pruned_channels, torch.zeros(1, *self.input_shape))
        expected = model.state_dict()
        state = self.state_dict()
        if set(expected) != set(state):
            missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
            raise UserError(f"the weights do not fit {self.architecture}: missing {', '.join(missing) or 'none'}; unexpected {', '.join(extra) or 'none'}")
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(expected[name].shape):
                raise UserError(f"tensor {name} has shape {list(tensor.shape)} but {self.architecture} needs {list(expected[name].shape)}")
        model.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in state.items()})
        attach_input_quantization(model, self.activation_quant)
        return model.eval()


def check_pruned_channels(model: nn.Module, pruned_channels: dict[str, list[int]]) -> None:
    """Every recorded channel must exist, once, and each layer must keep at least one."""
    modules = dict(model.named_modules())
    for layer, indices in pruned_channels.items():
        module = modules.get(layer)
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            raise UserError(f"removed channels name layer '{layer}', which is no convolution or linear layer of this model")
        count = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        if len(set(indices)) != len(indices) or any(not 0 <= index < count for index in indices) or len(indices) >= count:
            raise UserError(f"removed channels of {layer} must be distinct indices below {count}, leaving at least one")


def attach_input_quantization(model: nn.Module, quantization: dict[str, ActivationQuant]) -> None:
    """Fake-quantize each listed layer's input with its recorded scale and zero point: the
    arithmetic of the int8 reference model (quantize, dequantize, fp32 kernel), so the outputs match it."""
    modules = dict(model.named_modules())
    for layer, quant in quantization.items():
        if layer not in modules:
            raise UserError(f"input quantization names layer '{layer}', which this model does not have")

        def quantize_input(module, args, quant=quant):
            return (torch.fake_quantize_per_tensor_affine(args[0], quant.scale, quant.zero_point, quant.quant_min, quant.quant_max), *args[1:])

        modules[layer].register_forward_pre_hook(quantize_input)


def package_from_model(model: nn.Module, architecture: str, dataset: Dataset, info: dict, pruned_channels: dict[str, list[int]] | None = None) -> ModelPackage:
    """A float model (masked, or with channels removed as `pruned_channels` records) as a package."""
    from core.foundation.measures.metrics import effective_tensors

    return ModelPackage(
        architecture=architecture,
        input_shape=(dataset.channels, dataset.image_size, dataset.image_size),
        num_classes=dataset.num_classes,
        float_tensors={name: tensor.detach().cpu().contiguous() for name, tensor in effective_tensors(model).items()},
        pruned_channels={name: list(map(int, indices)) for name, indices in (pruned_channels or {}).items()},
        info={**dataset_info(dataset), **info},
    )


def dataset_info(dataset: Dataset) -> dict:
    return {"dataset": dataset.name, "class_names": list(dataset.class_names), "mean": list(dataset.mean), "std": list(dataset.std)}


# ----------------------------------------------------------------------------------- encoding


@dataclass
class EncodingSizes:
    """The same model's bytes at each stage of the encoding, all measured on real bytes."""

    dense_fp32_bytes: int  # safetensors of the fp32 weights the model computes with
    encoded_bytes: int  # safetensors of the encoded tensors (codes, bitmasks), before entropy coding
    gzip_bytes: int  # the encoded file through gzip (level 9)
    zlib_bytes: int  # the encoded file through zlib (level 9)
    lzma_bytes: int  # the encoded file through xz/LZMA (preset 9)
    zip_bytes: int  # the model zip as written: encoded weights, metadata, zip headers
    zip_compression: str  # "lzma" or "deflate": whichever made the smaller zip

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def encode_tensors(package: ModelPackage) -> dict[str, torch.Tensor]:
    """Each tensor in its cheapest form: dense, or bitmask + nonzero values; quantized weights as codes."""
    encoded: dict[str, torch.Tensor] = {}
    for name, tensor in package.float_tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.is_floating_point() and _sparse_is_cheaper(tensor):
            encoded.update({f"{name}{SEPARATOR}{part}": value for part, value in _bitmask_parts(tensor, "").items()})
        else:
            encoded[name] = tensor
    for name, weight in package.quantized_weights.items():
        codes = weight.codes.detach().cpu().contiguous()
        parts = _bitmask_parts(codes, "q_") if _sparse_is_cheaper(codes) else {"q_codes": codes}
        parts["q_scale"] = weight.scale.detach().float().cpu().contiguous()
        if weight.zero_point is not None:
            parts["q_zero_point"] = weight.zero_point.detach().to(torch.int32).cpu().contiguous()
        encoded.update({f"{name}{SEPARATOR}{part}": value for part, value in parts.items()})
    return encoded


def decode_tensors(encoded: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, QuantizedWeight]]:
    """The inverse of encode_tensors; a set of parts it never writes is refused."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    floats: dict[str, torch.Tensor] = {}
    for key, value in encoded.items():
        if SEPARATOR in key:
            name, part = key.rsplit(SEPARATOR, 1)
            groups.setdefault(name, {})[part] = value
        else:
            floats[key] = value
    quantized: dict[str, QuantizedWeight] = {}
    for name, parts in groups.items():
        kinds = set(parts)
        if kinds == {"bitmask", "values", "shape"}:
            floats[name] = _from_bitmask(parts["bitmask"], parts["values"], parts["shape"], name)
        elif kinds - {"q_zero_point"} in ({"q_codes", "q_scale"}, {"q_bitmask", "q_values", "q_shape", "q_scale"}):
            codes = parts["q_codes"] if "q_codes" in parts else _from_bitmask(parts["q_bitmask"], parts["q_values"], parts["q_shape"], name)
            if codes.dtype not in (torch.int8, torch.uint8):
                raise UserError(f"quantized weight {name} holds {codes.dtype} codes; only int8/uint8 are accepted")
            quantized[name] = QuantizedWeight(codes, parts["q_scale"].float(), parts.get("q_zero_point"))
        else:
            raise UserError(f"tensor {name} is stored as {', '.join(sorted(kinds))}, which is no known encoding")
        if name in floats and name in quantized:
            raise UserError(f"tensor {name} is stored twice")
    return floats, quantized


def _sparse_is_cheaper(tensor: torch.Tensor) -> bool:
    numel = tensor.numel()
    nonzero = int(torch.count_nonzero(tensor))
    return numel >= 64 and math.ceil(numel / 8) + nonzero * tensor.element_size() + 4 * tensor.dim() < numel * tensor.element_size()


def _bitmask_parts(tensor: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    flat = tensor.flatten()
    nonzero = flat != 0
    return {
        f"{prefix}bitmask": torch.from_numpy(np.packbits(nonzero.numpy())),
        f"{prefix}values": flat[nonzero].contiguous(),
        f"{prefix}shape": torch.tensor(list(tensor.shape), dtype=torch.int32),
    }


def _from_bitmask(bits: torch.Tensor, values: torch.Tensor, shape: torch.Tensor, name: str) -> torch.Tensor:
    dims = [int(n) for n in shape.tolist()]
    if bits.dtype != torch.uint8 or shape.dim() != 1 or any(n < 0 for n in dims):
        raise UserError(f"tensor {name} has a malformed bitmask encoding")
    numel = math.prod(dims)
    if bits.numel() != math.ceil(numel / 8):
        raise UserError(f"tensor {name}: its bitmask holds {bits.numel() * 8} bits for {numel} values")
    nonzero = torch.from_numpy(np.unpackbits(bits.numpy(), count=numel).astype(bool))
    if int(nonzero.sum()) != values.numel():
        raise UserError(f"tensor {name}: its bitmask marks {int(nonzero.sum())} values but {values.numel()} are stored")
    flat = torch.zeros(numel, dtype=values.dtype)
    flat[nonzero] = values
    return flat.view(dims)


# -------------------------------------------------------------------------------- the zip file


def metadata_of(package: ModelPackage) -> dict:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "architecture": package.architecture,
        "input_shape": list(package.input_shape),
        "num_classes": package.num_classes,
        "pruned_channels": package.pruned_channels,
        "quantized_weights": sorted(package.quantized_weights),
        "activation_quant": {layer: dataclasses.asdict(quant) for layer, quant in package.activation_quant.items()},
        "info": package.info,
    }


def content_digest(weights: bytes, metadata: dict) -> str:
    """sha256 over the weights file and the metadata (without the digest itself): any edit to either shows."""
    canonical = json.dumps({key: value for key, value in metadata.items() if key != "content_sha256"}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(weights + b"\0" + canonical.encode()).hexdigest()


def _encoded_weights_and_metadata(package: ModelPackage) -> tuple[bytes, bytes]:
    weights = safetensors_bytes(encode_tensors(package))
    metadata = metadata_of(package)
    metadata["content_sha256"] = content_digest(weights, metadata)
    return weights, json.dumps(metadata, sort_keys=True, indent=1, default=str).encode()


def _dense_fp32_bytes(package: ModelPackage) -> int:
    return len(safetensors_bytes({name: t.float().contiguous() if t.is_floating_point() else t.contiguous() for name, t in package.state_dict().items()}))


def weigh_encoding(package: ModelPackage) -> tuple[int, int]:
    """(encoded bytes, dense fp32 bytes) without any entropy coding: what a pipeline step weighs.
    The five compressions of write_model_zip take minutes on a ResNet's 45 MB (LZMA preset 9)."""
    weights, _ = _encoded_weights_and_metadata(package)
    return len(weights), _dense_fp32_bytes(package)


def quick_model_zip(package: ModelPackage) -> bytes:
    """A model zip with deflate only, for a round trip that checks the rebuild (not for sizes)."""
    weights, metadata_bytes = _encoded_weights_and_metadata(package)
    return _zip(weights, metadata_bytes, zipfile.ZIP_DEFLATED)


def write_model_zip(package: ModelPackage) -> tuple[bytes, EncodingSizes]:
    """The model zip's bytes, and what each encoding stage weighs."""
    weights, metadata_bytes = _encoded_weights_and_metadata(package)
    candidates = {name: _zip(weights, metadata_bytes, compression) for name, compression in (("lzma", zipfile.ZIP_LZMA), ("deflate", zipfile.ZIP_DEFLATED))}
    chosen = min(candidates, key=lambda name: len(candidates[name]))
    import gzip

    sizes = EncodingSizes(
        dense_fp32_bytes=_dense_fp32_bytes(package),
        encoded_bytes=len(weights),
        gzip_bytes=len(gzip.compress(weights, compresslevel=9, mtime=0)),
        zlib_bytes=len(zlib.compress(weights, 9)),
        lzma_bytes=len(lzma.compress(weights, preset=9)),
        zip_bytes=len(candidates[chosen]),
        zip_compression=chosen,
    )
    return candidates[chosen], sizes


def _zip(weights: bytes, metadata: bytes, compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in ((WEIGHTS_MEMBER, weights), (META_MEMBER, metadata)):
            info = zipfile.ZipInfo(member, date_time=FIXED_ZIP_DATE)
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def read_model_zip(data: bytes, name: str = "the upload") -> ModelPackage:
    """A package from model-zip bytes, or a one-line UserError saying why they are refused. Nothing
    is extracted or written: the two members are read into memory by their exact names."""
    if len(data) > MAX_ZIP_BYTES:
        raise UserError(f"{name} is {len(data) / 1e6:.1f} MB; model zips up to {MAX_ZIP_BYTES / 1e6:.0f} MB are accepted")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise UserError(f"{name} is not a model zip: expected a .zip holding {WEIGHTS_MEMBER} and {META_MEMBER} (pickled .pt/.pth checkpoints are never loaded)") from None
    escaping = sorted(member for member in members if _leaves_the_archive(member))
    if escaping:
        raise UserError(f"{name} holds {_member_list(escaping)}, a path outside the zip's own folder; refusing it (a model zip holds only {WEIGHTS_MEMBER} and {META_MEMBER})")
    unexpected = sorted(set(members) - {WEIGHTS_MEMBER, META_MEMBER})
    if unexpected:
        raise UserError(f"{name} holds {_member_list(unexpected)}; a model zip holds only {WEIGHTS_MEMBER} and {META_MEMBER} (nothing else is read, nothing is unpickled)")
    missing = sorted({WEIGHTS_MEMBER, META_MEMBER} - set(members))
    if missing:
        raise UserError(f"{name} lacks {', '.join(missing)}; export a model from the Compare page or `python -m core` to get a complete zip")
    weights = _read_member(archive, members[WEIGHTS_MEMBER], name)
    try:
        metadata = json.loads(_read_member(archive, members[META_MEMBER], name))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{name}: {META_MEMBER} is not valid JSON") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise UserError(f"{name}: {META_MEMBER} is not Model Efficiency Lab metadata (format '{metadata.get('format') if isinstance(metadata, dict) else None}')")
    if metadata.get("version") != FORMAT_VERSION:
        raise UserError(f"{name} is model-zip version {metadata.get('version')}; this app reads version {FORMAT_VERSION}")
    if metadata.get("content_sha256") != content_digest(weights, metadata):
        raise UserError(f"{name} was modified after export: its checksum does not match {WEIGHTS_MEMBER} and {META_MEMBER}; refusing to load it")
    try:
        encoded = safetensors_load(weights)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise UserError(f"{name}: {WEIGHTS_MEMBER} is not a valid safetensors file ({str(error).splitlines()[0] if str(error) else type(error).__name__}); refusing to load it") from None
    floats, quantized = decode_tensors(encoded)
    try:
        activation = {layer: ActivationQuant(float(q["scale"]), int(q["zero_point"]), int(q["quant_min"]), int(q["quant_max"])) for layer, q in metadata.get("activation_quant", {}).items()}
        channels, height, width = (int(n) for n in metadata["input_shape"])
        package = ModelPackage(
            architecture=str(metadata["architecture"]),
            input_shape=(channels, height, width),
            num_classes=int(metadata["num_classes"]),
            float_tensors=floats,
            quantized_weights=quantized,
            activation_quant=activation,
            pruned_channels={str(layer): [int(i) for i in indices] for layer, indices in metadata.get("pruned_channels", {}).items()},
            info=dict(metadata.get("info", {})),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{name}: {META_MEMBER} is missing or has a malformed field ({error})") from None
    if sorted(quantized) != sorted(metadata.get("quantized_weights", [])):
        raise UserError(f"{name}: the quantized tensors in {WEIGHTS_MEMBER} differ from those {META_MEMBER} lists")
    return package


def _leaves_the_archive(member: str) -> bool:
    """A member name that an extractor would write outside its target folder (zip slip): absolute
    (/etc/x, C:/x, \\\\host\\x) or going up (../x, a/../../x)."""
    path = member.replace("\\", "/")
    return path.startswith("/") or (len(path) > 1 and path[1] == ":") or ".." in path.split("/")


def _member_list(members: list[str], shown: int = 5) -> str:
    """Member names for a one-line message: quoted (a newline in a name stays \\n), each cut short, at most `shown` of them."""
    names = [repr(member if len(member) <= 60 else member[:60] + "…") for member in members[:shown]]
    more = len(members) - shown
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    if info.file_size > MAX_MEMBER_BYTES:
        raise UserError(f"{name}: {info.filename} unpacks to {info.file_size / 1e6:.0f} MB, over the {MAX_MEMBER_BYTES / 1e6:.0f} MB limit")
    try:
        with archive.open(info) as member:
            data = member.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, lzma.LZMAError, zlib.error) as error:
        raise UserError(f"{name}: {info.filename} cannot be unpacked ({error})") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise UserError(f"{name}: {info.filename} unpacks to more than {MAX_MEMBER_BYTES / 1e6:.0f} MB")
    return data


def load_model_zip(data: bytes, name: str = "the upload") -> tuple[nn.Module, ModelPackage]:
    package = read_model_zip(data, name)
    return package.build_model(), package


def evaluate_package(model: nn.Module, package: ModelPackage, dataset: Dataset, device: torch.device | None = None) -> Evaluation:
    """Accuracy on the same test images the exported accuracy was measured on, normalised as at export."""
    if dataset.name != package.info.get("dataset"):
        raise UserError(f"this model was made on '{package.info.get('dataset')}'; choose that dataset in the sidebar to evaluate it (now: '{dataset.name}')")
    if (dataset.channels, dataset.image_size, dataset.image_size) != tuple(package.input_shape) or dataset.num_classes != package.num_classes:
        raise UserError(
            f"this model takes {list(package.input_shape)} images and {package.num_classes} classes; the dataset has {[dataset.channels, dataset.image_size, dataset.image_size]} and {dataset.num_classes}"
        )
    view = copy.copy(dataset)
    if package.info.get("mean") and package.info.get("std"):
        view = dataclasses.replace(dataset, mean=tuple(package.info["mean"]), std=tuple(package.info["std"]))
    eval_images = package.info.get("eval_images")
    if isinstance(eval_images, int) and 0 < eval_images < len(dataset.test):
        view = dataclasses.replace(view, test=class_balanced_subset(dataset.test, eval_images, dataset.num_classes, int(package.info.get("eval_subset_seed", 0)), "test"))
    return evaluate(model, view, view.test, device or torch.device("cpu"))

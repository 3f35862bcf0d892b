"""Reading a user's trained-weights file: formats, unwrapping, refusals, and fitting it to a model."""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import pathlib
import pickle

import pytest
import torch
from safetensors.torch import save_file

from core.foundation.errors import UserError
from core.foundation.models import weights_file
from core.foundation.models.registry import build_model
from core.foundation.models.weights_file import (
    WEIGHTS_SUFFIXES,
    check_classes,
    classes_in_head,
    fit_to_model,
    input_channels_in_stem,
    read_weights,
    read_weights_bytes,
)

IMAGES = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def trained(name: str = "simple_cnn", seed: int = 1, num_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, 3, 32, num_classes).eval()


def outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IMAGES)


def save(path: pathlib.Path, state: object) -> pathlib.Path:
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def torch_bytes(state: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def one_line_error(call, *args) -> str:
    with pytest.raises(UserError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("suffix", WEIGHTS_SUFFIXES)
def test_a_saved_state_dict_round_trips_to_identical_outputs(tmp_path, suffix):
    source = trained(seed=1)
    path = save(tmp_path / f"digits{suffix}", source.state_dict())
    target = trained(seed=2)
    assert not torch.equal(outputs(target), outputs(source))  # else the test could not fail
    weights = read_weights(path)
    fit_to_model(target, weights, "simple_cnn")
    assert torch.equal(outputs(target), outputs(source))
    assert weights.format == ("safetensors" if suffix == ".safetensors" else "torch")
    assert weights.name == path.name


def test_a_torchvision_file_without_batch_norm_step_counters_fits(tmp_path):
    # torchvision's older checkpoints predate num_batches_tracked; such a file still fits, every other tensor from it.
    source = trained("resnet18", seed=1)
    with torch.no_grad():  # running statistics that differ from a fresh model's, so loading them shows in the outputs
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = {key: tensor.contiguous() for key, tensor in source.state_dict().items() if not key.endswith("num_batches_tracked")}
    target = trained("resnet18", seed=2)
    fit_to_model(target, read_weights(save(tmp_path / "resnet.safetensors", state)), "resnet18")
    assert torch.equal(outputs(target), outputs(source))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda state: {"state_dict": state},
        lambda state: {"model": {f"module.{key}": tensor for key, tensor in state.items()}, "epoch": 3, "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": []}},
        lambda state: {"model": {"state_dict": {f"_orig_mod.module.{key}": tensor for key, tensor in state.items()}}, "best_accuracy": torch.tensor(0.9)},
        lambda state: collections.OrderedDict((f"module.{key}", tensor) for key, tensor in state.items()),
    ],
    ids=["state_dict", "model-module-epoch-optimizer", "nested-compiled-ddp", "ordered-dict-module"],
)
def test_checkpoint_nestings_and_wrapper_prefixes_unwrap(tmp_path, wrap):
    source = trained(seed=1)
    weights = read_weights(save(tmp_path / "checkpoint.pt", wrap(source.state_dict())))
    assert list(weights.state_dict) == list(source.state_dict())
    target = trained(seed=2)
    fit_to_model(target, weights, "simple_cnn")
    assert torch.equal(outputs(target), outputs(source))


class CheckpointDict(collections.OrderedDict):
    """An OrderedDict subclass: the restricted loader builds OrderedDict itself, never a class from the file."""


@pytest.mark.parametrize("holder", [argparse.Namespace(lr=0.1), CheckpointDict(a=torch.ones(2))], ids=["namespace", "ordered-dict-subclass"])
def test_a_pickle_holding_objects_is_refused_by_the_restricted_loader(holder):
    data = torch_bytes({"state_dict": trained().state_dict(), "args": holder})
    message = one_line_error(read_weights_bytes, "checkpoint.pt", data)
    assert message.startswith("checkpoint.pt was refused by PyTorch's restricted loader (weights_only=True)")
    assert "objects other than tensors and plain containers" in message
    assert "never runs code from an upload" in message
    assert "weights_only=False" not in message  # torch's own advice, which the lab must not pass on


class TouchesMarker:
    """Unpickled by an unrestricted loader, this creates `marker`: a stand-in for any code a pickle can run."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch's note on the bare pickle below
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(TouchesMarker(proof)))
    assert proof.exists()  # the payload does run when unpickled without restriction

    marker = tmp_path / "marker"
    data = torch_bytes({"state_dict": trained().state_dict(), "payload": TouchesMarker(marker)})
    message = one_line_error(read_weights_bytes, "evil.pt", data)
    assert "refused by PyTorch's restricted loader (weights_only=True)" in message
    assert not marker.exists()
    # The same payload as a bare pickle (not torch.save's zip) is refused as well, and runs nothing.
    one_line_error(read_weights_bytes, "evil.pth", pickle.dumps(TouchesMarker(marker)))
    assert not marker.exists()


def test_a_truncated_file_gives_one_line(tmp_path):
    data = torch_bytes(trained().state_dict())
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    assert one_line_error(read_weights, path).startswith("half.pt is truncated or not a PyTorch file (")

    save_file(trained().state_dict(), str(tmp_path / "whole.safetensors"))
    data = (tmp_path / "whole.safetensors").read_bytes()
    assert one_line_error(read_weights_bytes, "half.safetensors", data[: len(data) // 2]).startswith("half.safetensors is not a complete safetensors file (")


def test_an_empty_file_gives_one_line(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    assert one_line_error(read_weights, path) == "empty.pt is empty"
    assert one_line_error(read_weights_bytes, "empty.safetensors", b"") == "empty.safetensors is empty"


def test_a_path_that_is_not_a_file_gives_one_line(tmp_path):
    assert one_line_error(read_weights, tmp_path / "absent.pt") == f"no weights file at {tmp_path / 'absent.pt'}"


def test_an_unknown_suffix_lists_the_accepted_ones():
    message = one_line_error(read_weights_bytes, "model.onnx", b"weights")
    assert message.startswith("model.onnx is not a weights file")
    assert all(suffix in message for suffix in WEIGHTS_SUFFIXES)


def test_a_file_without_tensors_says_so():
    assert one_line_error(read_weights_bytes, "notes.pt", torch_bytes({"epoch": 3, "optimizer": {"lr": 0.1}})) == "notes.pt holds no tensors"


def test_a_file_for_another_architecture_names_the_first_mismatching_tensor():
    wide = read_weights_bytes("wide.pt", torch_bytes(trained("simple_cnn_wide").state_dict()))
    model = trained("simple_cnn", seed=2)
    before = outputs(model)
    message = one_line_error(fit_to_model, model, wide, "simple_cnn")
    assert message.startswith("wide.pt does not fit simple_cnn: conv1.weight is [32, 3, 5, 5] in the file, [16, 3, 5, 5] in the model")
    assert torch.equal(outputs(model), before)  # nothing was loaded


def test_a_missing_or_extra_tensor_is_named():
    state = trained().state_dict()
    missing = read_weights_bytes("short.pt", torch_bytes({key: tensor for key, tensor in state.items() if key != "fc3.bias"}))
    assert one_line_error(fit_to_model, trained(), missing, "simple_cnn") == "short.pt does not fit simple_cnn: the file has no fc3.bias"
    extra = read_weights_bytes("long.pt", torch_bytes({**state, "extra.weight": torch.ones(3)}))
    assert one_line_error(fit_to_model, trained(), extra, "simple_cnn") == "long.pt does not fit simple_cnn: the file's extra.weight is not in simple_cnn"


def test_the_class_count_is_read_from_the_head_and_checked():
    imagenet_head = read_weights_bytes("imagenet.pt", torch_bytes(trained("resnet18", num_classes=1000).state_dict()))
    assert classes_in_head("resnet18", imagenet_head.state_dict) == 1000
    check_classes("resnet18", imagenet_head, 1000)
    message = one_line_error(check_classes, "resnet18", imagenet_head, 10)
    assert message.startswith("the file's head has 1000 classes; the dataset has 10.")
    assert "imagenet.pt" in message
    assert classes_in_head("simple_cnn", trained(num_classes=7).state_dict()) == 7
    assert classes_in_head("simple_cnn", {}) is None


def test_the_stem_gives_the_input_channels():
    torch.manual_seed(0)
    assert input_channels_in_stem("simple_cnn", build_model("simple_cnn", 1, 28, 10).state_dict()) == 1
    assert input_channels_in_stem("resnet18", build_model("resnet18", 3, 32, 10).state_dict()) == 3
    assert input_channels_in_stem("resnet18", {}) is None


def test_the_file_is_identified_by_the_sha256_of_its_bytes(tmp_path):
    path = save(tmp_path / "digits.pth", trained().state_dict())
    data = path.read_bytes()
    weights = read_weights(path)
    assert weights.sha256 == hashlib.sha256(data).hexdigest()
    assert weights.size_bytes == len(data)
    assert read_weights_bytes("other-name.pth", data).sha256 == weights.sha256


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(weights_file, "MAX_WEIGHTS_BYTES", 100)
    path = save(tmp_path / "big.pt", trained().state_dict())
    message = one_line_error(read_weights, path)
    assert message.startswith("big.pt is ") and message.endswith("; the lab reads weights files of at most 100 bytes")
    assert one_line_error(read_weights_bytes, "big.pt", path.read_bytes()) == message

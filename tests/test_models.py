import pytest
import torch
from safetensors.torch import save_file

from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_parameters
from core.foundation.models import resnet
from core.foundation.models.names import LAB_OWN, MODEL_GROUPS
from core.foundation.models.registry import MODEL_NAMES, STUDENT_MODELS, available_models, build_model
from core.foundation.models.resnet import IMAGENET_WEIGHTS_FILE, RESNET18, RESNET18_IMAGENET


@pytest.fixture()
def empty_torch_hub(tmp_path, monkeypatch):
    """torch's hub folder pointed at an empty temp folder: no ImageNet weights on disk."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def write_stand_in_imagenet_weights(hub) -> dict[str, torch.Tensor]:
    """A torchvision ResNet-18 state dict (random weights: same names and shapes as the real file) where core.foundation.models.resnet looks."""
    from torchvision.models import resnet18

    state = {name: tensor.contiguous() for name, tensor in resnet18(weights=None).state_dict().items()}
    (hub / "checkpoints").mkdir(parents=True)
    save_file(state, str(hub / "checkpoints" / IMAGENET_WEIGHTS_FILE))
    return state


# The lab's own models and the ResNet-18s this machine can build, at every side from 8 to 64;
# resnet18_imagenet only exists with its weights (tested below). The other torchvision
# architectures: tests/test_architectures.py.
@pytest.mark.parametrize("name", [name for name in available_models() if name in (*MODEL_GROUPS[LAB_OWN], RESNET18, RESNET18_IMAGENET)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28, 32, 64])
def test_models_give_one_logit_per_class(name, channels, size):
    model = build_model(name, channels, size, num_classes=7).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 7)


def test_the_registry_holds_every_model_and_resnet18_from_scratch_is_always_available():
    assert {*STUDENT_MODELS, "teacher", RESNET18, RESNET18_IMAGENET} <= set(MODEL_NAMES)
    assert set(MODEL_GROUPS[LAB_OWN]) == {*STUDENT_MODELS, "teacher"}
    assert RESNET18 in available_models()
    assert set(available_models()) - {RESNET18_IMAGENET} == set(MODEL_NAMES) - {RESNET18_IMAGENET}


def test_resnet18_imagenet_is_absent_without_its_weights_file(empty_torch_hub):
    assert RESNET18_IMAGENET not in available_models()
    assert resnet.imagenet_weights_path() == empty_torch_hub / "checkpoints" / IMAGENET_WEIGHTS_FILE
    with pytest.raises(UserError, match="not on disk"):
        build_model(RESNET18_IMAGENET, 3, 32, 10)


@pytest.mark.parametrize("channels, size", [(1, 8), (3, 32)])
def test_resnet18_imagenet_is_present_and_starts_from_the_weights_file(empty_torch_hub, channels, size):
    state = write_stand_in_imagenet_weights(empty_torch_hub)
    assert RESNET18_IMAGENET in available_models()
    model = build_model(RESNET18_IMAGENET, channels, size, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, channels, size, size)).shape == (2, 7)
    assert torch.equal(model.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    expected_stem = state["conv1.weight"].sum(dim=1, keepdim=True) if channels == 1 else state["conv1.weight"]
    assert torch.allclose(model.conv1.weight, expected_stem)
    scratch = build_model(RESNET18, channels, size, num_classes=7)
    assert not torch.equal(scratch.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])  # only the imagenet start reads the file


def test_a_weights_file_that_is_not_a_resnet18_is_refused(empty_torch_hub):
    (empty_torch_hub / "checkpoints").mkdir(parents=True)
    save_file({"something.else": torch.zeros(3)}, str(empty_torch_hub / "checkpoints" / IMAGENET_WEIGHTS_FILE))
    assert RESNET18_IMAGENET in available_models()  # the file is there...
    with pytest.raises(UserError, match="not a torchvision ResNet-18 state dict"):
        build_model(RESNET18_IMAGENET, 3, 32, 10)  # ...but is refused when used


def test_teacher_is_clearly_larger_than_student():
    student, teacher = build_model("simple_cnn", 3, 32, 10), build_model("teacher", 3, 32, 10)
    assert count_parameters(teacher) > count_parameters(student)
    assert count_parameters(build_model(RESNET18, 3, 32, 10)) > count_parameters(teacher)


def test_simple_cnn_matches_the_seed_architecture():
    model = build_model("simple_cnn", 3, 32, 10)
    assert model.conv1.weight.shape == (16, 3, 5, 5) and model.conv2.weight.shape == (32, 16, 5, 5)
    assert model.fc1.weight.shape == (120, 32 * 8 * 8) and model.fc2.weight.shape == (84, 120) and model.fc3.weight.shape == (10, 84)


def test_unknown_model_and_unsupported_size_are_user_errors():
    with pytest.raises(UserError, match="unknown model"):
        build_model("vgg99", 3, 32, 10)
    with pytest.raises(UserError, match="outside the supported"):
        build_model("simple_cnn", 3, 128, 10)

import pytest
import torch

from core.foundation.errors import UserError
from core.foundation.measures.metrics import count_parameters
from core.foundation.models.names import LAB_OWN, MODEL_GROUPS
from core.foundation.models.registry import MODEL_NAMES, STUDENT_MODELS, available_models, build_model
from core.foundation.models.resnet import RESNET18, RESNET18_IMAGENET


# The lab's own models and the ResNet-18, at every side from 8 to 64 (resnet18_imagenet, retired,
# builds the same network for its old runs: tests/test_pretrained.py). The other torchvision
# architectures: tests/test_architectures.py.
@pytest.mark.parametrize("name", [name for name in available_models() if name in (*MODEL_GROUPS[LAB_OWN], RESNET18)])
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
        build_model("simple_cnn", 3, 256, 10)

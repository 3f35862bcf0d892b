import pytest
import torch

from core.errors import UserError
from core.metrics import count_parameters
from core.models import MODEL_NAMES, build_model


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28, 32, 64])
def test_models_give_one_logit_per_class(name, channels, size):
    model = build_model(name, channels, size, num_classes=7).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 7)


def test_teacher_is_clearly_larger_than_student():
    student, teacher = build_model("simple_cnn", 3, 32, 10), build_model("teacher", 3, 32, 10)
    assert count_parameters(teacher) > count_parameters(student)


def test_simple_cnn_matches_the_seed_architecture():
    model = build_model("simple_cnn", 3, 32, 10)
    assert model.conv1.weight.shape == (16, 3, 5, 5) and model.conv2.weight.shape == (32, 16, 5, 5)
    assert model.fc1.weight.shape == (120, 32 * 8 * 8) and model.fc2.weight.shape == (84, 120) and model.fc3.weight.shape == (10, 84)


def test_unknown_model_and_unsupported_size_are_user_errors():
    with pytest.raises(UserError, match="unknown model"):
        build_model("vgg99", 3, 32, 10)
    with pytest.raises(UserError, match="outside the supported"):
        build_model("simple_cnn", 3, 128, 10)

"""Which models teach and learn: any architecture the registry offers (core.foundation.models.names
ARCHITECTURES, built by core.foundation.models.registry.build_model) teaches any other, e.g. a
ResNet-18 teacher for a MobileNetV2 x0.5 student. A teacher is a baseline of its architecture on
the students' dataset, trained once, cached and recorded like every other model; its run id keys
its cached logits (core.distillation.teacher_logits)."""

from __future__ import annotations

from collections.abc import Iterable

from core.foundation.models.names import MODEL_GROUPS, MODEL_NAMES, RETIRED_MODELS, available_model_groups, model_group, model_label  # noqa: F401 (model_label re-exported)

# The registry's list, not a copy (less the retired names): an architecture the registry gains can teach and learn at once.
DISTILLATION_MODELS = tuple(name for name in MODEL_NAMES if name not in RETIRED_MODELS)
TEACHER_MODELS = DISTILLATION_MODELS  # the name pages and tests imported when only a few models could teach
DEFAULT_TEACHER = "teacher"  # the lab's small ResNet
DEFAULT_STUDENT = "simple_cnn"


def available_teachers() -> list[str]:
    """The models the sidebar offers (every registry name but the retired), in its groups' order."""
    return [name for names in available_model_groups().values() for name in names]


def available_students() -> list[str]:
    """The same list: any model that can teach can learn."""
    return available_teachers()


def grouped_names(names: Iterable[str]) -> str:
    """`names` grouped as the sidebar groups them: "the lab's own: a, b; torchvision: c, d"."""
    chosen = set(names)
    return "; ".join(f"{group}: {', '.join(name for name in members if name in chosen)}" for group, members in MODEL_GROUPS.items() if chosen.intersection(members))

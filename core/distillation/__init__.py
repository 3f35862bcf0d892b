"""Knowledge distillation: a trained teacher, a student raced on hard labels against the same
student taught by the teacher's softened outputs, and the difference measured."""

from core.distillation.config import DISTILLED, HARD, DistillConfig, check_images_fit, check_teacher_not_smaller, default_student, student_recipe, teacher_config
from core.distillation.loss import distillation_loss, kd_loss, soft_targets
from core.distillation.race import get_teacher, run_race
from core.distillation.report import DistillReport, StudentRun
from core.distillation.run import distill
from core.distillation.soft_labels import SoftLabelExamples, soft_label_examples
from core.distillation.teacher_logits import TeacherLogitCache, TeacherPerBatch, build_teacher_logit_cache, teacher_logit_source, teacher_logits_cacheable, teacher_logits_key
from core.distillation.teachers import DISTILLATION_MODELS, TEACHER_MODELS, available_students, available_teachers, grouped_names, model_label

__all__ = [
    "DISTILLATION_MODELS",
    "DISTILLED",
    "HARD",
    "TEACHER_MODELS",
    "DistillConfig",
    "DistillReport",
    "SoftLabelExamples",
    "StudentRun",
    "TeacherLogitCache",
    "TeacherPerBatch",
    "available_students",
    "available_teachers",
    "build_teacher_logit_cache",
    "check_images_fit",
    "check_teacher_not_smaller",
    "default_student",
    "distill",
    "distillation_loss",
    "get_teacher",
    "grouped_names",
    "kd_loss",
    "model_label",
    "run_race",
    "soft_label_examples",
    "soft_targets",
    "student_recipe",
    "teacher_config",
    "teacher_logit_source",
    "teacher_logits_cacheable",
    "teacher_logits_key",
]

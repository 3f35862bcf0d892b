"""The distillation loss (Hinton et al. 2015).

Soft part: KL(softmax(teacher / T) || softmax(student / T)), scaled by T^2 so its gradient keeps
the same size whatever T is (section 2 of the paper). Hard part: cross-entropy with the true
labels. `alpha` weighs soft against hard.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.distillation.teacher_logits import TeacherLogitCache, TeacherPerBatch
from core.foundation.training.loop import Batch, BatchLoss


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(student, labels)."""
    student_log_probs = F.log_softmax(student_logits / temperature, dim=1)
    teacher_log_probs = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    soft = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True) * temperature**2
    hard = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    return alpha * soft + (1.0 - alpha) * hard


def distillation_loss(teacher: TeacherLogitCache | TeacherPerBatch, temperature: float, alpha: float, label_smoothing: float = 0.0) -> BatchLoss:
    """A train_model loss_fn that distils from `teacher`."""

    def loss(student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return kd_loss(student_logits, teacher.logits_for(batch), batch.labels, temperature, alpha, label_smoothing)

    return loss


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Class probabilities at temperature T: higher T shows more of the teacher's 'dark knowledge'."""
    return F.softmax(logits / temperature, dim=1)

"""An ensemble of small students with varied widths, each distilled from the teacher, combined
by mean probability (exported as one model) and by majority vote."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdss_distill.core.prob import softmax
from sdss_distill.core.schema import STUDENT
from sdss_distill.distill.method import Architecture, register


@dataclass(frozen=True)
class Settings:
    widths: tuple[tuple[int, ...], ...] = ((12, 12), (16, 16), (20, 20), (24, 24))  # members

    def __post_init__(self):
        if not 2 <= len(self.widths) <= 16 or any(not w or min(w) < 1 for w in self.widths):
            raise ValueError(f"widths must list 2-16 members of positive layer widths, got "
                             f"{self.widths!r}")


def _name(hidden) -> str:
    return "member_" + "x".join(map(str, hidden))


def architectures(cfg, settings: Settings) -> list[Architecture]:
    """Each member, and the ensemble of them all (the exported student)."""
    widths = tuple(tuple(w) for w in settings.widths)
    return [*(Architecture(w) for w in widths), Architecture(members=widths)]


@register("student-ensemble", "K small students of varied widths, each distilled; combined by "
          "mean probability and by majority vote", Settings, architectures=architectures,
          exports_plain=False, no_finetune="QAT/pruning is not done for ensemble students: "
                                           "the tf_keras fine-tuning handles one MLP")
def run(ws, cfg, settings: Settings):
    tools = ws.tools
    teacher = ws.teacher(cfg)
    soft = ws.teacher_logits(teacher, "student_train")
    names = [f"{_name(w)}_{k}" if [_name(v) for v in settings.widths].count(_name(w)) > 1
             else _name(w) for k, w in enumerate(settings.widths)]
    members = [ws.student(cfg, "student_train", soft, name=name, hidden=w, role="member")
               for name, w in zip(names, settings.widths)]
    mean = tools.Arm(STUDENT, STUDENT, ws.student_view, "student_train",
                     tools.ensemble_model([m.model for m in members], ws.student_view, name=STUDENT),
                     notes={"combination": "mean probability", "members": names})
    mean.fitted = _sum_fits(tools, members)
    vote = tools.Arm("student_vote", "combination", ws.student_view, "student_train",
                     combine=lambda df: _vote_logits(np.stack([m.logits(df) for m in members])),
                     parameters=mean.parameters,
                     notes={"combination": "majority vote", "members": names})
    return [teacher, *members, mean, vote, ws.baseline(cfg, "student_train")]


def _sum_fits(tools, members):
    return tools.Fitted(max(m.fitted.epochs for m in members), sum(m.fitted.seconds for m in members))


def _vote_logits(member_logits: np.ndarray) -> np.ndarray:
    """Majority vote as logits: log of the vote shares (ties go to the mean probability's pick,
    added as a fraction of a vote), smoothed so that log loss stays finite."""
    k, n, classes = member_logits.shape
    votes = np.zeros((n, classes))
    np.add.at(votes, (np.arange(n)[:, None], member_logits.argmax(-1).T), 1.0)
    votes += 0.5 * softmax(member_logits, axis=-1).mean(axis=0)
    return np.log((votes + 1e-3) / (votes + 1e-3).sum(axis=1, keepdims=True)).astype("float32")

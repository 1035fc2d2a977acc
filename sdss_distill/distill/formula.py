"""The distillation loss terms, written once, as TensorFlow expressions.

Hinton et al. 2015 ("Distilling the Knowledge in a Neural Network"): with teacher logits t,
student logits s and temperature T, the soft term is

    kl:  T^2 * KL(softmax(t/T) || softmax(s/T))
    ce:  T^2 * H(softmax(t/T), softmax(s/T))  =  kl + T^2 * H(softmax(t/T))

The T^2 keeps its gradients on the scale of the hard term as T grows. Both have the same
gradient with respect to s; ce adds the teacher's entropy, a constant. The full loss is
(1 - alpha) * CE(y, softmax(s)) + alpha * soft. FitNets (Romero et al. 2015) adds a hint
term: the mean squared error between a teacher hidden layer and a learned projection of a
student hidden layer.

The functions take the `tf` module as an argument: the Keras 3 losses (`losses.py`) and the
tf_keras quantization-aware fine-tuning process (`export/finetune.py`, which cannot import Keras 3)
both call them, so the formula exists once.
"""

from __future__ import annotations

SOFT_LOSSES = ("kl", "ce")


def check_alpha(alpha) -> float:
    """alpha, the soft term's weight, as a float in [0, 1]; else a ValueError naming it."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    return float(alpha)


def soft_term(tf, teacher_logits, student_logits, temperature: float, kind: str = "kl"):
    """Per-row soft term (see the module docstring) for `kind` in SOFT_LOSSES."""
    if kind not in SOFT_LOSSES:
        raise ValueError(f"soft loss must be one of {', '.join(SOFT_LOSSES)}, got {kind!r}")
    t = float(temperature)
    log_p_teacher = tf.nn.log_softmax(teacher_logits / t, axis=-1)
    log_p_student = tf.nn.log_softmax(student_logits / t, axis=-1)
    p_teacher = tf.exp(log_p_teacher)
    if kind == "kl":  # computed directly, not as cross-entropy minus entropy (float32 precision)
        return (t * t) * tf.reduce_sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
    return (t * t) * -tf.reduce_sum(p_teacher * log_p_student, axis=-1)


def hard_term(tf, labels, student_logits):
    """Per-row cross-entropy of integer labels under softmax(student_logits)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=student_logits)


def hint_term(tf, teacher_features, projected_student_features):
    """Per-row FitNets hint: mean squared difference over the teacher layer's units."""
    return tf.reduce_mean(tf.square(teacher_features - projected_student_features), axis=-1)


def total(tf, labels, teacher_logits, student_logits, *, temperature: float, alpha: float,
          kind: str = "kl"):
    """Per-row (1 - alpha) * hard + alpha * soft, as `keras.distillation.Distiller` combines them."""
    return ((1.0 - alpha) * hard_term(tf, labels, student_logits)
            + alpha * soft_term(tf, teacher_logits, student_logits, temperature, kind))

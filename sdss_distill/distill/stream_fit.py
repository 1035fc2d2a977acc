"""Fit and score the offline method's models on streamed rows (the TensorFlow half of stream.py).

Each epoch re-reads the Parquet files: a Python generator cleans and splits the chunks
(data/stream.py), keeps one part's rows, shuffles them through a bounded buffer and hands
whole batches to tf.data. The fit loop (`fit.fit`), the losses (distill.distillers) and the
scores (`metrics.Scores`) are the in-memory path's; only the input pipeline differs.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from sdss_distill.core.schema import BASELINE, STUDENT, TEACHER, View
from sdss_distill.data.stream import PARTS, SHUFFLE_ROWS, shuffled_blocks
from sdss_distill.distill import metrics as ev
from sdss_distill.distill.distillers import OnlineDistiller
from sdss_distill.distill.fit import VALIDATION_BATCH, FitSettings, Fitted, fit, hard_labels
from sdss_distill.distill.losses import soft_loss
from sdss_distill.distill.metrics import Scores
from sdss_distill.models.mlp import build_mlp, logits

PART_CODES = {"teacher_train": (0, 1), "student_train": (2, 3)}  # (fit part, early-stopping part)


@dataclass
class StreamArm:
    """A trained model and where it came from (the fields train's report needs)."""

    name: str
    role: str
    view: View
    rows: str
    model: keras.Model
    fitted: Fitted
    columns: np.ndarray  # positions of the view's columns in the columns read


class Progress(keras.callbacks.Callback):
    """One line per epoch: fit rows, wall seconds (validation included), rows/s, losses."""

    def __init__(self, name: str, rows: int, epochs: int, say):
        super().__init__()
        self.name, self.rows, self.epochs, self.say = name, rows, epochs, say

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        s = time.perf_counter() - self.start
        logs = logs or {}
        self.say(f"{self.name} epoch {epoch + 1}/{self.epochs}: {self.rows:,} rows in {s:.1f} s "
                 f"({self.rows / s:,.0f} rows/s), loss {logs.get('loss', float('nan')):.4f}, "
                 f"val_loss {logs.get('val_loss', float('nan')):.4f}")


def training_data(source, split, part: int, rows: int, settings: FitSettings, salt: int, to_input):
    """The rows of `part`, reshuffled every epoch (seeded), as batches for Keras."""
    width = len(source.columns)
    epochs = itertools.count()

    def generate():
        epoch = next(epochs)
        rng = np.random.default_rng([settings.seed, salt, epoch])

        def rows_of_part():
            for chunk in source.chunks(split, order_seed=[settings.seed, salt, epoch]):
                keep = chunk.part == part
                if keep.any():
                    yield chunk.values[keep].astype("float32"), chunk.y[keep]
        yield from shuffled_blocks(rows_of_part(), settings.batch_size, SHUFFLE_ROWS, rng)

    ds = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((None, None, width), tf.float32), tf.TensorSpec((None, None), tf.int32)))
    ds = ds.unbatch().apply(tf.data.experimental.assert_cardinality(-(-rows // settings.batch_size)))
    return ds.map(to_input).prefetch(4)


def validation_data(x: np.ndarray, y: np.ndarray, to_input):
    """The early-stopping rows (held in memory, bounded) as large cached batches."""
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(VALIDATION_BATCH).map(to_input).cache()


def train_models(cfg, source, split, stats, settings: FitSettings, say) -> dict[str, StreamArm]:
    """Teacher on teacher-train rows; distilled student and baseline (same initial weights) on
    student-train rows, the student's soft labels from the frozen teacher batch by batch."""
    views = stats.views
    t_cols, s_cols = tf.constant(views.t), tf.constant(views.s)

    def teacher_in(x, y):
        return tf.gather(x, t_cols, axis=-1), y

    def student_in(x, y):
        return tf.gather(x, s_cols, axis=-1), y

    def distil_in(x, y):
        return {"student": tf.gather(x, s_cols, axis=-1), TEACHER: tf.gather(x, t_cols, axis=-1)}, y

    def new_model(view, hidden, name, dropout=0.0):
        keras.utils.set_random_seed(cfg.seed)
        return build_mlp(view, tuple(hidden), None, name=name, dropout=dropout,
                         norm_stats=stats.normalisation(view))

    def data(rows, to_input, salt):
        fit_part, val_part = PART_CODES[rows]
        n = stats.sizes[PARTS[fit_part]]
        return (n, training_data(source, split, fit_part, n, settings, salt, to_input),
                validation_data(*stats.validation(val_part), to_input))

    arms = {}
    n, train, val = data("teacher_train", teacher_in, 1)
    teacher = new_model(views.teacher, cfg.teacher_hidden, TEACHER, cfg.teacher_dropout)
    fitted = fit(teacher, train, val, settings, compile_kwargs=hard_labels(),
                 callbacks=[Progress(TEACHER, n, cfg.epochs, say)])
    say(f"teacher: {fitted.epochs} epochs in {fitted.seconds:.1f} s")
    arms[TEACHER] = StreamArm(TEACHER, TEACHER, views.teacher, "teacher_train", teacher,
                                fitted, views.t)

    n, train, val = data("student_train", distil_in, 2)
    student = new_model(views.student, cfg.student_hidden, STUDENT)
    distiller = OnlineDistiller(teacher, student, alpha=cfg.alpha,
                                losses=[soft_loss(cfg.soft_loss, cfg.temperature)])
    fitted = fit(distiller, train, val, settings, callbacks=[Progress(STUDENT, n, cfg.epochs, say)])
    teacher.trainable = True  # the Distiller froze it; saved as the in-memory teacher is
    say(f"student: {fitted.epochs} epochs in {fitted.seconds:.1f} s")
    arms[STUDENT] = StreamArm(STUDENT, STUDENT, views.student, "student_train", student,
                                fitted, views.s)

    n, train, val = data("student_train", student_in, 2)  # same row order as the student's
    baseline = new_model(views.student, cfg.student_hidden, BASELINE)
    fitted = fit(baseline, train, val, settings, compile_kwargs=hard_labels(),
                 callbacks=[Progress(BASELINE, n, cfg.epochs, say)])
    say(f"baseline: {fitted.epochs} epochs in {fitted.seconds:.1f} s")
    arms[BASELINE] = StreamArm(BASELINE, BASELINE, views.student, "student_train", baseline,
                                 fitted, views.s)
    return arms


def evaluate(arms: dict[str, StreamArm], source, split, stats) -> dict:
    """Every arm on the test rows, streamed; the same keys as the in-memory report."""
    scores = {name: Scores() for name in arms}
    for chunk in source.chunks(split):
        rows = chunk.part == 4
        if not rows.any():
            continue
        x, y = chunk.values[rows].astype("float32"), chunk.y[rows]
        out = {name: logits(arm.model, x[:, arm.columns]) for name, arm in arms.items()}
        for name in arms:
            scores[name].add(y, out[name], out[TEACHER])
    latency_x = np.concatenate(stats.latency_x)
    results = {}
    for name, arm in arms.items():
        results[name] = {
            "role": arm.role, "view": arm.view.name, "rows": arm.rows,
            "parameters": int(arm.model.count_params()), "epochs": arm.fitted.epochs,
            "train_s": round(arm.fitted.seconds, 2),
            **scores[name].result(with_teacher=arm.role != TEACHER),
            "latency": ev.keras_latency(arm.model, latency_x[:, arm.columns]),
            "history": arm.fitted.history}
    return results

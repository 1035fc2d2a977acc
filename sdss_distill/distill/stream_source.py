"""A workspace's rows read from Parquet files chunk by chunk (`data.stream`), never held whole:
the streamed side of `sources.py`'s interface (`build`, `fit`, `logits`, `map_soft`,
`fold_teachers`), so a method that uses only the workspace's arm builders streams unchanged.

Row sets are hash-split parts (`data.stream.PARTS`): teacher_train is parts 0 (fit) and 1
(early stopping), student_train 2 and 3, non_test both. Each model's normalisation is the
mean and variance of its own SkyFeatures output over its fit rows, merged chunk by chunk
(`Moments`, one pass per model set, cached), as `build_mlp` computes them on an array. Fits
run on the JAX engine over batches (`jax_batches`), each epoch reading the files in a seeded
random row-group order; the early-stopping rows (a bounded, hash-selected sample) are held.
Soft labels are functions of a chunk (`Soft`): the frozen teacher runs on each chunk it is
asked for. Fold teachers' folds come from a hash of the id too (`HashSplit.folds`), so a
chunk carries its fold masks.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from sdss_distill.core.domain import domain
from sdss_distill.core.schema import asinh_scales, colour_pairs
from sdss_distill.data.stream import PARTS, Cleaning, Moments, Views
from sdss_distill.distill.distillers import OfflineDistiller
from sdss_distill.distill.fit import Fitted
from sdss_distill.distill.jax_batches import fit_members_batches
from sdss_distill.distill.jax_fit import Loss
from sdss_distill.models.mlp import SkyFeatures, build_mlp, logits

FIT_PARTS = {"teacher_train": (0,), "student_train": (2,), "non_test": (0, 2)}
VAL_PARTS = {"teacher_train": (1,), "student_train": (3,), "non_test": (1, 3)}
LATENCY_ROWS = 2000  # test rows kept for the Keras latency measurement (as many as the CSV run's)


class Stats:
    """What the first pass learns: cleaning, sizes, the student-train domain, the held
    early-stopping rows (values, labels, ids) and test rows for the latency measurement."""

    def __init__(self, views: Views):
        self.views, self.cleaning = views, Cleaning()
        self.sizes = dict.fromkeys(PARTS, 0)
        self.domain: dict | None = None  # core.domain.domain of the student-train rows, merged
        self.val: dict[int, list] = {1: [], 3: []}
        self.latency_x: list = []

    def add(self, chunk) -> None:
        self.cleaning.add(chunk)
        for k, name in enumerate(PARTS):
            self.sizes[name] += int((chunk.part == k).sum())
        student_x = chunk.values[np.isin(chunk.part, (2, 3))][:, self.views.of(self.views.student)]
        if len(student_x):
            self.domain = _merged(self.domain, domain(student_x.astype(float),
                                                      self.views.student.columns))
        for k in self.val:
            rows = chunk.part == k
            self.val[k].append((chunk.values[rows].astype("float32"), chunk.y[rows], chunk.ids[rows]))
        missing = LATENCY_ROWS - sum(map(len, self.latency_x))
        if missing > 0:
            self.latency_x.append(chunk.values[chunk.part == 4][:missing].astype("float32"))

    def validation(self, parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        held = [v for k in parts for v in self.val[k]]
        return tuple(np.concatenate(a) for a in zip(*held))

    def domain_card(self) -> dict:
        """The student-train domain as `core.domain.domain` gives it for the rows in memory."""
        return self.domain


def _merged(a: dict | None, b: dict) -> dict:
    """Two chunks' `core.domain.domain` as one: [min, max] of both, rows added."""
    if a is None:
        return b
    span = {k: {c: [min(a[k][c][0], b[k][c][0]), max(a[k][c][1], b[k][c][1])] for c in a[k]}
            for k in ("columns", "colours")}
    return {**a, "n": a["n"] + b["n"], **span}


class Soft:
    """Soft labels of streamed rows: `self(values, ids)` -> logits for those rows (values: the
    columns read, ids: their object ids), computed when a chunk is read."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, values: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(values, ids), "float32")


class StreamData:
    """Parquet files behind the workspace interface; `stats` from the first pass (Stats)."""

    streamed = True

    def __init__(self, source, split, stats: Stats, seed: int, say=None):
        self.source, self.split, self.stats, self.seed = source, split, stats, seed
        self.say = say or (lambda msg: None)
        self.views = stats.views
        self._moments: dict = {}

    def cannot_stream(self) -> str:
        return ("this method needs the table in memory (a streamed workspace offers the "
                "teacher, fold teachers, students and baselines only); pass one CSV or Parquet "
                "file under 256 MiB to train it in memory")

    def _chunks(self, rows: str, salt: int, epoch: int | None):
        """(values, y, ids) of the fit rows of `rows`, chunk by chunk; row groups in a seeded
        random order per epoch (None: file order)."""
        order = None if epoch is None else [self.seed, salt, epoch]
        for chunk in self.source.chunks(self.split, order_seed=order):
            keep = np.isin(chunk.part, FIT_PARTS[rows])
            if keep.any():
                yield chunk.values[keep].astype("float32"), chunk.y[keep], chunk.ids[keep]

    def moments(self, view, rows: str, folds: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """(mean, variance) of `view`'s SkyFeatures over the fit rows of `rows` (folds > 0: one
        per fold k, over the rows outside fold k): one pass, made once."""
        key = (view.name, rows, folds)
        if key not in self._moments:
            start = time.perf_counter()
            sky = SkyFeatures(colour_pairs(view.columns), asinh_scales(view.columns))
            width = len(view.columns) + len(colour_pairs(view.columns))
            parts = [Moments(width) for _ in range(max(folds, 1))]
            cols = self.views.of(view)
            for x, _, ids in self._chunks(rows, 0, None):
                f = keras.ops.convert_to_numpy(sky(x[:, cols]))
                fold = self.split.folds(ids, folds) if folds else np.zeros(len(x), int)
                for k, m in enumerate(parts):
                    m.add(f[fold != k] if folds else f)
            self._moments[key] = [(m.mean.astype("float32"), m.variance.astype("float32"))
                                  for m in parts]
            self.say(f"normalisation of {view.name} features over {rows} fit rows"
                     f"{f' outside each of {folds} folds' if folds else ''}: {parts[0].n:,} rows"
                     f"{' (fold 0)' if folds else ''} in {time.perf_counter() - start:.1f} s")
        return self._moments[key]

    def build(self, view, hidden, rows: str, *, name: str, dropout: float = 0.0,
              init_seed: int) -> keras.Model:
        stats = self.moments(view, rows)[0]
        keras.utils.set_random_seed(init_seed)
        return build_mlp(view, tuple(hidden), None, name=name, dropout=dropout, norm_stats=stats)

    def _salt(self, rows: str) -> int:
        return list(FIT_PARTS).index(rows) + 1  # the same rows, the same order per epoch

    def fit(self, model, view, rows: str, settings, *, soft=None, alpha: float = 0.0,
            loss=None, say=None) -> Fitted:
        """As MemoryData.fit, on the JAX engine over streamed batches."""
        cols, salt = self.views.of(view), self._salt(rows)
        terms = (OfflineDistiller(model, alpha=alpha, losses=[loss]).engine_loss()
                 if soft is not None else Loss())

        def chunks(epoch):
            for x, y, ids in self._chunks(rows, salt, epoch):
                yield (x[:, cols], y, None if soft is None else soft(x, ids),
                       np.ones((len(y), 1), bool))
        x_val, y_val, ids_val = self.stats.validation(VAL_PARTS[rows])
        validation = (x_val[:, cols], y_val, None if soft is None else soft(x_val, ids_val),
                      np.ones((len(y_val), 1), bool))
        return Fitted(*fit_members_batches([model], chunks, validation, settings, loss=terms,
                                           say=say))

    def logits(self, model, view, rows: str) -> Soft:
        cols = self.views.of(view)
        return Soft(lambda values, ids: logits(model, values[:, cols]))

    @staticmethod
    def map_soft(fn, *softs) -> Soft:
        return Soft(lambda values, ids: fn(*(s(values, ids) for s in softs)))

    def fold_teachers(self, view, hidden, folds: int, settings, *, dropout: float = 0.0,
                      say=None):
        """As MemoryData.fold_teachers; folds by id hash, soft labels a `Soft` that scores each
        row with the teacher of its fold (which neither trained nor early-stopped on it)."""
        stats, cols = self.moments(view, "non_test", folds), self.views.of(view)
        keras.utils.set_random_seed(self.seed + 2000)
        nets = [build_mlp(view, hidden, None, name=f"teacher_fold_{k}", dropout=dropout,
                          norm_stats=stats[k]) for k in range(folds)]

        def outside(ids):
            return self.split.folds(ids, folds)[:, None] != np.arange(folds)[None, :]

        def chunks(epoch):
            for x, y, ids in self._chunks("non_test", self._salt("non_test"), epoch):
                yield x[:, cols], y, None, outside(ids)
        x_val, y_val, ids_val = self.stats.validation(VAL_PARTS["non_test"])
        fitted = Fitted(*fit_members_batches(nets, chunks, (x_val[:, cols], y_val, None,
                                                            outside(ids_val)), settings, say=say))

        def out_of_fold(values, ids):
            fold = self.split.folds(ids, folds)
            out = np.stack([logits(m, values[:, cols]) for m in nets], axis=1)
            return out[np.arange(len(fold)), fold]
        return nets, fitted, Soft(out_of_fold)

"""Peers: the photometric models a user would run instead of the student, trained on exactly a
run's non-test rows (PEER_ROWS) and scored on its test rows, beside the run's int8 and float
students.

Each peer sees u g r i z and the four adjacent colours (`core.schema.colours`), trains on the
run's `split.json` rows the student learns from (teacher-train + student-train, PEER_ROWS "fit")
or on every labelled non-test row, the calibration slice too ("all"), with its library's
defaults (RandomForest with 500 trees; kNN's k is the one setting chosen, on dev rows: a
stratified 15 % of the peers' training rows, `data.table.validation_slice` with the run's
seed), one thread each. Size is the serialized model in the library's own format (CatBoost
.cbm, LightGBM model text, XGBoost UBJSON); a scikit-learn model has none, so its size is
`len(pickle.dumps(model))`, computed in memory and never written or loaded. Latency is one row
from Python, the median of many calls in this process, beside the raw LiteRT call on the
student's file.
"""

from __future__ import annotations

import importlib.util
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sdss_distill.core import zphot
from sdss_distill.core.io import sha256_bytes
from sdss_distill.core.schema import BANDS, LABELS, SAMPLE, colours
from sdss_distill.data.table import labels, split, validation_slice
from sdss_distill.distill.population import by_population, group
from sdss_distill.edge.classifier import interpreter, logits_index

FEATURES: tuple[str, ...] = (*BANDS, *(f"{a}-{b}" for a, b in colours(BANDS)))
"""The peers' inputs: u g r i z and the adjacent colours u-g g-r r-i i-z."""
STUDENTS: tuple[str, ...] = ("student_int8", "student_float32")
"""The run's exported students (RUN/tflite/<stem>.tflite) every peer is compared with."""
KNN_KS: tuple[int, ...] = (5, 10, 20, 40, 80, 160)
"""kNN's candidate k, chosen on dev rows."""
PEER_ROWS: dict[str, str] = {
    "fit": "teacher-train + student-train (the rows the student learns from)",
    "all": "every labelled non-test row: teacher-train + student-train + calibration",
}
"""The peers' training rows: "fit" compares like with like (the student's calibration slice,
which no model fits on, is held out from the peers too); "all" is what a user who needs no
calibrated sets would do, so it prices the rows the student gives up for calibration."""
DEV_FRACTION = 0.15
"""Share of the non-test rows held out as dev rows for a setting that is chosen."""
PICKLE_NOTE = "len(pickle.dumps(model)), in memory (no file written or loaded)"
INSTALL = "pip install '.[bench]'"


def features(df) -> np.ndarray:
    """The peers' [n, 9] float32 inputs (FEATURES) from a table with u g r i z."""
    mags = df[list(BANDS)].to_numpy("float32")
    pos = {b: k for k, b in enumerate(BANDS)}
    cols = [mags[:, pos[a]] - mags[:, pos[b]] for a, b in colours(BANDS)]
    return np.column_stack([mags, *cols]).astype("float32")


def _cbm_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        model.save_model(str(path), format="cbm")
        return path.stat().st_size


def _pickle_bytes(model) -> int:
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def _scaled(estimator):
    return make_pipeline(StandardScaler(), estimator)


def _catboost(seed: int, **_):
    from catboost import CatBoostClassifier
    return CatBoostClassifier(random_seed=seed, thread_count=1, verbose=False,
                              allow_writing_files=False)


def _lightgbm(seed: int, **_):
    from lightgbm import LGBMClassifier
    return LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1)


def _xgboost(seed: int, **_):
    from xgboost import XGBClassifier
    return XGBClassifier(random_state=seed, n_jobs=1)


def _hgb(seed: int, **_):
    return HistGradientBoostingClassifier(random_state=seed)


def _forest(seed: int, **_):
    return RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=1)


def _mlp(seed: int, **_):
    return _scaled(MLPClassifier(random_state=seed))


def _knn(seed: int, k: int = 5, **_):
    return _scaled(KNeighborsClassifier(n_neighbors=k, n_jobs=1))


@dataclass(frozen=True)
class Peer:
    """One peer: how to build it for a seed, measure its size, and what it needs."""

    name: str
    module: str
    """The import it needs; a peer whose module is missing is skipped, and the run says so."""
    build: Callable
    size: Callable
    size_note: str
    settings: str
    grid: dict = field(default_factory=dict)
    """Settings chosen on dev rows: {keyword of build: candidates}; empty = defaults only."""


PEERS: tuple[Peer, ...] = (
    Peer("catboost", "catboost", _catboost, _cbm_bytes, "save_model(format='cbm') file",
         "defaults (1,000 iterations)"),
    Peer("lightgbm", "lightgbm", _lightgbm, lambda m: len(m.booster_.model_to_string().encode()),
         "booster model_to_string() text", "defaults"),
    Peer("xgboost", "xgboost", _xgboost,
         lambda m: len(m.get_booster().save_raw(raw_format="ubj")), "booster save_raw('ubj')",
         "defaults"),
    Peer("hist_gradient_boosting", "sklearn", _hgb, _pickle_bytes, PICKLE_NOTE, "defaults"),
    Peer("random_forest", "sklearn", _forest, _pickle_bytes, PICKLE_NOTE, "500 trees"),
    Peer("mlp", "sklearn", _mlp, _pickle_bytes, PICKLE_NOTE,
         "StandardScaler + MLPClassifier defaults"),
    Peer("knn", "sklearn", _knn, _pickle_bytes, PICKLE_NOTE,
         "StandardScaler + KNeighborsClassifier, k on dev rows", {"k": KNN_KS}),
)
"""Every peer, in table order."""


def select(names: list[str] | None = None) -> tuple[list[Peer], list[Peer]]:
    """(peers to run, peers skipped because their library is not installed); unknown names
    raise ValueError listing the valid ones."""
    known = {p.name: p for p in PEERS}
    bad = [n for n in names or () if n not in known]
    if bad:
        raise ValueError(f"unknown peer(s) {', '.join(bad)}; valid: {', '.join(known)}")
    chosen = [known[n] for n in names] if names else list(PEERS)
    have = [p for p in chosen if importlib.util.find_spec(p.module) is not None]
    return have, [p for p in chosen if p not in have]


def skipped_line(skipped: list[Peer]) -> str:
    """One line naming the skipped peers and how to install them ('' when none)."""
    if not skipped:
        return ""
    mods = sorted({p.module for p in skipped})
    return (f"skipped {', '.join(p.name for p in skipped)} (no {', '.join(mods)}); "
            f"install them with {INSTALL}")


def positions_sha(positions: np.ndarray) -> str:
    """SHA-256 of sorted int64 row positions: two row sets are the same rows iff these match."""
    return sha256_bytes(np.sort(np.asarray(positions, "int64")).tobytes())


def choose(peer: Peer, seed: int, x_fit, y_fit, x_dev, y_dev) -> dict:
    """The grid setting with the best dev-row accuracy (first one on a tie); {} for defaults."""
    if not peer.grid:
        return {}
    (key, values), = peer.grid.items()
    scores = []
    for v in values:
        model = peer.build(seed, **{key: v}).fit(x_fit, y_fit)
        scores.append(float((model.predict(x_dev) == y_dev).mean()))
    return {key: values[int(np.argmax(scores))], "dev_accuracy": max(scores)}


def one_row_latency(call, x: np.ndarray, *, invokes: int, budget_s: float = 5.0,
                    warmup: int = 5) -> dict:
    """Median and p90 wall time (us) of `call` on one row, over `invokes` calls or as many as
    fit in `budget_s` (at least 20), rows taken in turn from `x`."""
    rows = [np.ascontiguousarray(x[k % len(x)][None], dtype=np.float32)
            for k in range(min(len(x), 256))]
    for k in range(warmup):
        call(rows[k % len(rows)])
    times, start = [], time.perf_counter()
    while len(times) < invokes and (len(times) < 20 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter_ns()
        call(rows[len(times) % len(rows)])
        times.append(time.perf_counter_ns() - t0)
    t = np.asarray(times, float) / 1e3
    return {"latency_us": float(np.median(t)), "latency_us_p90": float(np.percentile(t, 90)),
            "latency_calls": len(t)}


def litert(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A raw one-thread LiteRT call on a .tflite file: set_tensor, invoke, get_tensor (logits);
    the interpreter is resized whenever the row count changes."""
    interp = interpreter(path.read_bytes(), path, 1)
    inp, out = interp.get_input_details()[0], {"index": logits_index(interp)}
    shape = [list(inp["shape"])]

    def call(x: np.ndarray) -> np.ndarray:
        if shape[0][0] != len(x):
            interp.resize_tensor_input(inp["index"], [len(x), inp["shape"][1]])
            interp.allocate_tensors()
            shape[0] = [len(x), inp["shape"][1]]
        interp.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=np.float32))
        interp.invoke()
        return interp.get_tensor(out["index"])
    return call


def log_proba(p: np.ndarray) -> np.ndarray:
    """Probabilities as logits (log, clipped at 1e-15 as log loss clips), so peers and
    students go through the same population metrics."""
    return np.log(np.clip(np.asarray(p, float), 1e-15, 1.0))


def check_rows(df, sp, peer_rows: str = "fit") -> dict:
    """The peers' rows of a run, verified by row position: the saved split is the one
    `data.table.split` makes for its seed, and the peers' training rows ("non_test": PEER_ROWS
    `peer_rows`, teacher-train + student-train, plus calibration for "all") are disjoint from
    the test rows. Returns the positions, their SHA-256s and `peer_rows`."""
    if peer_rows not in PEER_ROWS:
        raise ValueError(f"peer rows {peer_rows!r}: expected one of {', '.join(PEER_ROWS)}")
    again = split(df, sp.fractions, sp.seed)
    for name, saved in sp.subsets().items():
        if not np.array_equal(np.sort(saved), again.subsets()[name]):
            raise ValueError(f"split.json's {name} rows differ from data.table.split(seed="
                             f"{sp.seed}): the run was not split as the pipeline splits")
    parts = [sp.teacher_train, sp.student_train, *([sp.calibration] if peer_rows == "all" else [])]
    non_test = np.sort(np.concatenate(parts))
    test = np.sort(sp.test)
    if np.intersect1d(non_test, test).size or len(np.unique(non_test)) != len(non_test):
        raise ValueError("split.json's subsets overlap: test rows would be trained on")
    return {"non_test": non_test, "test": test, "non_test_sha256": positions_sha(non_test),
            "test_sha256": positions_sha(test), "non_test_rows": len(non_test),
            "test_rows": len(test), "peer_rows": peer_rows,
            "calibration_rows": len(sp.calibration)}


def _metrics(y, logits, r, sample) -> dict:
    """Accuracy and log loss overall, per sample and per r-magnitude bin (accuracy, rows)."""
    whole, pop = group(y, logits), by_population(y, logits, r, sample)

    def slim(groups):
        return None if groups is None else {
            k: {"accuracy": g["accuracy"], "rows": g["rows"]} for k, g in groups.items()}
    return {"accuracy": whole["accuracy"], "log_loss": whole["log_loss"],
            "recall": whole["recall"], "by_sample": slim(pop["by_sample"]),
            "by_r_mag": slim(pop["by_r_mag"])}


def score_seed(df, sp, peers: list[Peer], students: dict, *, invokes: int,
               budget_s: float = 5.0, peer_rows: str = "fit", say=lambda m: None) -> dict:
    """Every student and peer of one seed on its test rows: metrics, size and one-row latency.

    `students` maps a name to (call, x_view_fn, size_bytes, size_note): `call` classifies an
    [n, k] float32 array into logits, `x_view_fn(df)` gives its inputs. Peers train on the
    PEER_ROWS `peer_rows` of `sp` (checked by `check_rows`), one thread each.
    """
    rows = check_rows(df, sp, peer_rows)
    test, fit = df.loc[rows["test"]], df.loc[rows["non_test"]]
    y_test, y_fit = labels(test), labels(fit)
    r = test["r"].to_numpy(float)
    sample = test[SAMPLE].to_numpy() if SAMPLE in test.columns else None
    out = {"seed": int(sp.seed), "rows": {k: v for k, v in rows.items()
                                          if not isinstance(v, np.ndarray)}, "models": {}}

    def record(name, logits, size, note, call, x, extra):
        with threadpool_limits(1):
            timing = one_row_latency(call, x, invokes=invokes, budget_s=budget_s)
        out["models"][name] = {**_metrics(y_test, logits, r, sample), "size_bytes": int(size),
                               "size_note": note, **timing, **extra}
        m = out["models"][name]
        say(f"seed {sp.seed} {name}: {m['accuracy']:.2%}, log loss {m['log_loss']:.3f}, "
            f"{size:,} B, {timing['latency_us']:,.1f} us")

    for name, (call, view_fn, size, note) in students.items():
        x = view_fn(test)
        record(name, call(x), size, note, call, x, {"trained_on": "the run's own rows"})
    x_fit, x_test = features(fit), features(test)
    for peer in peers:
        start = time.perf_counter()
        with threadpool_limits(1):
            dev_fit, dev = validation_slice(df, rows["non_test"], DEV_FRACTION, sp.seed)
            chosen = choose(peer, sp.seed, features(df.loc[dev_fit]), labels(df.loc[dev_fit]),
                            features(df.loc[dev]), labels(df.loc[dev])) if peer.grid else {}
            model = peer.build(sp.seed, **{k: v for k, v in chosen.items() if k in peer.grid})
            model.fit(x_fit, y_fit)
            proba = model.predict_proba(x_test)
        fit_s = time.perf_counter() - start
        record(peer.name, log_proba(proba), peer.size(model), peer.size_note, model.predict_proba,
               x_test, {"settings": peer.settings, "chosen_on_dev": chosen, "fit_s": fit_s,
                        "trained_on": PEER_ROWS[peer_rows]})
    return out


REGRESSORS: tuple[str, ...] = ("hist_gradient_boosting", "knn")
"""Photo-z peers: scikit-learn regressors of log(1 + z) (core.zphot.target) on FEATURES, trained
on the same rows as the classifier peers (check_rows); kNN's k chosen on dev rows (galaxy
sigma_NMAD), HistGradientBoosting at its defaults."""


def _regressor(name: str, seed: int, k: int = 20):
    if name == "hist_gradient_boosting":
        return HistGradientBoostingRegressor(random_state=seed)
    return _scaled(KNeighborsRegressor(n_neighbors=k, n_jobs=1))


def zphot_by_class(z_phot, z_spec, y) -> dict:
    """core.zphot.quality per class (LABELS) and over all rows."""
    z_phot, z_spec, y = (np.asarray(a) for a in (z_phot, z_spec, y))
    out = {"all": zphot.quality(z_phot, z_spec)}
    out.update({c: zphot.quality(z_phot[y == i], z_spec[y == i]) for i, c in enumerate(LABELS)})
    return out


def zphot_peers(df, rows: dict, seed: int, say=lambda m: None) -> dict:
    """{regressor: {"by_class": zphot_by_class on the test rows, "chosen_on_dev": ...}}, each
    trained on `rows["non_test"]` (as `check_rows` gives them), one thread."""

    test, fit = df.loc[rows["test"]], df.loc[rows["non_test"]]
    z_test = test["redshift"].to_numpy("float64")
    out = {}
    with threadpool_limits(1):
        dev_fit, dev = validation_slice(df, rows["non_test"], DEV_FRACTION, seed)
        gal = labels(df.loc[dev]) == LABELS.index("GALAXY")
        for name in REGRESSORS:
            chosen = {}
            if name == "knn":
                nmad = [zphot.quality(zphot.from_output(_regressor(name, seed, k).fit(
                    features(df.loc[dev_fit]), zphot.target(df.loc[dev_fit, "redshift"]))
                    .predict(features(df.loc[dev][gal]))),
                    df.loc[dev][gal]["redshift"].to_numpy())["sigma_nmad"] for k in KNN_KS]
                chosen = {"k": KNN_KS[int(np.argmin(nmad))], "dev_galaxy_sigma_nmad": min(nmad)}
            model = _regressor(name, seed, chosen.get("k", 20))
            model.fit(features(fit), zphot.target(fit["redshift"]))
            z = zphot.from_output(model.predict(features(test)))
            out[name] = {"by_class": zphot_by_class(z, z_test, labels(test)),
                         "chosen_on_dev": chosen}
            g = out[name]["by_class"]["GALAXY"]
            say(f"seed {seed} {name} photo-z: galaxies sigma_NMAD {g['sigma_nmad']:.4f}, "
                f"outliers {g['outliers']:.2%}")
    return out

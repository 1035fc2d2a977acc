"""Convert a run's student (and teacher) to LiteRT flatbuffers and measure them on its test rows.

Usage:
    python -m sdss_distill.export --run runs/default
    python -m sdss_distill.export --run runs/default --no-finetune --invokes 2000 --quiet

Writes RUN/tflite/{student_float32,student_float16,student_dynamic,student_int8,
student_qat_int8,student_pruned_int8,teacher_float32}.tflite, each with a model card
`<name>.json` and `labels.txt`, plus RUN/reports/export.{json,md}, as a NEW version of the
run (sdss_distill.runs.rundir): the run is read once, verified against its manifest, and
switched to the exported version in one step, so a killed export leaves the old run whole.
export.json and every card name the run id and the SHA-256 of the Keras model converted.

Int8 student: quantizing the raw magnitudes (~11-28 mag) to int8 steps of ~0.07 mag wipes
out the colours, so the student's front (colours, normalisation, first dense layer) stays
float32 and the first int8 tensor is that layer's ReLU output; export.json records what a
fully int8 graph (quantized input) scores, for comparison.

Ensemble student (`--method student-ensemble`): one file per variant holds every member and
the mean-probability combination; each member's front is folded into its own first layer,
which stays float32 in student_int8. No QAT/pruning files, and no student_dynamic when the
converter would leave it unquantized.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from sdss_distill import __version__
from sdss_distill.core import tflite_file
from sdss_distill.core.errors import InputError, run_cli
from sdss_distill.core.io import quiet_import, quiet_native_stderr, write_atomic
from sdss_distill.core.schema import BANDS, LABELS, STUDENT_VIEW, get_view
from sdss_distill.edge import classifier as edge
from sdss_distill.runs.rundir import Layout, RunDir, read_json, sha256_file

PROG = "python -m sdss_distill.export"
FRONT_LAYER = "dense_0"
ENSEMBLE_NO_FINETUNE = ("QAT/pruning is not done for ensemble students: the tf_keras "
                        "fine-tuning handles one MLP")
DYNAMIC_NO_OP = "no-op here, the converter only quantizes tensors of >= 1024 weights"
PTQ = {"student_float32": "float32", "student_float16": "float16",
       "student_dynamic": "dynamic", "student_int8": "int8"}
FINETUNED = {"student_qat_int8": "QAT int8 (tfmot), front float32",
             "student_pruned_int8": "magnitude-pruned (tfmot) + int8, front float32"}
DESCRIPTIONS = {"float32": "float32", "float16": "float16 weights",
                "dynamic": "dynamic-range int8 weights",
                "int8": "int8 PTQ (student-train calibration); colours+normalisation folded into a "
                "float32 first layer",
                "int8_ensemble": "int8 PTQ (student-train calibration); each member's "
                "colours+normalisation folded into its float32 first layer",
                "int8_full": "int8 PTQ, everything incl. the input quantized"}


def _write_json(path: Path, doc) -> None:
    write_atomic(path, json.dumps(doc, indent=2) + "\n")


KEEP = ["models", "run.json", "split.json", "reports/report.json", "reports/report.md"]
"""What an export carries over from the version it read: everything but tflite/ and export.*."""


class RunData:
    """One verified version of a run: its models (with their SHA-256), config and rows
    (student-train and test) in each model's view."""

    def __init__(self, run, data: str | None = None):
        from sdss_distill.data.table import features, labels, load_run_rows
        rows = load_run_rows(run, data)
        self.layout: Layout = rows.layout
        self.dir = self.layout.root if isinstance(run, Layout) else Path(run)
        self.run_id = self.layout.run_id
        self.config, self.data_path, self.data_sha256 = rows.config, rows.path, rows.sha256
        self.student_view = get_view(STUDENT_VIEW)
        self.teacher_view = get_view(self.config["teacher_view"])
        df, split = rows.df, rows.split
        train, test = df.loc[split.student_train], df.loc[split.test]
        self.x_train = {v.name: features(train, v) for v in (self.student_view, self.teacher_view)}
        self.x_test = {v.name: features(test, v) for v in (self.student_view, self.teacher_view)}
        self.y_train, self.y_test = labels(train), labels(test)
        self.model_sha256 = {}
        self.student, self.teacher = self._load("student"), self._load("teacher")

    def _load(self, name: str):
        from sdss_distill.models.mlp import load
        path = self.layout.model(name)
        if not path.is_file():
            raise InputError(f"{path}: missing; not a complete training run, train it again "
                             f"with python -m sdss_distill.train --out DIR")
        self.model_sha256[name] = sha256_file(path)
        try:
            with quiet_native_stderr(replay_on_error=False):
                return load(path)
        except Exception as e:  # noqa: BLE001 - Keras raises many kinds for a bad archive
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise InputError(f"{path}: cannot load the Keras model ({first}); the file is "
                             f"corrupt or not from sdss_distill, train the run again") from None

    def source(self, name: str) -> dict:
        """What a card or export.json records about the Keras model a file was converted from."""
        return {"model": f"models/{name}.keras", "model_sha256": self.model_sha256[name]}


def saved_model(model, view, directory: Path) -> Path:
    """A SavedModel with one `serving_default` signature: input named after the view, 'logits'."""
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", lambda x: {"logits": model(x, training=False)},
        input_signature=[tf.TensorSpec([None, len(view.columns)], tf.float32, name=view.name)])
    archive.write_out(str(directory), verbose=False)
    return directory


def _calibration(x: np.ndarray, name: str):
    def gen():
        for k in range(0, len(x), 50):
            yield {name: x[k:k + 50]}
    return gen


def convert(sm_dir: Path, kind: str, calibration=None, front: list[str] | None = None) -> bytes:
    """SavedModel -> TFLite flatbuffer for one variant kind (builtin ops only)."""
    tf = quiet_import("tensorflow")
    with warnings.catch_warnings(), quiet_native_stderr():  # quantizer prints its options
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return _convert(tf, sm_dir, kind, calibration, front)


def _convert(tf, sm_dir, kind, calibration, front):
    c = tf.lite.TFLiteConverter.from_saved_model(str(sm_dir), signature_keys=["serving_default"])
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind != "float32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        c.target_spec.supported_types = [tf.float16]
    if kind in ("int8", "int8_full"):
        c.representative_dataset = calibration
        c.inference_input_type = c.inference_output_type = tf.float32
    if kind == "int8_full":
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if kind == "int8":
        return quantize_selective(c, calibration, front or [])
    return c.convert()


def quantize_selective(converter, calibration, float_nodes: list[str]) -> bytes:
    """Full-int8 PTQ except the ops producing `float_nodes`, which stay float32."""
    tf = quiet_import("tensorflow")
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=float_nodes, fully_quantize=False)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=calibration, debug_options=options)
    return debugger.get_nondebug_quantized_model()


def domain(x: np.ndarray, columns: tuple[str, ...]) -> dict:
    """Per-column and adjacent-colour [min, max] over the training rows."""
    cols = {c: [float(x[:, k].min()), float(x[:, k].max())] for k, c in enumerate(columns)}
    pos = {c: k for k, c in enumerate(columns)}
    colours = {}
    for a, b in zip(BANDS, BANDS[1:]):
        if a in pos and b in pos:
            d = x[:, pos[a]] - x[:, pos[b]]
            colours[f"{a}-{b}"] = [float(d.min()), float(d.max())]
    return {"rows": "student_train", "n": int(len(x)), "columns": cols, "colours": colours}


def model_card(run: RunData, stem: str, view, description: str, extra: dict | None = None, *,
               run_id: str | None = None, content: bytes | None = None) -> dict:
    """The JSON card shipped next to a .tflite file: input, labels, domain and provenance
    (run id, SHA-256 of the Keras model converted and of the .tflite file itself)."""
    source = "teacher" if stem.startswith("teacher") else "student"
    return {"model": f"{stem}.tflite", "variant": description, "signature": edge.SIGNATURE,
            **({"sha256": hashlib.sha256(content).hexdigest()} if content is not None else {}),
            "input": {"name": view.name, "columns": list(view.columns), "dtype": "float32",
                      "units": "SDSS model magnitudes (raw, not normalised)"},
            "output": {"name": "logits", "labels": list(LABELS),
                       "note": "logits; softmax gives class probabilities"},
            "labels": list(LABELS), "domain": domain(run.x_train[view.name], view.columns),
            "source": {"run": str(run.dir), "run_id": run_id, **run.source(source),
                       "data_sha256": run.data_sha256, "sdss_distill": __version__},
            **(extra or {})}


def folded_student(student, x_check: np.ndarray):
    """The student as plain Keras Dense layers on raw magnitudes: each MLP's front (colours,
    normalisation) folded into its first Dense layer; an ensemble's members side by side
    (layers `m<k>_dense_<j>`) under its `MeanProbability`. Returns the model and the names of
    its first Dense layers (the ones that read raw magnitudes)."""
    keras = quiet_import("keras")
    from sdss_distill.export.finetune import fold_student
    from sdss_distill.models.mlp import MeanProbability, ensemble_members, logits
    members = ensemble_members(student)
    x = inputs = keras.Input((len(get_view(STUDENT_VIEW).columns),), name=STUDENT_VIEW)
    outputs = []
    for k, member in enumerate(members or [student]):
        prefix = f"m{k}_" if members else ""
        h = x
        kernels, biases = fold_student(member)
        for j, (w, b) in enumerate(zip(kernels, biases)):
            last = j == len(kernels) - 1
            layer = keras.layers.Dense(w.shape[1], activation=None if last else "relu",
                                       name=prefix + ("logits" if last else f"dense_{j}"))
            h = layer(h)
            layer.set_weights([w, b])
        outputs.append(h)
    out = MeanProbability(name="mean_probability")(outputs) if members else outputs[0]
    model = keras.Model(inputs, out, name="student_folded")
    error = np.abs(logits(model, x_check) - logits(student, x_check)).max()
    if error > 1e-3:
        raise RuntimeError(f"folding the student's front changed its logits by {error:.2g}")
    fronts = [f"m{k}_{FRONT_LAYER}" for k in range(len(members))] if members else [FRONT_LAYER]
    return model, fronts


def int8_student_bytes(student, x_calibration: np.ndarray) -> bytes:
    """A student (plain MLP or ensemble) as its shipped int8 flatbuffer: fronts folded and kept
    float32 (float32 in and out), the rest int8, calibrated on `x_calibration` (raw
    magnitudes, the student-train rows); built in a temp dir, native logs silenced."""
    quiet_import("tensorflow")
    view = get_view(STUDENT_VIEW)
    x = np.asarray(x_calibration, "float32")
    with tempfile.TemporaryDirectory(prefix="sdss-int8-") as tmp, quiet_native_stderr():
        folded, fronts = folded_student(student, x)
        sm = saved_model(folded, view, Path(tmp) / "folded_sm")
        front = tflite_file.front_nodes(convert(sm, "float32"), fronts)
        return tflite_file.shrink(convert(sm, "int8", _calibration(x, view.name), front))


def _finetune(run: RunData, tmp: Path, quiet: bool) -> dict:
    """QAT and pruning in a tf_keras subprocess (tfmot needs Keras 2); returns its report."""
    from sdss_distill.export.finetune import fold_student
    from sdss_distill.models.mlp import logits as soft_targets
    x = run.x_train[STUDENT_VIEW]
    npz = tmp / "finetune.npz"
    kernels, biases = fold_student(run.student)
    np.savez(npz, x=x, y=run.y_train, x_test=run.x_test[STUDENT_VIEW], y_test=run.y_test,
             teacher_logits=soft_targets(run.teacher, run.x_train[run.teacher_view.name]),
             temperature=run.config["temperature"], alpha=run.config["alpha"],
             soft_loss=run.config.get("soft_loss", "kl"),
             seed=run.config["seed"], **{f"kernel_{k}": w for k, w in enumerate(kernels)},
             **{f"bias_{k}": b for k, b in enumerate(biases)})
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "sdss_distill.export.finetune", "--npz", str(npz),
                           "--out", str(tmp)], env=env, capture_output=True, text=True,
                          preexec_fn=functools.partial(die_with_parent, os.getpid()))
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"QAT/pruning subprocess failed (exit {proc.returncode}):\n{tail}")
    return json.loads((tmp / "finetune.json").read_text())


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """preexec_fn: the kernel SIGKILLs the child when its parent dies, even by SIGKILL (Linux
    prctl; elsewhere a no-op). On SIGINT/SIGTERM the parent unwinds and subprocess.run kills
    the child itself."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


def evaluate_file(path: Path, x: np.ndarray, y: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy, agreement with the Keras model and logit error, through ai_edge_litert."""
    logits = edge.EdgeClassifier(path).logits(x)
    pred = logits.argmax(axis=1)
    return {"size_bytes": path.stat().st_size,
            "test_accuracy": float((pred == y).mean()),
            "agreement": float((pred == reference.argmax(axis=1)).mean()),
            "max_abs_logit_error": float(np.abs(logits - reference).max())}


def export_run(run_dir: Path, *, quiet: bool = False, data: str | None = None,
               finetune: bool = True, invokes: int = 10_000, threads: int = 1) -> dict:
    """Convert, evaluate and time every variant of a run, written as a new version of the run;
    returns export.json's content."""
    say = (lambda *a: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rundir = RunDir(run_dir)
    base = rundir.current()  # verified against its manifest: no mixed or changed run
    rundir.check_writable()
    quiet_import("tensorflow")
    quiet_import("keras")
    run = RunData(base, data)
    run.dir = Path(run_dir)
    ensemble = ensemble_info(run.student)
    if ensemble:
        say(f"skipped {', '.join(FINETUNED)}: {ENSEMBLE_NO_FINETUNE}")
    finetune = finetune and not ensemble
    reuse = [] if finetune or ensemble else reusable_finetuned(run, say)
    keep = KEEP + [f"tflite/{stem}{suffix}" for stem in reuse for suffix in (".tflite", ".json")]
    with rundir.write(keep=keep, base=base) as layout:
        report = _export(run, layout, say, finetune=finetune, reuse=reuse, invokes=invokes,
                         threads=threads, ensemble=ensemble)
    say(f"wrote {run.dir / 'tflite'} and {run.dir / 'reports' / 'export.json'} "
        f"(run {layout.run_id})")
    return report


def reusable_finetuned(run: RunData, say) -> list[str]:
    """With --no-finetune: the QAT/pruned files of the current export that were fine-tuned
    from THIS student (their card records its SHA-256); they are kept, the others dropped."""
    keep = []
    for stem in FINETUNED:
        path = run.layout.tflite_file(stem)
        if not path.is_file():
            continue
        card = read_json(edge.card_path(path), fix="export the run again")
        source = card.get("source")
        if isinstance(source, dict) and source.get("model_sha256") == run.model_sha256["student"]:
            keep.append(stem)
            say(f"--no-finetune: keeping {stem} (fine-tuned from this run's student)")
        else:
            say(f"--no-finetune: dropping {stem} (fine-tuned from another student)")
    return keep


def ensemble_info(student) -> dict | None:
    """What export.json and the student cards record about an ensemble student (None for a
    plain MLP): its members' names and hidden widths and how they are combined."""
    from sdss_distill.models.mlp import ensemble_members
    members = ensemble_members(student)
    if not members:
        return None
    return {"combination": "mean probability: logits = log of the members' mean softmax",
            "members": [{"name": m.name, "hidden": [layer.units for layer in m.layers
                                                    if layer.__class__.__name__ == "Dense"][:-1]}
                        for m in members]}


def _export(run: RunData, layout: Layout, say, *, finetune: bool, reuse: list[str],
            invokes: int, threads: int, ensemble: dict | None = None) -> dict:
    from sdss_distill.models.mlp import logits
    out = layout.tflite
    sv, tv = run.student_view, run.teacher_view
    x_test, y_test = run.x_test[sv.name], run.y_test
    ref = {"student": logits(run.student, x_test), "teacher": logits(run.teacher, run.x_test[tv.name])}
    calibration = _calibration(run.x_train[sv.name], sv.name)
    files, diagnostics, tuned = {}, {}, {}
    skipped = {stem: ENSEMBLE_NO_FINETUNE for stem in FINETUNED} if ensemble else {}
    card = functools.partial(model_card, run, run_id=layout.run_id)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp:
        tmp = Path(tmp)
        sm = {"student": saved_model(run.student, sv, tmp / "student_sm"),
              "teacher": saved_model(run.teacher, tv, tmp / "teacher_sm")}
        for stem, kind in PTQ.items():
            files[stem] = (int8_student_bytes(run.student, run.x_train[sv.name])
                           if kind == "int8" else convert(sm["student"], kind),
                           DESCRIPTIONS[f"{kind}_ensemble" if ensemble and kind == "int8"
                                        else kind])
            if ensemble and kind == "dynamic" and "INT8" not in tflite_file.weight_types(
                    files[stem][0]):
                del files[stem]
                skipped[stem] = DYNAMIC_NO_OP
                say(f"skipped {stem}: {DYNAMIC_NO_OP}")
                continue
            say(f"converted {stem}")
        files["teacher_float32"] = (convert(sm["teacher"], "float32"), "float32")
        full = tmp / "student_int8_full.tflite"
        content = tflite_file.shrink(convert(sm["student"], "int8_full", calibration))
        write_atomic(full, content)
        _write_json(edge.card_path(full), card(full.stem, sv, DESCRIPTIONS["int8_full"],
                                               content=content))
        diagnostics["student_int8_full"] = {"description": DESCRIPTIONS["int8_full"],
                                            **evaluate_file(full, x_test, y_test, ref["student"])}
        if finetune:
            say("QAT and pruning in a tf_keras subprocess ...")
            tuned = _finetune(run, tmp, False)
            for stem, description in FINETUNED.items():
                files[stem] = ((tmp / f"{stem}.tflite").read_bytes(), description)
        for stem in reuse:
            old = read_json(edge.card_path(layout.tflite_file(stem)), fix="export the run again")
            files[stem] = (layout.tflite_file(stem).read_bytes(), FINETUNED[stem])
            if old.get("finetune"):
                tuned[stem] = old["finetune"]
    write_atomic(out / edge.LABELS_FILE, ("\n".join(LABELS) + "\n").encode())
    variants = {}
    for stem, (content, description) in files.items():
        bad = tflite_file.non_builtin(content)
        if bad:
            raise RuntimeError(f"{stem}: non-builtin operators {bad}; export needs builtins only")
        view, source = (tv, "teacher") if stem.startswith("teacher") else (sv, "student")
        path = layout.tflite_file(stem)
        content = tflite_file.shrink(content)
        write_atomic(path, content)
        extra = {"finetune": tuned.get(stem)} if stem in tuned else {}
        if ensemble and source == "student":
            extra["ensemble"] = ensemble
        _write_json(edge.card_path(path), card(stem, view, description, extra, content=content))
        weights = tflite_file.weight_types(content)
        if stem == "student_dynamic" and "INT8" not in weights:
            description += f": {DYNAMIC_NO_OP}"
        variants[stem] = {"description": description, "source": source,
                          "operators": sorted(set(tflite_file.operators(content))),
                          "weight_tensor_types": weights,
                          **evaluate_file(path, run.x_test[view.name], y_test, ref[source])}
        x_bench = run.x_test[view.name]
        variants[stem].update(edge.benchmark(path, x_bench, threads=threads, invokes=invokes))
        say(f"{stem:20s} {variants[stem]['size_bytes']:6d} B  acc "
            f"{variants[stem]['test_accuracy']:.2%}  agree {variants[stem]['agreement']:.2%}  "
            f"{variants[stem]['latency_us_median']:.1f} us")
    from sdss_distill.distill.metrics import keras_latency
    keras_ref = keras_latency(run.student, x_test, calls=min(invokes, 2000), budget_s=5.0)
    report = {
        "version": __version__, "run": str(run.dir), "run_id": layout.run_id,
        "parent_run_id": run.run_id,
        "models": {name: run.source(name) for name in ("student", "teacher")},
        "data_sha256": run.data_sha256,
        "variants": variants,
        "keras_student": {"test_accuracy": float((ref["student"].argmax(1) == y_test).mean()),
                          **keras_ref},
        "keras_teacher_test_accuracy": float((ref["teacher"].argmax(1) == y_test).mean()),
        "diagnostics": diagnostics, "finetune": tuned,
        **({"ensemble": ensemble, "skipped": skipped} if ensemble else {}),
        "latency_ratio_teacher_over_student": {
            stem: variants["teacher_float32"]["latency_us_median"] / v["latency_us_median"]
            for stem, v in variants.items() if v["source"] == "student"},
        "throughput_ratio_student_over_teacher": {
            stem: v["throughput_rows_per_s"] / variants["teacher_float32"]["throughput_rows_per_s"]
            for stem, v in variants.items() if v["source"] == "student"},
        "targets": targets(variants.get("student_int8"), ref["student"], y_test),
        "machine": {**edge.machine(), "threads": threads},
        "test_rows": int(len(y_test)),
        "commands": {"export": f"{PROG} --run {run.dir}",
                     "bench": f"python -m sdss_distill.edge bench --model FILE --threads {threads}"},
    }
    _write_json(layout.export_json, report)
    write_atomic(layout.export_md, markdown(report).encode())
    return report


def targets(v: dict | None, keras_logits: np.ndarray, y: np.ndarray) -> dict:
    """The issue's int8 targets, checked against the measured numbers."""
    if v is None:
        return {}
    keras_acc = float((keras_logits.argmax(1) == y).mean())
    return {"int8_agreement_ge_99.5pct": v["agreement"] >= 0.995,
            "int8_accuracy_within_0.2pt": abs(v["test_accuracy"] - keras_acc) <= 0.002 + 1e-12,
            "int8_size_le_4KB": v["size_bytes"] <= 4096}


def markdown(report: dict) -> str:
    """export.json as a Markdown table."""
    rows = [f"| {stem} | {v['description']} | {v['size_bytes']:,} | {v['test_accuracy']:.2%} | "
            f"{v['agreement']:.2%} | {v['latency_us_median']:.1f} | {v['latency_us_p99']:.1f} | "
            f"{v['throughput_rows_per_s']:,.0f} |" for stem, v in report["variants"].items()]
    k = report["keras_student"]
    rows.append(f"| Keras student (reference) | keras.Model call | | {k['test_accuracy']:.2%} | "
                f"100.00% | {k['latency_us_median']:.1f} | {k['latency_us_p99']:.1f} | "
                f"{k['throughput_rows_per_s']:,.0f} |")
    diag = [f"- `{s}` ({d['description']}): accuracy {d['test_accuracy']:.2%}, agreement "
            f"{d['agreement']:.2%}, {d['size_bytes']:,} B (not shipped)"
            for s, d in report["diagnostics"].items()]
    m = report["machine"]
    ratio = report["latency_ratio_teacher_over_student"]
    return "\n".join([
        "# LiteRT export", "",
        f"Run `{report['run']}`; {report['test_rows']} test rows. Agreement: share of test rows "
        f"where the .tflite file predicts the same class as its Keras model (teacher file: "
        f"Keras teacher). Latency: batch 1, {next(iter(report['variants'].values()))['invokes']}"
        f" invokes; throughput: batches of 1024 rows; {m['threads']} thread(s), ai_edge_litert, "
        f"on {m['cpu']} ({m['cores']} cores).", "",
        "| file | variant | size (B) | test accuracy | agreement | latency median (us) "
        "| latency p99 (us) | throughput (rows/s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|", *rows, "",
        "Teacher / student batch-1 latency ratio (same run): " + ", ".join(
            f"{s} {r:.2f}x" for s, r in ratio.items()) + ".",
        "Student / teacher batched throughput ratio: " + ", ".join(
            f"{s} {r:.1f}x" for s, r in report["throughput_ratio_student_over_teacher"].items())
        + ".", "",
        *ensemble_lines(report),
        "Diagnostics:", *diag, "",
        "Int8 targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}"
                                     for k, ok in report["targets"].items()), "",
    ])


def ensemble_lines(report: dict) -> list[str]:
    """export.md's note on an ensemble student: its members and the files not written."""
    if "ensemble" not in report:
        return []
    members = ", ".join(f"`{m['name']}` ({'x'.join(map(str, m['hidden']))})"
                        for m in report["ensemble"]["members"])
    return [f"Student: an ensemble of {len(report['ensemble']['members'])} members ({members}), "
            f"all in one file per variant; {report['ensemble']['combination']}. In `student_int8` every "
            f"member's first layer stays float32.", "",
            "Not written: " + "; ".join(f"`{s}` ({why})" for s, why in report["skipped"].items())
            + ".", ""]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, metavar="DIR",
                   help="run path from train --out (the symlink to its current version)")
    p.add_argument("--data", help="the run's table, if its recorded path does not resolve here "
                   "(default: the path in split.json)")
    p.add_argument("--no-finetune", action="store_true",
                   help="skip QAT and pruning (faster); keeps existing fine-tuned files made from "
                   "this run's student, drops others (default: fine-tune)")
    p.add_argument("--invokes", type=int, default=10_000,
                   help="batch-1 calls timed per file (default: 10000)")
    p.add_argument("--threads", type=int, default=1, help="LiteRT interpreter threads (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks for input errors (default: off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        if args.invokes < 1 or args.threads < 1:
            raise InputError(f"--invokes and --threads must be >= 1, got {args.invokes}, "
                             f"{args.threads}")
        export_run(Path(args.run), quiet=args.quiet, data=args.data,
                   finetune=not args.no_finetune, invokes=args.invokes, threads=args.threads)
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())

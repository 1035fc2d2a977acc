"""Export a run: convert, evaluate and time every variant, written as a new version of the run
(sdss_distill.runs.rundir): the run is read once, verified against its manifest, and switched
to the exported version in one step, so a killed export leaves the old run whole. export.json
and every card name the run id and the SHA-256 of the Keras model converted.

Ensemble student (`--method student-ensemble`): one file per variant holds every member and
the mean-probability combination; each member's front is folded into its own first layer,
which stays float32 in student_int8 (int8 after it, as for a subclass student: the 16x8
quantizer fails on their heads). No QAT/pruning files, and no student_dynamic when the
converter would leave it unquantized.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sdss_distill import __version__
from sdss_distill.core import tflite_file
from sdss_distill.core.cli import program
from sdss_distill.core.errors import InputError, check_signals
from sdss_distill.core.io import PARENT_ENV, quiet_import, read_json, write_atomic
from sdss_distill.core.machine import machine
from sdss_distill.core.schema import LABELS, STUDENT, STUDENT_VIEW, TEACHER
from sdss_distill.edge import classifier as edge
from sdss_distill.edge.bench import benchmark
from sdss_distill.export.convert import (
    calibration,
    convert,
    int8_student_bytes,
    saved_model,
    student_activations,
)
from sdss_distill.export.fold import fold_student
from sdss_distill.export.report import markdown, targets
from sdss_distill.export.source import RunData, model_card
from sdss_distill.runs.rundir import Layout, RunDir

PROG = program("export")
ENSEMBLE_NO_FINETUNE = ("QAT/pruning is not done for ensemble students: the tf_keras "
                        "fine-tuning handles one MLP")
DYNAMIC_NO_OP = "no-op here, the converter only quantizes tensors of >= 1024 weights"
SUBCLASS_NO_FINETUNE = ("QAT/pruning is not done for subclass students: the tf_keras "
                        "fine-tuning distils 3 class logits, the student emits subclass logits")
PTQ = {"student_float32": "float32", "student_float16": "float16",
       "student_dynamic": "dynamic", "student_int8": "int8"}
FINETUNED = {"student_qat_int8": "QAT int8 (tfmot), front float32",
             "student_pruned_int8": "magnitude-pruned (tfmot) + int8, front float32"}
DESCRIPTIONS = {"float32": "float32", "float16": "float16 weights",
                "dynamic": "dynamic-range int8 weights",
                "int8": "int8 weights, int16 activations (TFLite 16x8), PTQ on the student-train "
                "rows; colours+normalisation folded into a float32 first layer",
                "int8_ensemble": "int8 PTQ (weights and activations) on the student-train rows; "
                "each member's colours+normalisation folded into its float32 first layer",
                "int8_subclass": "int8 PTQ (weights and activations) on the student-train rows; "
                "colours+normalisation folded into a float32 first layer",
                "int8_full": "int8 PTQ, everything incl. the input quantized"}


def _write_json(path: Path, doc) -> None:
    write_atomic(path, json.dumps(doc, indent=2) + "\n")


KEEP = ["models", "run.json", "split.json", "reports/report.json", "reports/report.md",
        Layout.FIGURE_DIR]
"""What an export carries over from the version it read: everything but tflite/ and export.*."""


def _finetune(run: RunData, tmp: Path, quiet: bool) -> dict:
    """QAT and pruning in a tf_keras subprocess (tfmot needs Keras 2); returns its report."""
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
    env[PARENT_ENV] = str(os.getpid())  # the child dies with us (no preexec_fn: no fork hooks)
    proc = subprocess.run([sys.executable, "-m", "sdss_distill.export.finetune", "--npz", str(npz),
                           "--out", str(tmp)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"QAT/pruning subprocess failed (exit {proc.returncode}):\n{tail}")
    return json.loads((tmp / "finetune.json").read_text())


def evaluate_file(path: Path, x: np.ndarray, y: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy, its drop from the Keras model's (points), agreement with the Keras model and
    logit error, through ai_edge_litert."""
    logits = edge.EdgeClassifier(path).logits(x)
    pred = logits.argmax(axis=1)
    return {"size_bytes": path.stat().st_size,
            "test_accuracy": float((pred == y).mean()),
            "accuracy_drop_points": 100 * float((reference.argmax(1) == y).mean() - (pred == y).mean()),
            "agreement": float((pred == reference.argmax(axis=1)).mean()),
            "max_abs_logit_error": float(np.abs(logits - reference).max())}


def export_run(run_dir: Path, *, quiet: bool = False, data: str | None = None,
               finetune: bool = True, invokes: int = 10_000, threads: int = 1,
               trained=None, mcu: bool = False) -> dict:
    """Convert, evaluate and time every variant of a run, written as a new version of the run;
    returns export.json's content. `trained` (runs.pipeline.Trained) hands over the rows and
    models of the version just written, when it is still the run's current one. `mcu`: also
    RUN/mcu/, student_int8 as C99 (export.mcu)."""
    say = (lambda *a: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rundir = RunDir(run_dir)
    base = rundir.current()  # verified against its manifest: no mixed or changed run
    rundir.check_writable()
    quiet_import("tensorflow")
    quiet_import("keras")
    if trained is not None and trained.rows.layout.run_id == base.run_id:
        run = RunData(base, rows=trained.rows, models=trained.models)  # just trained: no re-read
    else:
        run = RunData(base, data)
    run.dir = Path(run_dir)
    ensemble = ensemble_info(run.student)
    if mcu and ensemble:
        raise InputError(f"--mcu: the C generator is made and tested for a single-MLP student; "
                         f"this run's student is an ensemble of {len(ensemble['members'])} "
                         f"members; export without --mcu")
    no_finetune = no_finetune_reason(run.student)
    if no_finetune:
        say(f"skipped {', '.join(FINETUNED)}: {no_finetune}")
    finetune = finetune and not no_finetune
    reuse = [] if finetune or no_finetune else reusable_finetuned(run, say)
    keep = KEEP + [f"tflite/{stem}{suffix}" for stem in reuse for suffix in (".tflite", ".json")]
    with rundir.write(keep=keep, base=base) as layout:
        report = _export(run, layout, say, finetune=finetune, reuse=reuse, invokes=invokes,
                         threads=threads, ensemble=ensemble, no_finetune=no_finetune)
        if mcu:
            _write_mcu(run, layout, report, say)
    say(f"wrote {run.dir / 'tflite'} and {run.dir / 'reports' / 'export.json'} "
        f"(run {layout.run_id})")
    return report


def _write_mcu(run: RunData, layout: Layout, report: dict, say) -> None:
    """RUN/mcu/: student_int8 as dependency-free C99, measured against the Keras student."""
    from sdss_distill.export.mcu import MCU_DIR, write_mcu
    from sdss_distill.export.mcu_sim import evaluate
    from sdss_distill.models.mlp import logits
    content = layout.tflite_file("student_int8").read_bytes()
    write_mcu(layout.root / MCU_DIR, content, run_id=layout.run_id)
    x_test = run.x_test[STUDENT_VIEW]
    report["mcu"] = evaluate(content, x_test, run.y_test, logits(run.student, x_test))
    _write_json(layout.export_json, report)
    write_atomic(layout.export_md, markdown(report).encode())
    say(f"wrote {run.dir / MCU_DIR} (C99 sources of student_int8)")


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
        if isinstance(source, dict) and source.get("model_sha256") == run.model_sha256[STUDENT]:
            keep.append(stem)
            say(f"--no-finetune: keeping {stem} (fine-tuned from this run's student)")
        else:
            say(f"--no-finetune: dropping {stem} (fine-tuned from another student)")
    return keep


def no_finetune_reason(student) -> str | None:
    """Why QAT/pruning is not done for this student (None when it is): the tf_keras child
    fine-tunes one plain MLP with 3 class logits."""
    from sdss_distill.models.mlp import ensemble_members, subclass_head
    if ensemble_members(student):
        return ENSEMBLE_NO_FINETUNE
    if subclass_head(student) is not None:
        return SUBCLASS_NO_FINETUNE
    return None


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
            invokes: int, threads: int, ensemble: dict | None = None,
            no_finetune: str | None = None) -> dict:
    """Convert every variant into the new version's tflite/, measure each, write the reports."""
    from sdss_distill.models.mlp import logits
    sv, tv = run.student_view, run.teacher_view
    ref = {STUDENT: logits(run.student, run.x_test[sv.name]),
           TEACHER: logits(run.teacher, run.x_test[tv.name])}
    card = functools.partial(model_card, run, run_id=layout.run_id)
    skipped = {stem: no_finetune for stem in FINETUNED} if no_finetune else {}
    with tempfile.TemporaryDirectory(prefix=".export-", dir=layout.tflite) as tmp:
        tmp = Path(tmp)
        files = _convert_variants(run, tmp, say, ensemble, skipped)
        diagnostics = {"student_int8_full": _int8_full(run, tmp, card, ref[STUDENT])}
        tuned = {}
        if finetune:
            check_signals()  # a signal dropped in a __del__: stop before QAT's minute
            say("QAT and pruning in a tf_keras subprocess ...")
            tuned = _finetune(run, tmp, False)
            for stem, description in FINETUNED.items():
                files[stem] = ((tmp / f"{stem}.tflite").read_bytes(), description)
        for stem in reuse:
            old = read_json(edge.card_path(layout.tflite_file(stem)), fix="export the run again")
            files[stem] = (layout.tflite_file(stem).read_bytes(), FINETUNED[stem])
            if old.get("finetune"):
                tuned[stem] = old["finetune"]
    write_atomic(layout.tflite / edge.LABELS_FILE, ("\n".join(LABELS) + "\n").encode())
    variants = {stem: _write_variant(run, layout, stem, content, description, card, ref,
                                     tuned, ensemble, invokes, threads, say)
                for stem, (content, description) in files.items()}
    report = _report(run, layout, variants, ref, diagnostics, tuned, ensemble, skipped,
                     invokes, threads)
    _write_json(layout.export_json, report)
    write_atomic(layout.export_md, markdown(report).encode())
    return report


def _convert_variants(run: RunData, tmp: Path, say, ensemble, skipped: dict) -> dict:
    """{stem: (flatbuffer, description)} of the post-training variants and the teacher."""
    sv, tv = run.student_view, run.teacher_view
    sm = {STUDENT: saved_model(run.student, sv, tmp / "student_sm"),
          TEACHER: saved_model(run.teacher, tv, tmp / "teacher_sm")}
    files = {}
    for stem, kind in PTQ.items():
        content = (int8_student_bytes(run.student, run.x_train[sv.name]) if kind == "int8"
                   else convert(sm[STUDENT], kind))
        if ensemble and kind == "dynamic" and "INT8" not in tflite_file.weight_types(content):
            skipped[stem] = DYNAMIC_NO_OP
            say(f"skipped {stem}: {DYNAMIC_NO_OP}")
            continue
        files[stem] = (content, DESCRIPTIONS[_description_key(run.student, kind, ensemble)])
        say(f"converted {stem}")
    files["teacher_float32"] = (convert(sm[TEACHER], "float32"), "float32")
    return files


def _description_key(student, kind: str, ensemble) -> str:
    """DESCRIPTIONS' key for a PTQ kind: student_int8 is 16x8 for a plain MLP (int8 for an
    ensemble or a subclass student, convert.student_activations)."""
    if kind != "int8":
        return kind
    if ensemble:
        return "int8_ensemble"
    return "int8" if student_activations(student) == "int16" else "int8_subclass"


def _int8_full(run: RunData, tmp: Path, card, reference: np.ndarray) -> dict:
    """The fully int8 student (quantized input), measured for comparison and not shipped."""
    sv = run.student_view
    full = tmp / "student_int8_full.tflite"
    content = tflite_file.shrink(convert(tmp / "student_sm", "int8_full",
                                         calibration(run.x_train[sv.name], sv.name)))
    write_atomic(full, content)
    _write_json(edge.card_path(full), card(full.stem, sv, DESCRIPTIONS["int8_full"],
                                           content=content))
    return {"description": DESCRIPTIONS["int8_full"],
            **evaluate_file(full, run.x_test[sv.name], run.y_test, reference)}


def _write_variant(run: RunData, layout: Layout, stem: str, content: bytes, description: str,
                   card, ref: dict, tuned: dict, ensemble, invokes: int, threads: int,
                   say) -> dict:
    """Write one .tflite file and its card; return its measurements for export.json."""
    check_signals()  # each variant's evaluation and benchmark is a safe point
    bad = tflite_file.non_builtin(content)
    if bad:
        raise RuntimeError(f"{stem}: non-builtin operators {bad}; export needs builtins only")
    view, source = ((run.teacher_view, TEACHER) if stem.startswith(TEACHER)
                    else (run.student_view, STUDENT))
    path = layout.tflite_file(stem)
    content = tflite_file.shrink(content)
    write_atomic(path, content)
    extra = {"finetune": tuned.get(stem)} if stem in tuned else {}
    if ensemble and source == STUDENT:
        extra["ensemble"] = ensemble
    _write_json(edge.card_path(path), card(stem, view, description, extra, content=content))
    weights = tflite_file.weight_types(content)
    if stem == "student_dynamic" and "INT8" not in weights:
        description += f": {DYNAMIC_NO_OP}"
    x = run.x_test[view.name]
    v = {"description": description, "source": source,
         "operators": sorted(set(tflite_file.operators(content))), "weight_tensor_types": weights,
         **evaluate_file(path, x, run.y_test, ref[source]),
         **benchmark(path, x, threads=threads, invokes=invokes)}
    say(f"{stem:20s} {v['size_bytes']:6d} B  acc {v['test_accuracy']:.2%}  agree "
        f"{v['agreement']:.2%}  {v['latency_us_median']:.1f} us")
    return v


def _report(run: RunData, layout: Layout, variants: dict, ref: dict, diagnostics: dict,
            tuned: dict, ensemble, skipped: dict, invokes: int, threads: int) -> dict:
    """export.json's content."""
    from sdss_distill.distill.metrics import keras_latency
    x_test, y_test = run.x_test[run.student_view.name], run.y_test
    keras_ref = keras_latency(run.student, x_test, calls=min(invokes, 2000), budget_s=5.0)
    teacher = variants["teacher_float32"]
    students = {stem: v for stem, v in variants.items() if v["source"] == STUDENT}
    return {
        "version": __version__, "run": str(run.dir), "run_id": layout.run_id,
        "parent_run_id": run.run_id,
        "models": {name: run.source(name) for name in (STUDENT, TEACHER)},
        "data_sha256": run.data_sha256,
        "variants": variants,
        "keras_student": {"test_accuracy": float((ref[STUDENT].argmax(1) == y_test).mean()),
                          **keras_ref},
        "keras_teacher_test_accuracy": float((ref[TEACHER].argmax(1) == y_test).mean()),
        "diagnostics": diagnostics, "finetune": tuned,
        **({"ensemble": ensemble} if ensemble else {}), **({"skipped": skipped} if skipped else {}),
        "latency_ratio_teacher_over_student": {
            stem: teacher["latency_us_median"] / v["latency_us_median"] for stem, v in students.items()},
        "throughput_ratio_student_over_teacher": {
            stem: v["throughput_rows_per_s"] / teacher["throughput_rows_per_s"]
            for stem, v in students.items()},
        "targets": targets(variants.get("student_int8"), ref[STUDENT], y_test),
        "machine": {**machine(), "threads": threads},
        "test_rows": int(len(y_test)),
        "commands": {"export": f"{PROG} --run {run.dir}",
                     "bench": f"python -m sdss_distill.edge bench --model FILE --threads {threads}"},
    }

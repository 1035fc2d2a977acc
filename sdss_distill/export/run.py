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
import sys
import tempfile
from pathlib import Path

import numpy as np

from sdss_distill import __version__
from sdss_distill.core import tflite_file
from sdss_distill.core.cli import program
from sdss_distill.core.conformal import DEFAULT_LEVEL
from sdss_distill.core.errors import InputError, check_signals
from sdss_distill.core.io import quiet_import, read_json, write_atomic
from sdss_distill.core.machine import machine
from sdss_distill.core.schema import LABELS, STUDENT, STUDENT_VIEW, TEACHER
from sdss_distill.distill import registry
from sdss_distill.distill.metrics import keras_latency
from sdss_distill.edge import classifier as edge
from sdss_distill.edge import sets as edge_sets
from sdss_distill.edge.bench import benchmark
from sdss_distill.export import variants as var
from sdss_distill.export.calibrate import ExportCalibration, r_of, set_coverage
from sdss_distill.export.convert import calibration, convert
from sdss_distill.export.mcu import MCU_DIR, write_mcu
from sdss_distill.export.mcu_sim import evaluate
from sdss_distill.export.report import markdown, targets
from sdss_distill.export.source import RunData, model_card, shipped_zphot
from sdss_distill.export.variants import DESCRIPTIONS, DYNAMIC_NO_OP, FINETUNED
from sdss_distill.models.mlp import ensemble_members, logits
from sdss_distill.runs.rundir import Layout, RunDir

PROG = program("export")


KERAS_BUDGET_S = 0.5
"""Seconds spent timing the Keras student (the reference row of export.md): 5 s before, a
sixth of a default export; its median is indicative (the LiteRT files are the measured ones)."""


def _write_json(path: Path, doc) -> None:
    write_atomic(path, json.dumps(doc, indent=2) + "\n")


KEEP = ["models", "run.json", "split.json", "reports/report.json", "reports/report.md",
        Layout.FIGURE_DIR]
"""What an export carries over from the version it read: everything but tflite/ and export.*."""


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
               finetune: bool | None = None, invokes: int = 10_000, threads: int = 1,
               trained=None, mcu: bool = False, everything: bool = False) -> dict:
    """Convert, evaluate and time a run's variants, written as a new version of the run;
    returns export.json's content. Default: student_float32, student_int8 (chosen on dev rows,
    export.choose) and teacher_float32; `everything` (`--all`) adds float16, dynamic, the
    fully int8 diagnostic and QAT/pruning (`finetune`, default: `everything`). `trained`
    (runs.pipeline.Trained) hands over the rows and models of the version just written, when
    it is still the run's current one. `mcu`: also RUN/mcu/, student_int8 as C99
    (export.mcu); on a run already exported from this student, only mcu/ is written."""
    say = (lambda *a: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    finetune = everything if finetune is None else finetune
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
    run.calibration = ExportCalibration(run)  # issue 24: T folded before any conversion
    run.calibration.fold(run)
    ensemble = ensemble_info(run.student)
    if mcu and ensemble:
        raise InputError(f"--mcu: the C generator is made and tested for a single-MLP student; "
                         f"this run's student is an ensemble of {len(ensemble['members'])} "
                         f"members; export without --mcu")
    if mcu and not everything and not finetune:
        previous = mcu_only(run, base)
        if previous is not None:
            return _add_mcu(run, rundir, base, previous, say)
    no_finetune = no_finetune_reason(run.config)
    if no_finetune:
        say(f"skipped {', '.join(FINETUNED)}: {no_finetune}")
    finetune = finetune and not no_finetune
    reuse = [] if finetune or no_finetune else reusable_finetuned(run, say)
    keep = KEEP + [f"tflite/{stem}{suffix}" for stem in reuse for suffix in (".tflite", ".json")]
    with rundir.write(keep=keep, base=base) as layout:
        report = _export(run, layout, say, finetune=finetune, reuse=reuse, invokes=invokes,
                         threads=threads, ensemble=ensemble, no_finetune=no_finetune,
                         everything=everything)
        if mcu:
            _write_mcu(run, layout, report, say)
    say(f"wrote {run.dir / 'tflite'} and {run.dir / 'reports' / 'export.json'} "
        f"(run {layout.run_id})")
    return report


def mcu_only(run: RunData, base: Layout) -> dict | None:
    """export.json of the current version when it already holds an export of THIS student
    (same Keras model SHA-256, student_int8 present) and no mcu/ yet; else None."""
    if not base.export_json.is_file() or not base.tflite_file("student_int8").is_file():
        return None
    report = read_json(base.export_json, fix="export the run again")
    models = report.get("models") if isinstance(report, dict) else None
    student = models.get(STUDENT) if isinstance(models, dict) else None
    if not isinstance(student, dict) or student.get("model_sha256") != run.model_sha256[STUDENT]:
        return None
    if (base.root / MCU_DIR).exists() and "mcu" in report:
        return None  # complete already: a full export rewrites it as asked
    return report


def _add_mcu(run: RunData, rundir: RunDir, base: Layout, report: dict, say) -> dict:
    """`export --mcu` on a run already exported from this student: a new version that keeps
    every file and adds mcu/ (and the C model's scores in export.json), nothing re-converted."""
    keep = [*KEEP, "tflite", "reports/export.json", "reports/export.md"]
    with rundir.write(keep=keep, base=base) as layout:
        report = {**report, "run_id": layout.run_id, "parent_run_id": base.run_id}
        for path in sorted(layout.tflite.glob("*.tflite")):  # cards name the version they are in
            card = read_json(edge.card_path(path), fix="export the run again")
            card["source"] = {**card.get("source", {}), "run_id": layout.run_id}
            _write_json(edge.card_path(path), card)
        _write_mcu(run, layout, report, say)
    say(f"{run.dir}: already exported from this student; added {MCU_DIR}/ only "
        f"(run {layout.run_id})")
    return report


def _write_mcu(run: RunData, layout: Layout, report: dict, say) -> None:
    """RUN/mcu/: student_int8 as dependency-free C99, measured against the Keras student."""
    content = layout.tflite_file("student_int8").read_bytes()
    card = read_json(edge.card_path(layout.tflite_file("student_int8")), fix="export the run again")
    write_mcu(layout.root / MCU_DIR, content, run_id=layout.run_id,
              sets=mcu_sets(layout.tflite_file("student_int8")),
              z_error_scale=(card.get("zphot") or {}).get("error_scale"))
    x_test = run.x_test[STUDENT_VIEW]
    report["mcu"] = evaluate(content, x_test, run.y_test, logits(run.student, x_test))
    _write_json(layout.export_json, report)
    write_atomic(layout.export_md, markdown(report).encode())
    say(f"wrote {run.dir / MCU_DIR} (C99 sources of student_int8)")


def mcu_sets(path: Path, level: float = DEFAULT_LEVEL):
    """(level, thresholds) of the prediction sets for the C header, from the file's card (the
    thresholds `edge predict --sets` applies); None when the card has no material."""
    card = read_json(edge.card_path(path), fix="export the run again")
    if "conformal" not in (card.get("calibration") or {}):
        return None
    return level, edge_sets.thresholds(card, edge.card_path(path), level, LABELS).tolist()


def reusable_finetuned(run: RunData, say) -> list[str]:
    """Without fine-tuning (no --all, or --no-finetune): the QAT/pruned files of the current
    export that were fine-tuned from THIS student (their card records its SHA-256); they are
    kept, the others dropped."""
    keep = []
    for stem in FINETUNED:
        path = run.layout.tflite_file(stem)
        if not path.is_file():
            continue
        card = read_json(edge.card_path(path), fix="export the run again")
        source = card.get("source")
        if isinstance(source, dict) and source.get("model_sha256") == run.model_sha256[STUDENT]:
            keep.append(stem)
            say(f"keeping {stem} (fine-tuned from this run's student)")
        else:
            say(f"dropping {stem} (fine-tuned from another student)")
    return keep


def no_finetune_reason(config: dict) -> str | None:
    """Why QAT/pruning is not done for this run's student (None when it is): the tf_keras
    child fine-tunes one plain MLP with 3 class logits; the run's method declares whether its
    student is one (the registry, `Method.no_finetune`)."""
    return registry.get(config["method"]).no_finetune or None


def ensemble_info(student) -> dict | None:
    """What export.json and the student cards record about an ensemble student (None for a
    plain MLP): its members' names and hidden widths and how they are combined."""
    members = ensemble_members(student)
    if not members:
        return None
    return {"combination": "mean probability: logits = log of the members' mean softmax",
            "members": [{"name": m.name, "hidden": [layer.units for layer in m.layers
                                                    if layer.__class__.__name__ == "Dense"][:-1]}
                        for m in members]}


def _export(run: RunData, layout: Layout, say, *, finetune: bool, reuse: list[str],
            invokes: int, threads: int, ensemble: dict | None = None,
            no_finetune: str | None = None, everything: bool = False) -> dict:
    """Convert the variants into the new version's tflite/ (export.variants: the default set,
    or every one with `everything`), pick student_int8 on dev rows, measure each file, write
    the reports. The QAT/pruning child, when asked for, runs alongside the conversions."""
    sv, tv = run.student_view, run.teacher_view
    ref = {STUDENT: logits(run.student, run.x_test[sv.name]),
           TEACHER: logits(run.teacher, run.x_test[tv.name])}
    card = functools.partial(model_card, run, run_id=layout.run_id)
    skipped = {stem: no_finetune for stem in FINETUNED} if no_finetune else {}
    with tempfile.TemporaryDirectory(prefix=".export-", dir=layout.tflite) as tmp:
        tmp, child = Path(tmp), None
        try:
            if finetune:
                check_signals()  # a signal dropped in a __del__: stop before QAT's minute
                say("QAT and pruning in a tf_keras subprocess, alongside the conversions ...")
                child = var.start_finetune(run, tmp)
            files = var.convert_ptq(run, tmp, say, ensemble, skipped, everything)
            candidates = var.int8_files(run, ensemble)
            diagnostics = ({"student_int8_full": _int8_full(run, tmp, card, ref[STUDENT])}
                           if everything else {})
            tuned = var.finish_finetune(child, tmp) if child is not None else {}
        finally:
            var.stop(child)
        finetuned = {stem: ((tmp / f"{stem}.tflite").read_bytes(), FINETUNED[stem])
                     for stem in (FINETUNED if finetune else ())}
        for stem in reuse:
            old = read_json(edge.card_path(layout.tflite_file(stem)), fix="export the run again")
            finetuned[stem] = (layout.tflite_file(stem).read_bytes(), FINETUNED[stem])
            if old.get("finetune"):
                tuned[stem] = old["finetune"]
    # the QAT child builds the class head only: with a redshift head it is no candidate
    if var.QAT_CANDIDATE in finetuned and run.zphot is None:
        candidates[var.QAT_CANDIDATE] = (tflite_file.shrink(finetuned[var.QAT_CANDIDATE][0]),
                                         DESCRIPTIONS[var.QAT_CANDIDATE])  # as it ships
    int8, choice = var.pick_int8(run, candidates, say)
    files = {**{k: v for k, v in files.items() if k.startswith(STUDENT)}, "student_int8": int8,
             "teacher_float32": files["teacher_float32"], **finetuned}
    write_atomic(layout.tflite / edge.LABELS_FILE, ("\n".join(LABELS) + "\n").encode())
    notes = {"student_int8": {"chosen": {"candidate": choice["chosen"],
                                         "reason": choice["reason"]}}}
    variants = {stem: _write_variant(run, layout, stem, content, description, card, ref,
                                     tuned, ensemble, invokes, threads, say, notes.get(stem))
                for stem, (content, description) in files.items()}
    report = _report(run, layout, variants, ref, diagnostics, tuned, ensemble, skipped,
                     invokes, threads)
    report["student_int8_choice"] = choice
    report["sets"] = _sets(run, layout)
    report["zphot"] = run.zphot and shipped_zphot(run, layout.tflite_file("student_int8"))
    _write_json(layout.export_json, report)
    write_atomic(layout.export_md, markdown(report).encode())
    return report


def _sets(run: RunData, layout: Layout) -> dict:
    """student_int8's 0.9 prediction sets on the test rows, with its card's thresholds."""
    path = layout.tflite_file("student_int8")
    card = read_json(edge.card_path(path), fix="export the run again")
    x = run.x_test[run.student_view.name]
    return {"file": "student_int8", **set_coverage(card["calibration"], edge.EdgeClassifier(
        path).logits(x), run.y_test, r_of(x))}


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
                   say, note: dict | None = None) -> dict:
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
    extra = {**({"finetune": tuned.get(stem)} if stem in tuned else {}), **(note or {})}
    if ensemble and source == STUDENT:
        extra["ensemble"] = ensemble
    if source == STUDENT:
        extra["calibration"] = run.calibration.card(
            lambda x: edge_sets.logits_of(content, stem, x))
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
    x_test, y_test = run.x_test[run.student_view.name], run.y_test
    keras_ref = keras_latency(run.student, x_test, calls=min(invokes, 2000), budget_s=KERAS_BUDGET_S)
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

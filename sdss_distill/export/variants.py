"""The variants one export converts: what the default needs, what `--all` adds, the QAT/pruning
child started before the in-process conversions so both run at once, and the pick of
`student_int8` on dev rows (export.choose).

Default (`export --run R`): student_float32, student_int8 (the chosen int8 candidate) and
teacher_float32, plus any QAT/pruned files a previous `--all` fine-tuned from this student.
`--all` adds student_float16, student_dynamic, the fully int8 diagnostic and the QAT/pruning
child (student_qat_int8, student_pruned_int8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from sdss_distill.core import tflite_file
from sdss_distill.core.children import child_env
from sdss_distill.core.schema import STUDENT, STUDENT_VIEW, TEACHER
from sdss_distill.export import choose
from sdss_distill.export.convert import convert, int8_candidates, saved_model
from sdss_distill.export.fold import fold_student
from sdss_distill.models.mlp import logits
from sdss_distill.models.mlp import logits as soft_targets

DYNAMIC_NO_OP = "no-op here, the converter only quantizes tensors of >= 1024 weights"
DEFAULT_PTQ = {"student_float32": "float32"}
ALL_PTQ = {"student_float32": "float32", "student_float16": "float16",
           "student_dynamic": "dynamic"}
FINETUNED = {"student_qat_int8": "QAT int8 (tfmot), front float32",
             "student_pruned_int8": "magnitude-pruned (tfmot) + int8, front float32"}
CANDIDATES = {"int16": "ptq_16x8", "int8": "ptq_int8"}
"""int8_candidates' activation type -> the candidate's name in export.json."""
QAT_CANDIDATE = "student_qat_int8"
DESCRIPTIONS = {"float32": "float32", "float16": "float16 weights",
                "dynamic": "dynamic-range int8 weights",
                "ptq_16x8": "int8 weights, int16 activations (TFLite 16x8), PTQ on the "
                "student-train rows; colours+normalisation folded into a float32 first layer",
                "ptq_int8": "int8 weights and activations, PTQ on the student-train rows; "
                "colours+normalisation folded into a float32 first layer",
                "ptq_int8_ensemble": "int8 PTQ (weights and activations) on the student-train "
                "rows; each member's colours+normalisation folded into its float32 first layer",
                QAT_CANDIDATE: "QAT int8 (tfmot): int8 weights and activations after a float32 "
                "first layer, fine-tuned with the run's distillation loss",
                "int8_full": "int8 PTQ, everything incl. the input quantized"}


def start_finetune(run, tmp: Path) -> subprocess.Popen:
    """Start QAT and pruning in a tf_keras child (tfmot needs Keras 2), which dies with this
    process; the parent converts the other variants meanwhile (finish_finetune collects)."""
    npz = tmp / "finetune.npz"
    kernels, biases = fold_student(run.student)
    np.savez(npz, x=run.x_train[STUDENT_VIEW], y=run.y_train, x_test=run.x_test[STUDENT_VIEW],
             y_test=run.y_test,
             teacher_logits=soft_targets(run.teacher, run.x_train[run.teacher_view.name]),
             temperature=run.config["temperature"], alpha=run.config["alpha"],
             soft_loss=run.config.get("soft_loss", "kl"),
             seed=run.config["seed"], **{f"kernel_{k}": w for k, w in enumerate(kernels)},
             **{f"bias_{k}": b for k, b in enumerate(biases)})
    env = child_env(TF_USE_LEGACY_KERAS="1", PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]))
    log = open(tmp / "finetune.log", "w+")  # noqa: SIM115 - closed by finish_finetune
    proc = subprocess.Popen([sys.executable, "-m", "sdss_distill.export.finetune", "--npz",
                             str(npz), "--out", str(tmp)], env=env, stdout=subprocess.DEVNULL,
                            stderr=log)
    proc.log = log
    return proc


def finish_finetune(proc: subprocess.Popen, tmp: Path) -> dict:
    """Wait for the child; its report (finetune.json), or its last stderr lines as an error."""
    try:
        code = proc.wait()
        proc.log.seek(0)
        stderr = proc.log.read()
    finally:
        proc.log.close()
    if code != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"QAT/pruning subprocess failed (exit {code}):\n{tail}")
    return json.loads((tmp / "finetune.json").read_text())


def stop(proc: subprocess.Popen | None) -> None:
    """Kill a child still running (the export failed or was stopped first)."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
        proc.log.close()


def convert_ptq(run, tmp: Path, say, ensemble, skipped: dict, everything: bool) -> dict:
    """{stem: (flatbuffer, description)}: the float PTQ variants (all of them with
    `everything`) and the teacher; student_int8 is added by pick_int8."""
    sv, tv = run.student_view, run.teacher_view
    sm = saved_model(run.student, sv, tmp / "student_sm")
    files = {}
    for stem, kind in (ALL_PTQ if everything else DEFAULT_PTQ).items():
        content = convert(sm, kind)
        if ensemble and kind == "dynamic" and "INT8" not in tflite_file.weight_types(content):
            skipped[stem] = DYNAMIC_NO_OP
            say(f"skipped {stem}: {DYNAMIC_NO_OP}")
            continue
        files[stem] = (content, DESCRIPTIONS[kind])
        say(f"converted {stem}")
    files["teacher_float32"] = (convert(saved_model(run.teacher, tv, tmp / "teacher_sm"),
                                        "float32"), "float32")
    say("converted teacher_float32")
    return files


def int8_files(run, ensemble) -> dict[str, tuple[bytes, str]]:
    """{candidate: (flatbuffer, description)}: the PTQ candidates for student_int8."""
    files = int8_candidates(run.student, run.x_train[STUDENT_VIEW])
    out = {}
    for kind, content in files.items():
        name = CANDIDATES[kind]
        key = f"{name}_ensemble" if ensemble and kind == "int8" else name
        out[name] = (content, DESCRIPTIONS.get(key, DESCRIPTIONS[name]))
    return out


def pick_int8(run, candidates: dict[str, tuple[bytes, str]], say) -> tuple[tuple, dict]:
    """((student_int8's flatbuffer, its description), export.json's `student_int8_choice`):
    the candidate with the most dev rows right within the budget (export.choose)."""
    reference = logits(run.student, run.x_dev)
    scores = choose.dev_scores({k: c for k, (c, _) in candidates.items()}, run.x_dev,
                               run.y_dev, reference)
    chosen, reason = choose.choose(scores)
    say(f"student_int8 = {reason}")
    return candidates[chosen], choose.choice_record(scores, chosen, reason, len(run.y_dev))


def source_of(stem: str) -> str:
    """Which Keras model a file was converted from."""
    return TEACHER if stem.startswith(TEACHER) else STUDENT

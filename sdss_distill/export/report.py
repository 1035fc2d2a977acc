"""export.json's int8 targets and its Markdown table (export.md)."""

from __future__ import annotations

import numpy as np

from sdss_distill.core.schema import LABELS


def targets(v: dict | None, keras_logits: np.ndarray, y: np.ndarray) -> dict:
    """The int8 bar (docs/guide/microcontroller.md): at most 0.15 points below the float
    student, the same class on at least 99.7 % of test rows, at most 4 KB."""
    if v is None:
        return {}
    keras_acc = float((keras_logits.argmax(1) == y).mean())
    return {"int8_agreement_ge_99.7pct": v["agreement"] >= 0.997,
            "int8_drop_le_0.15pt": keras_acc - v["test_accuracy"] <= 0.0015 + 1e-12,
            "int8_size_le_4KB": v["size_bytes"] <= 4096}


def markdown(report: dict) -> str:
    """export.json as a Markdown table."""
    rows = [f"| {stem} | {v['description']} | {v['size_bytes']:,} | {v['test_accuracy']:.2%} | "
            f"{v['accuracy_drop_points']:+.2f} | {v['agreement']:.2%} | "
            f"{v['latency_us_median']:.1f} | {v['latency_us_p99']:.1f} | "
            f"{v['throughput_rows_per_s']:,.0f} |" for stem, v in report["variants"].items()]
    k = report["keras_student"]
    rows.append(f"| Keras student (reference) | keras.Model call | | {k['test_accuracy']:.2%} | "
                f"| 100.00% | {k['latency_us_median']:.1f} | {k['latency_us_p99']:.1f} | "
                f"{k['throughput_rows_per_s']:,.0f} |")
    diag = [f"- `{s}` ({d['description']}): accuracy {d['test_accuracy']:.2%} (drop "
            f"{d['accuracy_drop_points']:+.2f} points), agreement "
            f"{d['agreement']:.2%}, {d['size_bytes']:,} B (not shipped)"
            for s, d in report["diagnostics"].items()]
    m = report["machine"]
    ratio = report["latency_ratio_teacher_over_student"]
    return "\n".join([
        "# LiteRT export", "",
        f"Run `{report['run']}`; {report['test_rows']} test rows. Drop: the file's test accuracy "
        f"below its Keras model's, in points. Agreement: share of test rows "
        f"where the .tflite file predicts the same class as its Keras model (teacher file: "
        f"Keras teacher). Latency: batch 1, {next(iter(report['variants'].values()))['invokes']}"
        f" invokes; throughput: batches of 1024 rows; {m['threads']} thread(s), ai_edge_litert, "
        f"on {m['cpu']} ({m['cores']} cores).", "",
        "| file | variant | size (B) | test accuracy | drop (points) | agreement "
        "| latency median (us) | latency p99 (us) | throughput (rows/s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "Teacher / student batch-1 latency ratio (same run): " + ", ".join(
            f"{s} {r:.2f}x" for s, r in ratio.items()) + ".",
        "Student / teacher batched throughput ratio: " + ", ".join(
            f"{s} {r:.1f}x" for s, r in report["throughput_ratio_student_over_teacher"].items())
        + ".", "",
        *choice_lines(report),
        *ensemble_lines(report),
        "Diagnostics:", *diag, "",
        *mcu_lines(report),
        *sets_lines(report),
        *zphot_lines(report),
        "Int8 targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}"
                                     for k, ok in report["targets"].items()), "",
    ])


def choice_lines(report: dict) -> list[str]:
    """export.md's note on which int8 candidate ships as student_int8, and why."""
    c = report.get("student_int8_choice")
    if not c:
        return []
    rows = [f"| `{name}` | {v['size_bytes']:,} | {v['dev_accuracy']:.2%} | "
            f"{v['dev_agreement']:.2%} |" for name, v in c["candidates"].items()]
    return [f"`student_int8` is `{c['chosen']}`, chosen on {c['dev_rows']:,} dev rows (the "
            f"run's non-test rows; the test rows above had no say). Rule: {c['rule']}. "
            f"Why: {c['reason']}.", "",
            "| candidate | size (B) | dev accuracy | dev agreement with the float student |",
            "|---|---:|---:|---:|", *rows, ""]


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


def mcu_lines(report: dict) -> list[str]:
    """export.md's line on RUN/mcu/ (written with --mcu)."""
    if "mcu" not in report:
        return []
    m = report["mcu"]
    return [f"`mcu/` (student_int8 as C99; scores as TFLite Micro computes them): accuracy "
            f"{m['test_accuracy']:.2%} (drop {m['accuracy_drop_points']:+.2f} points), agreement "
            f"{m['agreement']:.2%}, same class as LiteRT's student_int8 on "
            f"{m['agreement_with_litert']:.2%} of rows.", ""]


def sets_lines(report: dict) -> list[str]:
    """student_int8's prediction sets on the test rows (issue 24), or why there are none."""
    s = report.get("sets")
    if not s:
        return []
    if "test" not in s:
        return [f"Prediction sets: not available ({s.get('not_available')}).", ""]
    t = s["temperature"]
    per = s["test"]["per_class"]
    by_r = "; ".join(f"{b}: " + ", ".join(
        f"{c} {100 * g['per_class'][c]['coverage']:.1f} %" for c in per
        if g["per_class"][c]["coverage"] is not None)
        for b, g in s["test_by_r"].items() if g["rows"])
    return [f"Prediction sets at {s['level']:g} ({s['file']}, thresholds from its card, "
            f"calibration rows only): coverage on the test rows " + ", ".join(
                f"{c} {100 * g['coverage']:.1f} % ({g['rows']} rows)" for c, g in per.items())
            + f"; mean set size {s['test']['mean_set_size']:.3f}. Per r bin: {by_r}. "
            f"Temperature T = {t['temperature']:.3f} "
            f"({t.get('folded', 'applied' if t['applied'] else 'not applied')}).", ""]


def zphot_lines(report: dict) -> list[str]:
    """The shipped file's photometric redshift on the test rows, per class (issue 24), or
    nothing for a student without a redshift head."""
    z = report.get("zphot")
    if not z:
        return []
    per = "; ".join(f"{c} ({z[c]['n']:,} rows): sigma_NMAD {z[c]['sigma_nmad']:.4f}, bias "
                    f"{z[c]['bias']:+.4f}, outliers {100 * z[c]['outliers']:.1f} %, z_phot_err "
                    f"covers {100 * z[c]['coverage']:.1f} %" for c in LABELS if z[c]["n"])
    return [f"Photometric redshift ({z['file']}, z_phot_err = k (1 + z_phot), k "
            f"{z['error_scale']:.4f} from its card, fitted on {z['fitted_on']}) on the test "
            f"rows: {per}. Use z_phot for objects classified as galaxies.", ""]

"""report.md's calibration sections (issue 24): the temperature and ECE per r bin before and
after it, prediction-set coverage per class and per r bin, and selections at a purity. ECE,
coverage, purity and completeness are all in percent here."""

from __future__ import annotations

DASH = "–"


def _p(v, digits: int = 1) -> str:
    return DASH if v is None else f"{v:.{digits}f} %"


def _f(v) -> str:
    return DASH if v is None else f"{100 * v:.1f} %"


def calibration_markdown(report: dict) -> list[str]:
    """The sections, or one line saying why they are missing."""
    cal = report.get("calibration")
    if not cal:
        return []
    if "not_available" in cal:
        return ["## Calibration, prediction sets and selections", "",
                f"Not available: {cal['not_available']}.", ""]
    return [*_temperature(cal), *_sets(cal), *_selections(cal)]


def _temperature(cal: dict) -> list[str]:
    t, rows = cal["temperature"], cal["rows"]
    e, by_r = t["ece_percent"], t["ece_percent_by_r_test"]
    state = ("applied (folded into the exported files)" if t["applied"]
             else f"not applied (fitted {t['fitted']:.3f} did not lower the NLL)")
    lines = ["## Calibration (student)", "",
             f"Calibration rows: {rows['n']:,}, {rows['definition']} (row set `{rows['row_set']}`, "
             f"fraction {rows['fraction']}, seed {rows['seed']}).",
             f"Temperature T = {t['temperature']:.3f}, {state}; NLL on calibration rows "
             f"{t['nll_before']:.4f} before, {t['nll_after']:.4f} after. {t['rule']}.", "",
             "| ECE (percent) | calibration rows | test rows |", "|---|---:|---:|",
             f"| before T | {_p(e['cal_before'], 2)} | {_p(e['test_before'], 2)} |",
             f"| after T | {_p(e['cal_after'], 2)} | {_p(e['test_after'], 2)} |", "",
             "ECE per r bin on the test rows (percent):", "",
             "| r bin | " + " | ".join(by_r["before"]) + " |",
             "|---|" + "---:|" * len(by_r["before"]),
             *(f"| {when} T | " + " | ".join(_p(v, 2) for v in by_r[when].values()) + " |"
               for when in ("before", "after")), ""]
    by_s = t.get("ece_percent_by_sample_test")
    if by_s:
        lines += ["ECE per sample on the test rows (percent): " + "; ".join(
            f"{g} {_p(by_s['before'][g], 2)} before, {_p(by_s['after'][g], 2)} after T"
            for g in by_s["before"]) + ".", ""]
    return lines


def _sets(cal: dict) -> list[str]:
    s = cal["sets"]
    labels = list(s["thresholds"])
    head = "| rows | " + " | ".join(f"coverage {c} (rows)" for c in labels) + " | mean set size |"

    def row(name, g):
        cells = " | ".join(f"{_f(g['per_class'][c]['coverage'])} ({g['per_class'][c]['rows']})"
                           for c in labels)
        size = DASH if g["mean_set_size"] is None else f"{g['mean_set_size']:.3f}"
        return f"| {name} | {cells} | {size} |"
    return [f"## Prediction sets at {s['level']:g} (test rows)", "",
            f"Mondrian split-conformal sets from the calibration rows; guarantee: {s['scope']}. "
            "Thresholds on 1 - p: " + ", ".join(f"{c} {q:.4f}" for c, q in s["thresholds"].items())
            + ".", "", head, "|---|" + "---:|" * (len(labels) + 1),
            row("all test rows", s["test"]),
            *(row(f"r {b}" if not b.startswith("r") else b, g) for b, g in s["test_by_r"].items()),
            ""]


def _selections(cal: dict) -> list[str]:
    rows = []
    for c, sel in cal["selections"].items():
        for p in sel["points"]:
            if p["threshold"] is None:
                rows.append(f"| {c} | {_f(p['target'])} | not reachable | | | | |")
                continue
            rows.append(f"| {c} | {_f(p['target'])} | {p['threshold']:.3f} | {_f(p['purity'])} | "
                        f"{_f(p['completeness'])} | {_f(p['test_purity'])} | "
                        f"{_f(p['test_completeness'])} |")
    return ["## Selections at a purity", "",
            "Threshold on p_class chosen on the calibration rows under the training mix (the "
            "most complete one reaching the purity); then measured on the test rows.", "",
            "| class | target purity | threshold | expected purity | expected completeness "
            "| test purity | test completeness |", "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]

"""report.md, all of the run report's Markdown: the summary (`markdown`: every model's scores,
per class, timings), then the scores by population (sample, r-magnitude bin, training domain)
and the run's figures; a SIMULATED first line when the rows are simulated."""

from __future__ import annotations

from sdss_distill.core.schema import LABELS
from sdss_distill.runs import zphot_figure
from sdss_distill.runs.report_sets import calibration_markdown

DASH = "–"


def _pct(v) -> str:
    return DASH if v is None else f"{100 * v:.1f} %"


def _ece(v) -> str:
    """ECE in %, as accuracy (and as the figures draw it); two decimals: it is a few %."""
    return DASH if v is None else f"{100 * v:.2f} %"


def _num(v, digits: int = 3) -> str:
    return DASH if v is None else f"{v:.{digits}f}"


def _row(model: str, group: str, g: dict) -> str:
    recall = " | ".join(_pct(g["recall"][c]) + f" ({g['support'][c]})" for c in LABELS)
    return (f"| {model} | {group} | {g['rows']:,} | {_pct(g['accuracy'])} | "
            f"{_num(g['log_loss'])} | {_ece(g['ece'])} | {recall} |")


def _table(title: str, column: str, rows: list[str], note: str) -> list[str]:
    head = f"| model | {column} | rows | accuracy | log loss | ECE | " + " | ".join(
        f"recall {c} (rows)" for c in LABELS) + " |"
    return [f"## {title}", "", note, "", head, "|---|---|" + "---:|" * (4 + len(LABELS)),
            *rows, ""]


def population_markdown(report: dict) -> list[str]:
    """Per-sample, per-r-bin and in/out-of-domain tables for every model (or why not)."""
    ev = report.get("evaluation") or {}
    if "not_available" in ev:
        return ["## Scores by population", "", f"Per sample, r magnitude and domain: "
                f"{ev['not_available']}.", ""]
    models = {n: m for n, m in report["models"].items() if "population" in m}
    out = []
    if ev.get("samples"):
        rows = [_row(n, s, g) for n, m in models.items()
                for s, g in (m["population"]["by_sample"] or {}).items()]
        out += _table("Scores by sample", "sample", rows,
                      "Test rows of each packaged table (bright: DR14, faint: DR17).")
    rows = [_row(n, b, g) for n, m in models.items() for b, g in m["population"]["by_r_mag"].items()]
    out += _table("Scores by r magnitude", "r bin (mag)", rows,
                  f"{ev['r_mag_definition']}. ECE: {ev['ece_bins']}; {DASH}: no rows.")
    dom = ev["domain"]
    rows = [_row(n, where, m["domain"][key]) for n, m in models.items()
            for key, where in (("in_domain", "in domain"), ("out_of_domain", "flagged (out)"))]
    out += _table("Scores inside and outside the training domain", "domain", rows,
                  f"Domain of the {dom['n']:,} student-train rows: {dom['definition']}. "
                  f"Test rows: {dom['test_rows_in_domain']:,} in, "
                  f"{dom['test_rows_out_of_domain']:,} flagged.")
    return out


def report_markdown(report: dict) -> str:
    """The whole report.md."""
    lines = []
    if report.get("simulated"):
        lines += [f"**SIMULATED DATA.** {report['note']}", ""]
    lines += [markdown(report).rstrip("\n"), "", *population_markdown(report),
              *zphot_figure.markdown(report)]
    lines += calibration_markdown(report)
    figures = report.get("figures") or []
    if figures:
        lines += ["## Figures", "", "Each PNG has the CSV of the numbers it draws next to it.", "",
                  *(f"- `{f}`" for f in figures), ""]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """report.json as a short human-readable Markdown page."""
    def pct(v):
        return "" if v is None else f"{v:.2%}"

    def num(v, digits=0):
        return "" if v is None else f"{v:,.{digits}f}"

    rows = []
    for name, m in report["models"].items():
        lat = m.get("latency", {})
        rows.append(f"| {name} | {m['role']} | {m['view']} | {m['rows']} | {num(m['parameters'])} | "
                    f"{pct(m['test_accuracy'])} | {_ece(m['test_ece'])} | {m['macro_f1']:.3f} | "
                    f"{pct(m.get('agreement_with_teacher'))} | {num(m['epochs'])} | "
                    f"{num(m['train_s'], 1)} | {num(lat.get('latency_us_median'))} | "
                    f"{num(lat.get('throughput_rows_per_s'))} |")
    per_class = []
    for name, m in report["models"].items():
        cells = " | ".join(f"{m['per_class'][c]['precision']:.3f} / {m['per_class'][c]['recall']:.3f}"
                           f" / {m['per_class'][c]['f1']:.3f}" for c in LABELS)
        per_class.append(f"| {name} | {cells} |")
    data, cfg, timing = report["data"], report["config"], report["timing"]
    return "\n".join([
        "# sdss-distill run report", "",
        f"Data: `{data['path']}` (sha256 {data['sha256'][:12]}...), {data['cleaning']}.",
        f"Split (seed {cfg['seed']}): " + ", ".join(
            f"{k} {v:,}" for k, v in data["split_sizes"].items()) + " rows.",
        f"Method `{report['method']}`: temperature {cfg['temperature']}, alpha {cfg['alpha']}, "
        f"soft loss {cfg['soft_loss']}; teacher view `{cfg['teacher_view']}`.", "",
        "| model | role | view | trained on | parameters | test accuracy | ECE | macro F1 "
        "| agreement with teacher | epochs | fit (s) | Keras batch-1 latency (us) "
        "| Keras batched (rows/s) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "Per class, precision / recall / F1:", "",
        "| model | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS), *per_class, "",
        f"Timings on {report['machine']['cpu']} ({report['machine']['cores']} cores): fitting "
        f"{timing['fit_s']:.1f} s, the method with evaluation {timing['method_s']:.1f} s, the "
        f"whole command {timing['total_s']:.1f} s ({timing['definition']}). Keras latency: "
        f"a direct `model(x)` call, batch 1 (median); batched: all test rows per call.", "",
    ])

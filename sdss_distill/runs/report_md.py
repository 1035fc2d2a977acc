"""report.md: the summary metrics.markdown writes, then the scores by population (sample,
r-magnitude bin, training domain) and the run's figures; a SIMULATED first line when the rows
are simulated."""

from __future__ import annotations

from sdss_distill.core.schema import LABELS

DASH = "–"


def _pct(v) -> str:
    return DASH if v is None else f"{100 * v:.1f} %"


def _num(v, digits: int = 3) -> str:
    return DASH if v is None else f"{v:.{digits}f}"


def _row(model: str, group: str, g: dict) -> str:
    recall = " | ".join(_pct(g["recall"][c]) + f" ({g['support'][c]})" for c in LABELS)
    return (f"| {model} | {group} | {g['rows']:,} | {_pct(g['accuracy'])} | "
            f"{_num(g['log_loss'])} | {_num(g['ece'])} | {recall} |")


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
    from sdss_distill.distill.metrics import markdown
    lines = []
    if report.get("simulated"):
        lines += [f"**SIMULATED DATA.** {report['note']}", ""]
    lines += [markdown(report).rstrip("\n"), "", *population_markdown(report)]
    figures = report.get("figures") or []
    if figures:
        lines += ["## Figures", "", "Each PNG has the CSV of the numbers it draws next to it.", "",
                  *(f"- `{f}`" for f in figures), ""]
    return "\n".join(lines)

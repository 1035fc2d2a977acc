"""A run's report (JSON and Markdown) and its files, written as one new version of the run."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime

from sdss_distill import __version__
from sdss_distill.core.io import write_atomic
from sdss_distill.core.machine import machine
from sdss_distill.core.schema import STUDENT, TEACHER
from sdss_distill.data.synth import SIMULATED_NOTE
from sdss_distill.runs import zphot_figure
from sdss_distill.runs.config import Config
from sdss_distill.runs.figures import write_figures
from sdss_distill.runs.report_md import report_markdown
from sdss_distill.runs.rundir import RunDir
from sdss_distill.runs.sets_figures import write as write_sets_figures

STREAMED_NOTE = ("not available for streamed runs: the streamed scorer of earlier "
                 "versions accumulated whole-test-set metrics only, not per sample, r-magnitude bin, "
                 "training domain or reliability bin")
"""What a report written by an older streamed run holds in place of population groups (a
streamed run now scores the same groups, except per sample: runs.stream.evaluate)."""


def simulated_fields(simulated: bool) -> dict:
    """The report's top-level "simulated" flag, and a note when the rows are simulated."""
    return {"simulated": True, "note": SIMULATED_NOTE} if simulated else {"simulated": False}


def build_report(cfg: Config, prepared, results: dict, started: float, seconds: float,
                 evaluation: dict | None = None) -> dict:
    """report.json: config, data, every model's metrics (`evaluation`: how the population and
    domain groups were drawn, population.Populations.summary), machine and timings."""
    cleaning = prepared.cleaning
    train_s = sum(m["train_s"] or 0 for m in results.values() if m["role"] != "combination")
    return {
        **simulated_fields(prepared.simulated),
        "version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.to_dict(), "method": cfg.method,
        "method_settings": dataclasses.asdict(cfg.settings()),
        "data": {"path": prepared.path, "sha256": prepared.sha256,
                 "cleaning": cleaning.summary(), "rows_read": cleaning.rows_read,
                 "rows_kept": cleaning.rows_kept, "dropped": cleaning.dropped,
                 "split_sizes": prepared.split_sizes()},
        "evaluation": evaluation or {"not_available": "no population groups were computed"},
        **models_and_timing(results, train_s, seconds, started),
    }


UNITS = {"rates": "fractions from 0 to 1 (accuracy, recall, precision, F1, ECE, agreement, "
                   "shares); report.md and the figures show the same numbers in %",
         "log_loss": "nats per row", "latency": "microseconds", "time": "seconds"}
"""The report's units, stated once in report.json itself."""


def models_and_timing(results: dict, fit_s: float, method_s: float, started: float) -> dict:
    """The report's models, teacher/student latency ratio, machine and timings (one definition
    for in-memory and streamed runs)."""
    return {
        "units": UNITS,
        "models": results,
        "latency_ratio_teacher_over_student": (
            results[TEACHER]["latency"]["latency_us_median"]
            / results[STUDENT]["latency"]["latency_us_median"]),
        "machine": machine(),
        "timing": {"definition": "fit_s: summed wall time of every model.fit of the run; "
                                 "method_s: the method including evaluation on the test rows; "
                                 "total_s: the whole command up to writing the files, "
                                 "TensorFlow import included",
                   "fit_s": round(fit_s, 2), "method_s": round(method_s, 2),
                   "total_s": round(time.perf_counter() - started, 2)},
    }


def save_run(rundir: RunDir, models: dict, parts, report: dict) -> None:
    """Write the run as a new version and switch to it in one step (all or nothing).

    Nothing is carried over: a retrained run has no stale tflite/ or export report.
    """
    with rundir.write() as layout:
        report["run_id"] = layout.run_id
        for name, model in models.items():
            model.save(layout.model(name))
        parts.save(layout.split_json, data_sha256=report["data"]["sha256"],
                   data_path=report["data"]["path"])
        run_info = {k: report[k] for k in ("simulated", "version", "created", "config", "data",
                                           "run_id")}
        write_atomic(layout.run_json, json.dumps(run_info, indent=2))
        report["figures"] = (write_figures(report, layout) + zphot_figure.write(report, layout)
                             + write_sets_figures(report, layout))
        write_atomic(layout.report_json, json.dumps(report, indent=2))
        write_atomic(layout.report_md, report_markdown(report))

import pytest

from sdss_distill import experiment


def fake_report(seed, teacher, student, baseline):
    models = {name: {"test_accuracy": acc, "agreement_with_teacher": 0.97}
              for name, acc in (("teacher", teacher), ("student", student), ("baseline", baseline))}
    return {"config": {"seed": seed, "out": f"runs/seed{seed}", "alpha": 0.7}, "models": models,
            "latency_ratio_teacher_over_student": 2.0, "timing": {"total_s": 20.0 + seed},
            "machine": {"cpu": "test"}}


def test_summary_mean_std_and_wins():
    reports = [fake_report(0, 0.99, 0.97, 0.96), fake_report(1, 0.98, 0.96, 0.96),
               fake_report(2, 0.97, 0.95, 0.96)]
    s = experiment.summarise(reports)
    assert s["seeds"] == [0, 1, 2]
    assert s["test_accuracy"]["teacher"]["mean"] == pytest.approx(0.98)
    assert s["test_accuracy"]["teacher"]["std"] == pytest.approx(0.01)  # ddof=1
    assert s["student_beats_baseline"] == {"wins": 1, "ties": 1, "of": 3}
    assert "seed" not in s["config"] and s["config"]["alpha"] == 0.7
    assert s["run_seconds"]["max"] == 22.0
    md = experiment.markdown(s)
    assert "| teacher | 98.00% ± 1.00% |" in md and "beats the baseline in 1 of 3 seeds (1 ties)" in md

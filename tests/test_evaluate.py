import numpy as np
import pytest

from sdss_distill.distill import metrics as evaluate

LOGITS = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
TRUTH = np.array([0, 1, 2, 2])


def test_classification_metrics():
    m = evaluate.classification(TRUTH, LOGITS)
    assert m["test_accuracy"] == 0.75
    assert m["confusion_matrix"]["rows_true_cols_predicted"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert m["per_class"]["STAR"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                      "support": 2}
    assert m["per_class"]["GALAXY"]["precision"] == 0.5


def test_teacher_student_agreement_and_kl():
    same = evaluate.teacher_student(LOGITS, LOGITS)
    assert same == {"teacher_student_kl": pytest.approx(0.0, abs=1e-12),
                    "agreement_with_teacher": 1.0}
    other = evaluate.teacher_student(LOGITS, LOGITS[::-1])
    assert other["agreement_with_teacher"] == 0.5 and other["teacher_student_kl"] > 0.1


def test_latency_keys():
    class Model:
        def __call__(self, x, training=False):
            return x

    lat = evaluate.keras_latency(Model(), np.zeros((10, 5), "float32"), calls=50)
    assert lat["invokes"] == 50 and lat["batch"] == 10
    assert 0 < lat["latency_us_median"] <= lat["latency_us_p99"]
    assert lat["throughput_rows_per_s"] > 0

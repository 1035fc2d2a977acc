"""`sdss_distill.export` on a small real run: files, builtin ops, signatures, parity, report."""

import json

import numpy as np
import pytest

from sdss_distill import edge, export, tflite_file
from sdss_distill.schema import BANDS, LABELS

STUDENT_FILES = ("student_float32", "student_float16", "student_dynamic", "student_int8",
                 "student_qat_int8", "student_pruned_int8")
FILES = (*STUDENT_FILES, "teacher_float32")


@pytest.fixture(scope="module")
def run_dir(exported_run):
    return exported_run


@pytest.fixture(scope="module")
def run_data(run_dir):
    return export.RunData(run_dir)


@pytest.fixture(scope="module")
def report(run_dir):
    return json.loads((run_dir / "reports" / "export.json").read_text())


pytestmark = pytest.mark.slow


def test_export_writes_every_variant_with_card_and_labels(run_dir, report):
    out = run_dir / "tflite"
    assert sorted(p.stem for p in out.glob("*.tflite")) == sorted(FILES)
    assert (out / "labels.txt").read_text().split() == list(LABELS)
    for stem in FILES:
        card = json.loads((out / f"{stem}.json").read_text())
        assert card["labels"] == list(LABELS)
        view = "physical" if stem.startswith("teacher") else "photometric"
        assert card["input"]["name"] == view
        assert tuple(card["input"]["columns"][:5]) == BANDS
        assert set(card["domain"]["columns"]) == set(card["input"]["columns"])
    assert set(report["variants"]) == set(FILES)
    assert (run_dir / "reports" / "export.md").read_text().count("| student_") == 6


@pytest.mark.parametrize("stem", FILES)
def test_only_builtin_operators(run_dir, stem):
    content = (run_dir / "tflite" / f"{stem}.tflite").read_bytes()
    ops = tflite_file.operators(content)
    assert ops and tflite_file.non_builtin(content) == []
    assert not any(op.startswith(("CUSTOM", "Flex")) for op in ops)
    # The interpreter, without delegates, runs exactly the ops the flatbuffer lists.
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=content,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    assert [d["op_name"] for d in interp._get_ops_details()] == ops


@pytest.mark.parametrize("stem", FILES)
def test_serving_default_signature_has_named_input(run_dir, stem):
    clf = edge.EdgeClassifier(run_dir / "tflite" / f"{stem}.tflite")
    sig = clf.interpreter.get_signature_list()
    view = "physical" if stem.startswith("teacher") else "photometric"
    assert sig == {"serving_default": {"inputs": [view], "outputs": ["logits"]}}


def test_int8_student_keeps_raw_magnitudes_float(run_dir):
    """The int8 file takes float32 magnitudes; its int8 part starts after the first layer."""
    content = (run_dir / "tflite" / "student_int8.tflite").read_bytes()
    ops = tflite_file.operators(content)
    assert ops[0] == "FULLY_CONNECTED" and ops[1] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    assert tflite_file.weight_types(content).get("INT8", 0) >= 2


@pytest.mark.parametrize("stem", FILES)
def test_parity_with_keras_on_test_rows(run_data, report, stem):
    source = run_data.teacher if stem.startswith("teacher") else run_data.student
    view = run_data.teacher_view if stem.startswith("teacher") else run_data.student_view
    x, y = run_data.x_test[view.name], run_data.y_test
    keras_logits = source.predict(x, verbose=0)
    logits = edge.EdgeClassifier(run_data.dir / "tflite" / f"{stem}.tflite").logits(x)
    agreement = (logits.argmax(1) == keras_logits.argmax(1)).mean()
    if stem.endswith("float32") or stem == "student_dynamic":
        np.testing.assert_allclose(logits, keras_logits, atol=1e-3)
    elif stem == "student_float16":
        assert agreement >= 0.995
    else:  # int8 variants; QAT and pruning also fine-tune, so they may move a little more
        assert agreement >= (0.98 if stem == "student_int8" else 0.95)
    entry = report["variants"][stem]
    assert entry["agreement"] == pytest.approx(agreement)
    assert entry["test_accuracy"] == pytest.approx((logits.argmax(1) == y).mean())
    assert entry["size_bytes"] == (run_data.dir / "tflite" / f"{stem}.tflite").stat().st_size


def test_full_int8_input_quantization_is_measured(report):
    full = report["diagnostics"]["student_int8_full"]
    assert full["agreement"] <= report["variants"]["student_int8"]["agreement"]


def test_report_has_timings_machine_and_pruning(report):
    for v in report["variants"].values():
        assert v["latency_us_p99"] >= v["latency_us_median"] > 0
        assert v["throughput_rows_per_s"] > 0
    assert report["machine"]["cpu"] and report["machine"]["threads"] == 1
    assert set(report["latency_ratio_teacher_over_student"]) == set(STUDENT_FILES)
    pruned = report["finetune"]["student_pruned_int8"]
    assert pruned["sparsity_per_layer"]["dense_1"] == pytest.approx(0.5, abs=0.02)
    assert pruned["sparsity_per_layer"]["dense_0"] == 0.0


def test_int8_student_is_small(report):
    assert report["variants"]["student_int8"]["size_bytes"] <= 4096


def test_missing_run_is_one_line_error(tmp_path, capsys):
    assert export.main(["--run", str(tmp_path), "--no-finetune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a training run" in err[0] and "run.json" in err[0]


def test_folding_the_front_keeps_the_logits():
    from sdss_distill.models import build_mlp
    from sdss_distill.qat import fold_student, mlp_logits
    from sdss_distill.schema import get_view
    rng = np.random.default_rng(1)
    x = (rng.normal(18, 2, (64, 5)) + rng.normal(0, 0.5, (64, 1))).astype("float32")
    student = build_mlp(get_view("photometric"), (6, 5), x, name="student")
    kernels, biases = fold_student(student)
    assert [k.shape for k in kernels] == [(5, 6), (6, 5), (5, 3)]
    np.testing.assert_allclose(mlp_logits(kernels, biases, x), student.predict(x, verbose=0),
                               atol=1e-4)

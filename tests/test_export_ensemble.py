"""`sdss_distill.export` on a tiny real `student-ensemble` run: one file per variant holding
every member, int8 with each member's first layer float32, and `int8_student_bytes`."""

import json

import numpy as np
import pytest

from sdss_distill.core import tflite_file
from sdss_distill.core.schema import LABELS
from sdss_distill.edge import classifier as edge
from sdss_distill.export import cli as export_cli
from sdss_distill.export.convert import int8_student_bytes
from sdss_distill.export.source import RunData

WIDTHS = [[4], [6, 6]]
SHIPPED = ("student_float32", "student_float16", "student_int8", "teacher_float32")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(real_table, tmp_path_factory):
    from sdss_distill import train
    out = tmp_path_factory.mktemp("ensemble") / "run"
    assert train.main(["--data", str(real_table), "--out", str(out), "--method", "student-ensemble",
                       "--epochs", "8", "--teacher-hidden", "16", "--set",
                       f"student-ensemble.widths={json.dumps(WIDTHS)}", "--quiet"]) == 0
    assert export_cli.main(["--run", str(out), "--all", "--no-finetune", "--invokes", "200"]) == 0
    return out


@pytest.fixture(scope="module")
def run_data(run_dir):
    return RunData(run_dir)


@pytest.fixture(scope="module")
def report(run_dir):
    return json.loads((run_dir / "reports" / "export.json").read_text())


def test_writes_one_file_per_variant_with_cards(run_dir, report):
    out = run_dir / "tflite"
    assert sorted(p.stem for p in out.glob("*.tflite")) == sorted(SHIPPED)
    assert set(report["variants"]) == set(SHIPPED)
    members = [{"name": "member_4", "hidden": [4]}, {"name": "member_6x6", "hidden": [6, 6]}]
    assert report["ensemble"]["members"] == members
    for stem in SHIPPED:
        card = json.loads((out / f"{stem}.json").read_text())
        assert card["signature"] == "serving_default" and card["labels"] == list(LABELS)
        assert card["output"]["name"] == "logits"
        assert card["input"]["name"] == ("physical" if stem.startswith("teacher") else "photometric")
        assert ("ensemble" in card) == stem.startswith("student")
        clf = edge.EdgeClassifier(out / f"{stem}.tflite")
        assert clf.interpreter.get_signature_list() == {"serving_default": {
            "inputs": [card["input"]["name"]], "outputs": ["logits"]}}
    assert json.loads((out / "student_int8.json").read_text())["ensemble"]["members"] == members


def test_skipped_files_are_said(run_dir, report):
    """No QAT/pruning for ensembles, and no dynamic-range file when it would be float32."""
    for stem in ("student_qat_int8", "student_pruned_int8"):
        assert "not done for ensemble students" in report["skipped"][stem]
    assert report["skipped"]["student_dynamic"].startswith("no-op here")
    assert report["finetune"] == {}
    md = (run_dir / "reports" / "export.md").read_text()
    assert "an ensemble of 2 members" in md and "`student_qat_int8` (QAT/pruning" in md


@pytest.mark.parametrize("stem", SHIPPED)
def test_only_builtin_operators(run_dir, stem):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    content = (run_dir / "tflite" / f"{stem}.tflite").read_bytes()
    assert tflite_file.operators(content) and tflite_file.non_builtin(content) == []
    interp = Interpreter(model_content=content, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interp.allocate_tensors()
    assert [d["op_name"] for d in interp._get_ops_details()] == tflite_file.operators(content)


def test_float32_file_matches_keras_ensemble(run_data, report):
    x = run_data.x_test["photometric"]
    logits = edge.EdgeClassifier(run_data.dir / "tflite" / "student_float32.tflite").logits(x)
    np.testing.assert_allclose(logits, run_data.student.predict(x, verbose=0), atol=1e-4)
    assert report["variants"]["student_float32"]["agreement"] == 1.0


def test_int8_agrees_with_keras_ensemble(run_data, report):
    x, y = run_data.x_test["photometric"], run_data.y_test
    keras_pred = run_data.student.predict(x, verbose=0).argmax(1)
    pred = edge.EdgeClassifier(run_data.dir / "tflite" / "student_int8.tflite").logits(x).argmax(1)
    agreement = (pred == keras_pred).mean()
    assert agreement >= 0.99
    assert report["variants"]["student_int8"]["agreement"] == pytest.approx(agreement)
    assert report["variants"]["student_int8"]["test_accuracy"] == pytest.approx((pred == y).mean())


def test_int8_keeps_every_members_first_layer_float32(run_dir):
    """Raw float32 magnitudes go into one float32 FULLY_CONNECTED per member; int8 after."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    content = (run_dir / "tflite" / "student_int8.tflite").read_bytes()
    interp = Interpreter(model_content=content, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))  # ops as listed, no XNNPACK node
    interp.allocate_tensors()
    tensors = {t["index"]: t["dtype"] for t in interp.get_tensor_details()}
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    readers = [op for op in interp._get_ops_details() if inp["index"] in op["inputs"]]
    assert [op["op_name"] for op in readers] == ["FULLY_CONNECTED"] * len(WIDTHS)
    for op in readers:
        assert all(tensors[k] == np.float32 for k in (*op["inputs"], *op["outputs"]) if k >= 0)
    assert tflite_file.weight_types(content).get("INT8", 0) >= 3  # the other dense kernels


def test_int8_student_bytes_is_the_shipped_file(run_dir, run_data, capfd):
    content = int8_student_bytes(run_data.student, run_data.x_train["photometric"])
    assert capfd.readouterr().err == ""
    assert content == (run_dir / "tflite" / "student_int8.tflite").read_bytes()


def test_int8_student_bytes_of_a_plain_student(real_table):
    """The sweep's use: any student's int8 size; a plain MLP has one float32 first layer."""
    import pandas as pd

    from sdss_distill.core.schema import get_view
    from sdss_distill.data.table import features
    from sdss_distill.models.mlp import build_mlp
    view = get_view("photometric")
    x = features(pd.read_parquet(real_table).head(300), view)
    content = int8_student_bytes(build_mlp(view, (8, 8), x, name="student"), x)
    ops = tflite_file.operators(content)
    assert ops[:2] == ["FULLY_CONNECTED", "QUANTIZE"] and ops.count("FULLY_CONNECTED") == 3
    assert tflite_file.weight_types(content).get("INT8", 0) == 2 and len(content) < 4096

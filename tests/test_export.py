"""`sdss_distill.export` on a small real run: files, builtin ops, signatures, parity, report."""

import json

import numpy as np
import pytest

from sdss_distill.core import tflite_file
from sdss_distill.core.schema import BANDS, LABELS
from sdss_distill.edge import classifier as edge
from sdss_distill.export import cli as export_cli
from sdss_distill.export.source import RunData
from tests.conftest import ROOT

STUDENT_FILES = ("student_float32", "student_float16", "student_dynamic", "student_int8",
                 "student_qat_int8", "student_pruned_int8")
FILES = (*STUDENT_FILES, "teacher_float32")
HEADED = ("student_float32", "student_float16", "student_dynamic", "student_int8")
"""Files with the default student's redshift head (`z_phot` beside `logits`); QAT and pruning
fine-tune the class head alone."""


@pytest.fixture(scope="module")
def run_dir(exported_run):
    return exported_run


@pytest.fixture(scope="module")
def run_data(run_dir):
    return RunData(run_dir)


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
    outputs = ["logits", "z_phot"] if stem in HEADED else ["logits"]
    assert sig == {"serving_default": {"inputs": [view], "outputs": outputs}}
    assert (clf.z_name is not None) == (stem in HEADED)
    card = json.loads(edge.card_path(run_dir / "tflite" / f"{stem}.tflite").read_text())
    assert ("zphot" in card) == (stem in HEADED)


def test_headed_cards_refit_k_on_the_calibration_galaxies(run_dir, run_data):
    """Each headed file's k of z_phot_err is refitted on the split's calibration slice's
    galaxies, the rows training fitted the run's k on: the float32 file's z_phot is the Keras
    student's to float rounding, so its k is the run's (report.json) to 1e-4; other rows
    (the early-stopping galaxies, say) would move it by percents."""
    assert len(run_data.rows.split.calibration) > 0  # the default split has the slice
    cards = {stem: json.loads(edge.card_path(run_dir / "tflite" / f"{stem}.tflite").read_text())
             for stem in HEADED}
    for z in (c["zphot"] for c in cards.values()):
        assert z["fitted_on"] == "this file's z_phot on the split's calibration slice, galaxies"
        assert z["keras_error_scale"] == run_data.zphot["error_scale"]
    f32 = cards["student_float32"]["zphot"]
    assert f32["error_scale"] == pytest.approx(f32["keras_error_scale"], rel=1e-4)


def test_report_gives_the_shipped_files_photo_z_on_the_test_rows(run_dir, run_data, report):
    """export.json/md: student_int8's z_phot per class on the test rows, z_phot_err with its
    card's k, as the edge runtime gives them."""
    from sdss_distill.core import zphot
    z = report["zphot"]
    path = run_dir / "tflite" / "student_int8.tflite"
    card = json.loads(edge.card_path(path).read_text())["zphot"]
    assert z["file"] == "student_int8" and z["error_scale"] == card["error_scale"]
    assert z["fitted_on"] == card["fitted_on"]
    p = edge.EdgeClassifier(path).predict(run_data.x_test["photometric"])
    z_spec = run_data.rows.df.loc[run_data.rows.split.test, "redshift"].to_numpy()
    gal = run_data.y_test == LABELS.index("GALAXY")
    assert z["GALAXY"]["n"] == gal.sum() > 0
    assert z["GALAXY"]["coverage"] == pytest.approx(
        zphot.covered(p.z_phot[gal], z_spec[gal], card["error_scale"]).mean(), abs=1 / gal.sum())
    assert z["GALAXY"]["sigma_nmad"] == pytest.approx(
        zphot.quality(p.z_phot[gal], z_spec[gal])["sigma_nmad"], rel=1e-6)
    md = (run_dir / "reports" / "export.md").read_text()
    assert f"Photometric redshift (student_int8, z_phot_err = k (1 + z_phot), k " \
           f"{card['error_scale']:.4f}" in md


def test_int8_student_keeps_raw_magnitudes_float(run_dir, report):
    """student_int8 takes float32 magnitudes into a float32 first layer; after it, int8
    weights and the chosen candidate's activations (int16 for TFLite 16x8, with zero points
    0; int8 for the int8 PTQ or QAT file), float32 logits out."""
    from sdss_distill.export.mcu_graph import read_graph
    content = (run_dir / "tflite" / "student_int8.tflite").read_bytes()
    act = "INT16" if report["student_int8_choice"]["chosen"] == "ptq_16x8" else "INT8"
    ops, tensors, (inp,), outs = read_graph(content)
    # class scores, then the redshift head on the same hidden layer (the default student's)
    assert [name for name, _ in ops] == ["FULLY_CONNECTED", "QUANTIZE", "FULLY_CONNECTED",
                                         "FULLY_CONNECTED", "DEQUANTIZE", "FULLY_CONNECTED",
                                         "DEQUANTIZE"]
    types = [[tensors[int(k)].type for k in (*op.inputs, *op.outputs) if k >= 0] for _, op in ops]
    assert types[0] == ["FLOAT32"] * 4 and types[1] == ["FLOAT32", act]
    assert types[2] == types[3] == types[5] == [act, "INT8", "INT32", act]
    assert types[4] == types[6] == [act, "FLOAT32"]
    assert ops[5][1].inputs[0] == ops[3][1].inputs[0]  # both heads read the last hidden layer
    assert len(outs) == 2 and all(tensors[k].type == "FLOAT32" for k in (inp, *outs))
    int16 = [t for t in tensors.values() if t.type == "INT16"]
    assert len(int16) == (4 if act == "INT16" else 0)
    assert all((t.zero_points == 0).all() for t in int16)
    assert tflite_file.weight_types(content).get("INT8", 0) == 3


def folded_temperature(run_data, stem: str) -> float:
    """T folded into a student file's class-logit layer (its card says; 1 for the teacher)."""
    card = json.loads((run_data.dir / "tflite" / f"{stem}.json").read_text())
    t = (card.get("calibration") or {}).get("temperature") or {}
    return float(t["temperature"]) if str(t.get("folded", "")).startswith("into") else 1.0


@pytest.mark.parametrize("stem", FILES)
def test_parity_with_keras_on_test_rows(run_data, report, stem):
    source = run_data.teacher if stem.startswith("teacher") else run_data.student
    view = run_data.teacher_view if stem.startswith("teacher") else run_data.student_view
    x, y = run_data.x_test[view.name], run_data.y_test
    from sdss_distill.models.mlp import logits as keras_logits_of
    keras_logits = keras_logits_of(source, x) / folded_temperature(run_data, stem)
    logits = edge.EdgeClassifier(run_data.dir / "tflite" / f"{stem}.tflite").logits(x)
    agreement = (logits.argmax(1) == keras_logits.argmax(1)).mean()
    if stem.endswith("float32"):
        np.testing.assert_allclose(logits, keras_logits, atol=1e-3)
    elif stem in ("student_float16", "student_dynamic"):
        # dynamic range: int8 weights for tensors of >= 1,024 elements (the 48-48 student's
        # middle kernel, 2,304), float activations
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
    """The budget of issue 22: the shipped student file in at most 8 KB."""
    assert report["variants"]["student_int8"]["size_bytes"] <= 8192


def test_missing_run_is_one_line_error(tmp_path, capsys):
    assert export_cli.main(["--run", str(tmp_path), "--no-finetune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a training run" in err[0] and "run.json" in err[0]


def test_folding_the_front_keeps_the_logits():
    from sdss_distill.core.schema import get_view
    from sdss_distill.export.fold import fold_student, mlp_logits
    from sdss_distill.models.mlp import build_mlp
    rng = np.random.default_rng(1)
    x = (rng.normal(18, 2, (64, 5)) + rng.normal(0, 0.5, (64, 1))).astype("float32")
    student = build_mlp(get_view("photometric"), (6, 5), x, name="student")
    kernels, biases = fold_student(student)
    assert [k.shape for k in kernels] == [(5, 6), (6, 5), (5, 3)]
    np.testing.assert_allclose(mlp_logits(kernels, biases, x), student.predict(x, verbose=0),
                               atol=1e-4)


# --- run integrity: ids, hashes, damaged and changed runs, kills --------------------------

def clone(run_dir, dst, damage=None, exported=True):
    """A copy of the run as a run of its own (manifest and all), optionally damaged first;
    `exported=False` leaves out tflite/ and reports/export.*."""
    import shutil

    from sdss_distill.runs.rundir import RunDir
    src = RunDir(run_dir).current()
    with RunDir(dst).write() as layout:
        for rel in src.manifest()["files"]:
            if not exported and rel.startswith(("tflite/", "reports/export")):
                continue
            (layout.root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src.root / rel, layout.root / rel)
        if damage:
            damage(layout)
    return dst


def test_export_records_run_id_and_model_hashes(run_dir, report):
    from sdss_distill.runs.rundir import RunDir, sha256_file
    layout = RunDir(run_dir).current()
    manifest = layout.manifest()
    assert report["run_id"] == manifest["run_id"] == layout.run_id
    for name in ("student", "teacher"):
        assert report["models"][name]["model_sha256"] == manifest["files"][f"models/{name}.keras"]["sha256"]
    for stem in FILES:
        card = json.loads(edge.card_path(layout.tflite_file(stem)).read_text())
        source = "teacher" if stem.startswith("teacher") else "student"
        assert card["source"]["run_id"] == layout.run_id
        assert card["source"]["model_sha256"] == report["models"][source]["model_sha256"]
        assert card["sha256"] == sha256_file(layout.tflite_file(stem))


def _export_fails(capsys, run, message):
    from sdss_distill.runs.rundir import RunDir
    before = RunDir(run).current(verify=False).run_id
    code = export_cli.main(["--run", str(run), "--no-finetune", "--invokes", "10", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert RunDir(run).current(verify=False).run_id == before  # nothing new written
    return err[0]


@pytest.mark.parametrize("damage, message", [
    (lambda L: L.model("student").write_bytes(b"PK\x03\x04 not a zip"),
     "student.keras: cannot load the Keras model"),
    (lambda L: L.model("teacher").unlink(), "teacher.keras: missing; not a complete training run"),
    (lambda L: L.split_json.write_text("{"), "split.json: corrupt JSON (line 1"),
    (lambda L: L.run_json.write_text('{"data": {}}'), "run.json: missing key(s) 'config'"),
    (lambda L: L.run_json.write_text('{"config": {"teacher_view": "x"}}'),
     "run.json: unknown view 'x'"),
])
def test_damaged_artifacts_are_one_line(run_dir, tmp_path, capsys, damage, message):
    _export_fails(capsys, clone(run_dir, tmp_path / "run", damage, exported=False), message)


def test_stale_export_is_refused(run_dir, tmp_path, capsys):
    """A run whose export.json was made from other models (a mixed run) is refused."""
    def swap(layout):
        layout.model("student").write_bytes(layout.model("baseline").read_bytes())
    _export_fails(capsys, clone(run_dir, tmp_path / "run", swap),
                  "export.json: made from another student.keras than this run's; export the run again")


def test_changed_run_is_refused(run_dir, tmp_path, capsys):
    from sdss_distill.runs.rundir import RunDir
    run = clone(run_dir, tmp_path / "run")
    path = RunDir(run).current().split_json
    path.write_text(path.read_text().replace('"seed": ', '"seed": 1'))
    _export_fails(capsys, run, "split.json: SHA-256 differs from manifest.json")


def test_a_version_directory_is_not_an_export_target(run_dir, capsys):
    from sdss_distill.runs.rundir import RunDir
    version = RunDir(run_dir).current().root
    _export_fails(capsys, version, "one version of a run, not the run itself")


def test_no_finetune_keeps_this_runs_finetuned_files_only(run_dir, tmp_path, capsys):
    from sdss_distill.runs.rundir import RunDir

    def foreign_pruned(layout):
        card = edge.card_path(layout.tflite_file("student_pruned_int8"))
        doc = json.loads(card.read_text())
        doc["source"]["model_sha256"] = "0" * 64
        card.write_text(json.dumps(doc))

    run = clone(run_dir, tmp_path / "run", foreign_pruned)
    old = RunDir(run).current()
    qat = old.tflite_file("student_qat_int8").read_bytes()
    assert export_cli.main(["--run", str(run), "--no-finetune", "--invokes", "10"]) == 0
    err = capsys.readouterr().err
    assert "keeping student_qat_int8 (fine-tuned from this run's student)" in err
    assert "dropping student_pruned_int8 (fine-tuned from another student)" in err
    new = RunDir(run).current()
    assert new.run_id != old.run_id and new.manifest()["parent"] == old.run_id
    assert new.tflite_file("student_qat_int8").read_bytes() == qat
    assert not new.tflite_file("student_pruned_int8").exists()
    doc = json.loads(new.export_json.read_text())
    assert "student_qat_int8" in doc["variants"] and "student_pruned_int8" not in doc["variants"]
    assert json.loads(edge.card_path(new.tflite_file("student_qat_int8")).read_text())[
        "source"]["run_id"] == new.run_id


def test_killed_export_leaves_old_run_whole_and_takes_qat_child_down(run_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from sdss_distill.runs.rundir import RunDir
    run = clone(run_dir, tmp_path / "run")
    before = RunDir(run).current().run_id
    root = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "sdss_distill.export", "--run", str(run),
                             "--all", "--invokes", "10", "--quiet"], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child, deadline = None, time.monotonic() + 300
    while child is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        child = next((c for c in psutil.Process(proc.pid).children()
                      if "sdss_distill.export.finetune" in " ".join(c.cmdline())), None)
    assert child is not None, "the QAT subprocess never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    gone, _ = psutil.wait_procs([child], timeout=20)
    assert gone, "the QAT subprocess outlived its parent"
    assert RunDir(run).current().run_id == before  # verified, and still the old version
    staging = [p.name for p in (tmp_path / ".run.runs").iterdir() if p.name.endswith(".staging")]
    assert len(staging) == 1  # what the killed export left; the next writer removes it
    with RunDir(run).write(keep=["models", "run.json", "split.json", "reports"]):
        pass
    assert not [p for p in (tmp_path / ".run.runs").iterdir() if p.name.endswith(".staging")]


# --- what ships by default, and which int8 file ---------------------------------------------

def test_default_export_converts_only_what_ships_and_says_which_int8(run_dir, tmp_path, capsys):
    from sdss_distill.runs.rundir import RunDir
    run = clone(run_dir, tmp_path / "run", exported=False)
    assert export_cli.main(["--run", str(run), "--invokes", "20"]) == 0
    err = capsys.readouterr().err
    out = run / "tflite"
    assert sorted(p.stem for p in out.glob("*.tflite")) == ["student_float32", "student_int8",
                                                            "teacher_float32"]
    report = json.loads((run / "reports" / "export.json").read_text())
    choice = report["student_int8_choice"]
    assert set(choice["candidates"]) == {"ptq_16x8", "ptq_int8"}
    right = {k: v["dev_rows_right"] for k, v in choice["candidates"].items()}
    assert right[choice["chosen"]] == max(right.values())
    chosen = choice["candidates"][choice["chosen"]]
    assert chosen["size_bytes"] == report["variants"]["student_int8"]["size_bytes"] <= 8192
    split = json.loads(RunDir(run).current().split_json.read_text())
    assert choice["dev_rows"] == len(split["teacher_train"]) + len(split["student_train"])
    assert not set(split["test"]) & set(split["teacher_train"] + split["student_train"])
    assert f"student_int8 = {choice['reason']}" in err
    card = json.loads((out / "student_int8.json").read_text())
    assert card["chosen"] == {"candidate": choice["chosen"], "reason": choice["reason"]}
    assert f"`student_int8` is `{choice['chosen']}`" in (run / "reports" / "export.md").read_text()
    edge.EdgeClassifier(out / "student_int8.tflite")  # card, manifest and run id agree


def test_all_offers_the_qat_file_as_a_candidate_only_without_a_redshift_head(report):
    """The QAT child fine-tunes the class head alone: for the default student, whose file must
    carry z_phot, the QAT file is written and measured but is no candidate for student_int8."""
    choice = report["student_int8_choice"]
    assert set(choice["candidates"]) == {"ptq_16x8", "ptq_int8"}
    assert "student_qat_int8" in report["variants"]

"""Quantization-aware training and magnitude pruning of the student, in a tf_keras process.

tensorflow-model-optimization works only with Keras 2 (tf_keras), so export.variants runs this
module as `TF_USE_LEGACY_KERAS=1 python -m sdss_distill.export.finetune --npz IN --out DIR`. The parent
(Keras 3) passes the student's weights with its front folded into the first dense layer
(colours and normalisation are linear), the student-train rows, their labels and the
teacher's logits on them; both fine-tunings use the run's distillation loss

    L = (1 - alpha) * CE(y, softmax(s)) + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))

(Hinton et al. 2015). The first layer stays float32 (it reads raw magnitudes) and frozen.
Writes DIR/student_qat_int8.tflite, DIR/student_pruned_int8.tflite and DIR/finetune.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from sdss_distill.core.children import die_with_parent
from sdss_distill.core.schema import STUDENT_VIEW
from sdss_distill.core.tflite_file import front_nodes
from sdss_distill.distill import formula
from sdss_distill.export.convert import calibration as convert_calibration
from sdss_distill.export.convert import convert, quantize_selective
from sdss_distill.export.fold import FRONT_LAYER, fold_student, mlp_logits  # noqa: F401


def build(keras, kernels, biases, wrap=lambda layer: layer, input_name=STUDENT_VIEW):
    """tf_keras functional MLP with the given weights; `wrap` annotates layers after the front."""
    inputs = keras.Input((kernels[0].shape[0],), name=input_name)
    x, layers = inputs, []
    for k, w in enumerate(kernels):
        last = k == len(kernels) - 1
        layer = keras.layers.Dense(w.shape[1], activation=None if last else "relu",
                                   name="logits" if last else f"dense_{k}")
        layers.append(layer)
        x = (layer if k == 0 else wrap(layer))(x)
    model = keras.Model(inputs, x, name="student")
    for layer, w, b in zip(layers, kernels, biases):
        layer.set_weights([w, b])
    layers[0].trainable = False
    return model


def kd_loss(tf, temperature: float, alpha: float, kind: str = "kl"):
    """y_true = [label, teacher logits...]; the run's distillation loss on student logits,
    from the same formula as training (`distill.formula`)."""
    def loss(y_true, s):
        return formula.total(tf, y_true[:, 0], y_true[:, 1:], s, temperature=temperature,
                             alpha=alpha, kind=kind)

    return loss


def to_tflite(tf, model, calibration=None, quantized_by_qat=False) -> bytes:
    """tf_keras model -> flatbuffer via a SavedModel with a `serving_default` signature."""
    @tf.function(input_signature=[tf.TensorSpec([None, model.input_shape[-1]], tf.float32,
                                                name=STUDENT_VIEW)])
    def serve(photometric):
        return {"logits": model(photometric, training=False)}

    with tempfile.TemporaryDirectory() as d:
        tf.saved_model.save(model, d, signatures={"serving_default": serve})
        if not quantized_by_qat:
            front = front_nodes(convert(Path(d), "float32"), FRONT_LAYER)
            return convert(Path(d), "int8", calibration, front)
        c = tf.lite.TFLiteConverter.from_saved_model(d, signature_keys=["serving_default"])
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration is None:
            return c.convert()
        c.representative_dataset = calibration
        return quantize_selective(c, calibration, [])


def _accuracy(model, x, y) -> float:
    return float((model.predict(x, batch_size=4096, verbose=0).argmax(1) == y).mean())


def run(npz: Path, out: Path, *, qat_epochs: int = 10, prune_epochs: int = 20,
        sparsity: float = 0.5, learning_rate: float = 3e-4) -> dict:
    """QAT and pruning fine-tunes; writes the two .tflite files and finetune.json."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    d = np.load(npz)
    kernels = [d[f"kernel_{k}"] for k in range(len([f for f in d.files if f.startswith("kernel_")]))]
    biases = [d[f"bias_{k}"] for k in range(len(kernels))]
    x, y = d["x"].astype("float32"), d["y"]
    target = np.concatenate([y[:, None].astype("float32"), d["teacher_logits"]], axis=1)
    kind = str(d["soft_loss"]) if "soft_loss" in d else "kl"
    loss = kd_loss(tf, float(d["temperature"]), float(d["alpha"]), kind)
    keras.utils.set_random_seed(int(d["seed"]))

    calibration = convert_calibration(x, STUDENT_VIEW)

    def fit(model, epochs, callbacks=()):
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
        h = model.fit(x, target, epochs=epochs, batch_size=128, verbose=0,
                      callbacks=list(callbacks))
        return [float(v) for v in h.history["loss"]]

    report = {}
    quant = tfmot.quantization.keras
    qat = quant.quantize_apply(build(keras, kernels, biases, quant.quantize_annotate_layer))
    losses = fit(qat, qat_epochs)
    (out / "student_qat_int8.tflite").write_bytes(to_tflite(tf, qat, quantized_by_qat=True))
    report["student_qat_int8"] = {
        "method": "tfmot quantize_apply (default 8-bit scheme) on the layers after dense_0",
        "epochs": qat_epochs, "learning_rate": learning_rate, "loss_first_last": [losses[0], losses[-1]],
        "keras_test_accuracy": _accuracy(qat, d["x_test"], d["y_test"])}

    sp = tfmot.sparsity.keras
    schedule = sp.ConstantSparsity(sparsity, begin_step=0, frequency=10)
    pruned = build(keras, kernels, biases, lambda layer: sp.prune_low_magnitude(
        layer, pruning_schedule=schedule))
    losses = fit(pruned, prune_epochs, [sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(pruned)
    (out / "student_pruned_int8.tflite").write_bytes(to_tflite(tf, stripped, calibration))
    weights = {layer.name: layer.get_weights()[0] for layer in stripped.layers if layer.weights}
    zeros = {n: float((w == 0).mean()) for n, w in weights.items()}
    total = sum(w.size for w in weights.values())
    report["student_pruned_int8"] = {
        "method": f"tfmot prune_low_magnitude, constant sparsity {sparsity} on layers after "
                  f"dense_0, then int8 PTQ with dense_0 float32",
        "epochs": prune_epochs, "learning_rate": learning_rate,
        "loss_first_last": [losses[0], losses[-1]],
        "sparsity_per_layer": zeros,
        "sparsity_all_kernels": float(sum((w == 0).sum() for w in weights.values()) / total),
        "keras_test_accuracy": _accuracy(stripped, d["x_test"], d["y_test"])}
    (out / "finetune.json").write_text(json.dumps(report, indent=2))
    return report


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sdss_distill.export.finetune", allow_abbrev=False,
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--npz", required=True, help="inputs written by sdss_distill.export")
    p.add_argument("--out", required=True, help="directory for the .tflite files")
    p.add_argument("--qat-epochs", type=int, default=10, help="QAT fine-tuning epochs (default: 10)")
    p.add_argument("--prune-epochs", type=int, default=20,
                   help="pruning fine-tuning epochs (default: 20)")
    p.add_argument("--sparsity", type=float, default=0.5,
                   help="share of weights pruned (default: 0.5)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    die_with_parent()  # started by export with PARENT_ENV set: never outlives it
    run(Path(args.npz), Path(args.out), qat_epochs=args.qat_epochs,
        prune_epochs=args.prune_epochs, sparsity=args.sparsity)
    return 0


if __name__ == "__main__":
    sys.exit(main())

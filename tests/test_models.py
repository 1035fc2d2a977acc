import json

import keras
import numpy as np
import pytest

from sdss_distill.core.schema import LABELS, get_view
from sdss_distill.models import mlp as models

RNG = np.random.default_rng(0)
MAGS = (RNG.normal(18, 1.5, (64, 5))).astype("float32")


def test_sky_features_colours_and_asinh():
    layer = models.SkyFeatures([[0, 1], [1, 2]], [0.0, 0.0, 1e4])
    x = np.array([[19.0, 17.5, 0.0001], [18.0, 18.5, -0.0002]], "float32")
    out = keras.ops.convert_to_numpy(layer(x))
    expected = np.column_stack([x[:, :2], np.arcsinh(1e4 * x[:, 2]), x[:, 0] - x[:, 1],
                                x[:, 1] - x[:, 2]])
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_student_contract():
    view = get_view("photometric")
    student = models.build_mlp(view, (24, 24), MAGS, name="student")
    assert student.input_shape == (None, 5) and student.output_shape == (None, len(LABELS))
    assert student.inputs[0].name == "photometric"
    assert 800 <= student.count_params() <= 1200  # "about 1,000 parameters"
    # Logits, not probabilities: the last layer is linear and the softmax is the caller's.
    assert student.layers[-1].get_config()["activation"] == "linear"
    logits = student.predict(MAGS, verbose=0)
    assert not np.allclose(logits.sum(axis=1), 1.0)


def test_normalization_adapted_on_training_rows():
    student = models.build_mlp(get_view("photometric"), (4,), MAGS, name="s")
    norm = student.get_layer("normalize")
    np.testing.assert_allclose(np.ravel(norm.mean)[:5], MAGS.mean(0), rtol=1e-4)


@pytest.mark.parametrize("view", ["photometric", "physical", "paper17"])
def test_round_trip_config_json_and_keras_file(tmp_path, view):
    v = get_view(view)
    x = np.abs(RNG.normal(10, 3, (32, len(v.columns)))).astype("float32")
    model = models.build_mlp(v, (8, 8), x, name="m", dropout=0.1)
    layer = model.get_layer("features")
    clone = models.SkyFeatures.from_config(json.loads(json.dumps(layer.get_config())))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)),
                                  keras.ops.convert_to_numpy(layer(x)))
    model.save(tmp_path / "m.keras")
    back = models.load(tmp_path / "m.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))

"""TensorFlow's INFO/WARNING log lines stay out of our output (sdss_distill/logs.py).

Each case runs in a fresh interpreter, since TensorFlow configures its logger once per
process. `sys.ps1` is set as in a notebook, where TensorFlow raises its logger to INFO.
About 10 s (two TensorFlow imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

NOISE = ("INFO:tensorflow", "W0000", "retracing")

PROBE = textwrap.dedent("""
    import sys, tempfile, warnings
    from pathlib import Path
    sys.ps1 = ">>> "   # interactive, as in a Jupyter kernel
    from sdss_distill.core.io import quiet_import
    tf, keras = quiet_import("tensorflow"), quiet_import("keras")
    from sdss_distill.export.convert import convert, saved_model
    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    view = get_view(STUDENT_VIEW)
    inp = keras.Input((len(view.columns),), name=view.name)
    model = keras.Model(inp, keras.layers.Dense(3, name="logits")(inp))
    with tempfile.TemporaryDirectory() as tmp:
        sm = saved_model(model, view, Path(tmp) / "sm")     # logs `Assets written to`
        if sys.argv[1] == "convert":
            print("tflite bytes", len(convert(sm, "float32")))
    for n in range(8):                                   # logs `tf.function retracing`
        f = tf.function(lambda x: x * 2)
        f(tf.zeros([n + 1]))
    tf.get_logger().error("a real TensorFlow error still shows")
    warnings.warn("our own warning still shows", UserWarning)
""")


def _run(mode: str, **env) -> str:
    base = {k: v for k, v in os.environ.items() if k != "SDSS_DISTILL_TF_LOGS"}
    env = {**base, "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_no_tensorflow_log_lines_but_real_warnings_and_errors_show():
    out = _run("convert")
    noisy = [line for line in out.splitlines() if any(n in line for n in NOISE)]
    assert noisy == [], noisy
    assert "tflite bytes" in out
    assert "our own warning still shows" in out
    assert "a real TensorFlow error still shows" in out


@pytest.mark.slow
def test_the_probe_does_log_when_the_filter_is_off():
    """Control: the same code with SDSS_DISTILL_TF_LOGS=1 shows the lines the filter drops."""
    out = _run("no-convert", SDSS_DISTILL_TF_LOGS="1")
    assert "INFO:tensorflow:Assets written to" in out
    assert "retracing" in out


def test_filter_can_be_switched_off_and_on():
    import logging

    from sdss_distill.core.logs import LOGGER, quiet_tensorflow_logs
    logger = logging.getLogger(LOGGER)
    try:
        assert quiet_tensorflow_logs(False) is False
        assert logger.filter(logger.makeRecord(LOGGER, logging.WARNING, "f", 1, "w", (), None))
        assert quiet_tensorflow_logs(True) is True
        assert not logger.filter(logger.makeRecord(LOGGER, logging.WARNING, "f", 1, "w", (), None))
        assert logger.filter(logger.makeRecord(LOGGER, logging.ERROR, "f", 1, "e", (), None))
    finally:
        quiet_tensorflow_logs()


def test_matplotlib_font_fallback_warnings_are_dropped_errors_kept():
    import logging

    from sdss_distill.core.logs import quiet_tensorflow_logs
    logger = logging.getLogger("matplotlib.font_manager")
    quiet_tensorflow_logs()
    warn = logger.makeRecord(logger.name, logging.WARNING, "f", 1,
                             "findfont: Font family ['cmr10'] not found.", (), None)
    assert not logger.filter(warn)
    assert logger.filter(logger.makeRecord(logger.name, logging.ERROR, "f", 1, "e", (), None))

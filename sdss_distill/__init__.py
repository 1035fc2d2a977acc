"""sdss-distill: distil a deep SDSS star/galaxy/QSO classifier into a tiny photometric model."""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) hides our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One TensorFlow thread: the float reduction order, hence the trained models, must not depend
# on the machine's core count (two threads gave another teacher for the same seed), and
# these models are too small to gain from more (docs/results/speed.md). Set the variables to override.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from sdss_distill.core.logs import quiet_tensorflow_logs  # noqa: E402  (after the environment is set)

# ... and its Python-side INFO/WARNING records (`Assets written to`, `retracing`): logs.py.
quiet_tensorflow_logs()

__version__ = "0.1.0"

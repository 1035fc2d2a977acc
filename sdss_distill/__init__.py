"""sdss-distill: distil a deep SDSS star/galaxy/QSO classifier into a tiny photometric model."""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) hides our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .logs import quiet_tensorflow_logs  # noqa: E402  (after the environment is set)

# ... and its Python-side INFO/WARNING records (`Assets written to`, `retracing`): logs.py.
quiet_tensorflow_logs()

__version__ = "0.1.0"

"""sdss-distill: distil a deep SDSS star/galaxy/QSO classifier into a tiny photometric model.

    import sdss_distill as sd
    run = sd.train(data="faint", out="runs/faint", seed=0)
    run = sd.load("runs/faint")
    df = run.predict(table)

The Python API (`train`: sdss_distill.train, callable; `load`, `Run`: sdss_distill.api) is
imported on first use, so `import sdss_distill` stays light (no TensorFlow, no pandas) for
the edge runtime.
"""

import importlib
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

API = {"train": "sdss_distill.train", "load": "sdss_distill.api", "Run": "sdss_distill.api"}
"""The Python API's names and the modules they are loaded from on first use."""


def __getattr__(name: str):
    """The API, loaded on first use (PEP 562). importlib, not an import statement: every module
    reads __version__ from this package, which therefore imports none of them itself."""
    if name not in API:
        raise AttributeError(f"module 'sdss_distill' has no attribute {name!r}")
    module = importlib.import_module(API[name])
    return module if name == "train" else getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *API])

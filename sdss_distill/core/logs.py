"""Keep TensorFlow's (and matplotlib's font fallback) log lines out of our output, in scripts
and in notebooks alike.

TensorFlow logs through the Python logger "tensorflow": INFO lines such as `Assets written
to ...` (SavedModel export; shown in notebooks, where TensorFlow raises its own level to
INFO) and WARNING lines such as `tf.function retracing` (Keras `fit` called for several
models in one process). Neither is actionable for a user of this package. A filter on
that logger survives TensorFlow's own `setLevel`, and it is installed before TensorFlow is
imported, so it costs nothing when TensorFlow is never loaded (the edge runtime). Our own
warnings go through `warnings.warn` and are untouched; errors (level ERROR and above)
still show. The same filter drops matplotlib's `findfont: Font family ... not found` lines,
about twenty of them when its font cache points at a removed environment (seen on the first
`train` of a fresh clone), equally unactionable. Set SDSS_DISTILL_TF_LOGS=1 to see
everything again.
"""

from __future__ import annotations

import logging
import os

LOGGER = "tensorflow"
LOGGERS = (LOGGER, "matplotlib.font_manager")
ENV = "SDSS_DISTILL_TF_LOGS"


def _drop_below_error(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def quiet_tensorflow_logs(enable: bool | None = None) -> bool:
    """Drop TensorFlow's Python INFO/WARNING records (idempotent); returns whether active.

    `enable=None` follows $SDSS_DISTILL_TF_LOGS (unset or 0: quiet); False removes the filter.
    """
    if enable is None:
        enable = os.environ.get(ENV, "0") in ("", "0")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.removeFilter(_drop_below_error)
        if enable:
            logger.addFilter(_drop_below_error)
    return enable

"""The one stopping rule and learning-rate schedule of every fit, as Keras callbacks.

The JAX engine (jax_fit.py, jax_cotrain.py) drives one copy per member through Keras's
callback methods; the streamed run's Keras `fit` (fit.py) passes the list to `Model.fit`. So early
stopping (best `val_loss`, `patience` epochs, best weights restored) and the learning-rate
halving on plateaus are Keras's own code, written nowhere else in the package.
"""

from __future__ import annotations

import keras

from sdss_distill.core.errors import check_signals


class StopOnSignal(keras.callbacks.Callback):
    """Raise a SIGINT/SIGTERM whose exception was dropped (in a __del__ of TensorFlow's during
    fit): checked after every batch and epoch, so training stops within one step."""

    def on_train_batch_end(self, batch, logs=None):
        check_signals()

    def on_epoch_end(self, epoch, logs=None):
        check_signals()


def early_stopping_callbacks(patience: int) -> list:
    """Signal check, early stopping on val_loss (best weights restored), LR halving on plateaus."""
    return [StopOnSignal(),
            keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, patience // 3),
                                              min_lr=1e-4)]

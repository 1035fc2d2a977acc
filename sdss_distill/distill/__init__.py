"""Knowledge distillation with privileged information, on top of `keras.distillation`.

- `formula`: the loss terms as TensorFlow expressions, shared with the tf_keras QAT process;
- `losses`: those terms as `keras.distillation.DistillationLoss` subclasses (KL, CE, hint);
- `distillers`: `Distiller` subclasses (offline, online, hints, co-training; `subclasses`:
  subclass distillation), through which every KD method's student trains: each hands the
  engine the loss settings it holds;
- `targets`: where soft labels come from (one teacher, an ensemble, out-of-fold teachers);
- `fit`: fitting with early stopping and per-epoch curves on the one JAX engine (`jax_fit`,
  and `jax_cotrain` for co-training) for every model on arrays (Keras `fit` remains for the
  streamed run only); `stopping`: the one stopping rule, as Keras callbacks;
- `registry` and `methods/`: every distillation method by name.

This package imports nothing heavy itself; import its modules.
"""

"""Keras models: the MLP builders and the preprocessing layer (mlp)."""

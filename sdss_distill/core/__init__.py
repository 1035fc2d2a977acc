"""numpy-only foundations every layer shares: schema, value checks, errors, logs, file I/O,
the model card and the TFLite file reader. Imports nothing above itself, never TensorFlow."""

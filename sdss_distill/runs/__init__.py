"""One training run: configuration, the run directory, the pipeline and its report."""

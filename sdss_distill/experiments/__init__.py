"""Runs and sweeps: one run's pipeline, the grid runner, statistics, reports and plots."""

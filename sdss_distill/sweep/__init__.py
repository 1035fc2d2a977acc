"""Sweeps over seeds, methods and settings: grid, statistics, summary tables and figures."""

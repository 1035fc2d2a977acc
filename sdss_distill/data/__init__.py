"""SDSS tables: load, clean and split (table), packaged datasets, Parquet sources larger than
memory (stream), SIMULATED catalogues (synth) and SkyServer downloads (skyserver)."""

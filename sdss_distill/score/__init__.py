"""Catalogue scoring on Dask: Parquet in, Parquet out, every row written or reported."""

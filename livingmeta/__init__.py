"""livingmeta: pure domain code for living systematic reviews (no prefect, no duckdb, no network, no clock)."""

__version__ = "0.1.0"

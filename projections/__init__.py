"""Projections: the event log folded, page by page, into DuckDB read models."""

"""Benchmark scripts (run them as modules from the project root: ``python -m bench.NAME``).

They are scripts, not tests: each prints a table of figures; see bench/README.md.
"""

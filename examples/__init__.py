"""Examples for downstream teams (not part of the installed package)."""

"""Adapter: schema revisions, one module each, oldest first (rev_NNNN_*.py)."""

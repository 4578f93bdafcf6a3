"""Shell: the benchmark harness (`python -m bench`): press→sign latency vs the bare broker."""

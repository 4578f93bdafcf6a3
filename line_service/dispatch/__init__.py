"""Room: dispatch."""

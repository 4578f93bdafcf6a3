"""Room: privacy."""

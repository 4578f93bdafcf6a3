"""Room: storage."""

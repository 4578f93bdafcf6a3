"""Room: broker."""

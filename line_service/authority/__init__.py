"""Room: authority."""

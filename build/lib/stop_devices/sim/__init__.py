"""Test and demo tooling: simulated devices and traffic, the safety monitor (not production)."""

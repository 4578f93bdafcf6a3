"""Composition root: the carpool line service (settings, engine, persistence, API, CLI)."""

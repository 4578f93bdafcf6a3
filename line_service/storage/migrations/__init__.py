"""Adapter: the Alembic environment of the service's schema (env.py, versions/)."""

"""Composition root: demo mode — simulated devices and traffic on the configured lines."""

from __future__ import annotations

from line_service.runtime import BackgroundJob
from line_service.settings import Settings


def demo_jobs(settings: Settings) -> tuple[BackgroundJob, ...]:
    """Background jobs that bring the demo line to life."""
    del settings
    return ()

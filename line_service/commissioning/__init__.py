"""The commissioning room: walking a stop's devices through the API and reporting."""

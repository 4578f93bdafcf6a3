"""Adapter: roadside devices (terminals and variable-message signs) over MQTT v1."""

"""Packaged classification schedules (TOML data)."""

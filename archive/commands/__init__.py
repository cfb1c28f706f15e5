"""CLI command groups that live with their features; archive/cli.py mounts each module's ``app``."""

"""Readers of tables and training logs, state files and report renderers (DESIGN §2)."""

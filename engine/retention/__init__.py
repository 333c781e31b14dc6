"""Retention: which backups to keep, forgetting the rest, and collecting unreferenced objects."""

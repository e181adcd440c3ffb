"""Backups: policies, backups, restores, retention and verification (issue 5)."""

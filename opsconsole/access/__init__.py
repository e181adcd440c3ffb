"""Roles per environment, the permission helper, API tokens, login throttling, sudo mode."""

"""Notifications: per-environment Slack, PagerDuty and email channels, delivered by the worker."""

"""Disaster recovery: DR plans, readiness, guarded failover, drills (issue 7)."""

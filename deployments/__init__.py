"""Deployments: environments, releases, deploy and rollback runs, locks and approvals."""

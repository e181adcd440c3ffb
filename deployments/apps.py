from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self) -> None:
        # Registers the deploy and rollback run kinds, and what a lost worker left on AWS.
        from deployments import jobs, lost, metrics, openapi  # noqa: F401  (run kinds, lost-worker reports, /metrics)
        from opsconsole.openapi import contribute
        from opsconsole.runs.schedules import register_periodic

        contribute(openapi.PATHS, openapi.SCHEMAS)

        register_periodic("deployments: expire approvals", "deployments.tasks.expire_approvals", lambda: 60)

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self) -> None:
        # Registers the deploy and rollback run kinds, and what a lost worker left on AWS.
        from deployments import jobs, lost  # noqa: F401
        from opsconsole.runs.schedules import register_periodic

        register_periodic("deployments: expire approvals", "deployments.tasks.expire_approvals", lambda: 60)

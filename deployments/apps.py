from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self) -> None:
        from deployments import jobs  # noqa: F401  (registers the deploy and rollback run kinds)
        from opsconsole.runs.schedules import register_periodic

        register_periodic("deployments: expire approvals", "deployments.tasks.expire_approvals", lambda: 60)

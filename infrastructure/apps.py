from django.apps import AppConfig


class InfrastructureConfig(AppConfig):
    name = "infrastructure"
    verbose_name = "Infrastructure (Terraform)"

    def ready(self) -> None:
        from infrastructure import conf, jobs, metrics  # noqa: F401  (registers the Terraform run kinds and /metrics)
        from opsconsole.runs.schedules import register_periodic

        register_periodic(
            "infrastructure: drift check", "infrastructure.tasks.check_drift", conf.drift_interval_seconds
        )

"""The DR app: plans, readiness checks, guarded failover, drills and failback."""

from django.apps import AppConfig

from opsconsole.env import env_int


def readiness_interval_seconds() -> int:
    return env_int("DR_READINESS_INTERVAL_SECONDS", 900, minimum=10)


class DrConfig(AppConfig):
    name = "dr"
    verbose_name = "Disaster recovery"

    def ready(self) -> None:
        from dr import jobs, metrics, openapi  # noqa: F401  (jobs registers the DR run kinds; metrics, /metrics)
        from dr.services import refuse_changes_while_failed_over
        from opsconsole.environments.services import register_change_blocker
        from opsconsole.openapi import contribute
        from opsconsole.runs.schedules import register_periodic

        register_change_blocker(refuse_changes_while_failed_over)
        contribute(openapi.PATHS, openapi.SCHEMAS)
        register_periodic("dr: readiness checks", "dr.tasks.check_readiness", readiness_interval_seconds)
        register_periodic("dr: expire unapproved requests", "dr.tasks.expire_approvals", lambda: 60)

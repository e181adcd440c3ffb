from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from notifications import conf, hooks, tasks  # noqa: F401  (tasks registers the Celery tasks)
        from opsconsole.runs.models import Run
        from opsconsole.runs.schedules import register_periodic
        from opsconsole.runs.signals import run_status_changed

        post_save.connect(hooks.run_created, sender=Run, dispatch_uid="notifications.run_created")
        run_status_changed.connect(hooks.run_status_changed, sender=Run, dispatch_uid="notifications.run_status")
        register_periodic(
            "notifications: overdue backups and lost deliveries", "notifications.tasks.sweep", conf.sweep_seconds
        )

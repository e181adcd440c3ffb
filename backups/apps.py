from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from backups import conf, delivery, jobs, metrics  # noqa: F401  (registers the backup run kinds and /metrics)
        from backups.models import BackupPolicy
        from backups.notices import overdue_backups
        from opsconsole.notices import register_notice_source
        from opsconsole.runs.schedules import register_periodic

        post_save.connect(_policy_saved, sender=BackupPolicy, dispatch_uid="backups.sync_schedule")
        post_delete.connect(_policy_deleted, sender=BackupPolicy, dispatch_uid="backups.remove_schedule")
        register_periodic("backups: retention", "backups.tasks.apply_retention", conf.retention_interval_seconds)
        register_periodic("backups: verify newest dump", "backups.tasks.verify_newest", conf.verify_interval_seconds)
        delivery.register()  # the backup section of the Delivery page
        register_notice_source(overdue_backups)  # backup.overdue, sent by the notifications sweep


def _policy_saved(sender, instance, raw=False, **kwargs) -> None:
    # Every save (form, admin, shell, fixture load aside) keeps the beat schedule in step.
    if not raw:
        from backups.services import sync_schedule

        sync_schedule(instance)


def _policy_deleted(sender, instance, **kwargs) -> None:
    from backups.services import remove_schedule

    remove_schedule(instance)

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "opsconsole.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from opsconsole.audit import signals  # noqa: F401  (login/logout auditing)
        from opsconsole.audit.admin import audit_every_admin
        from opsconsole.audit.refusals import WINDOW_SECONDS
        from opsconsole.runs.schedules import register_periodic

        audit_every_admin()  # django.contrib.admin, listed first, has loaded every app's admin module
        register_periodic("audit: coalesced refusals", "opsconsole.audit.tasks.flush_refusals", lambda: WINDOW_SECONDS)

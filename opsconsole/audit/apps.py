from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "opsconsole.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from opsconsole.audit import signals  # noqa: F401  (login/logout auditing)
        from opsconsole.audit.admin import audit_every_admin

        audit_every_admin()  # django.contrib.admin, listed first, has loaded every app's admin module

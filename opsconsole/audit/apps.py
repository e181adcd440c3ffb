from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "opsconsole.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from opsconsole.audit import signals  # noqa: F401  (login/logout auditing)

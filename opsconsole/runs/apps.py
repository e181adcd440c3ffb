from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "opsconsole.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from opsconsole.runs import builtin  # noqa: F401  (registers the core run kinds)

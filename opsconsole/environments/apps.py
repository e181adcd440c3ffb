from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "opsconsole.environments"
    label = "environments"
    verbose_name = "Environments"

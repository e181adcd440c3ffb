from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "opsconsole.access"
    label = "access"
    verbose_name = "Access control"

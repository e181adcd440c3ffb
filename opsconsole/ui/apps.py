from django.apps import AppConfig


class UiConfig(AppConfig):
    name = "opsconsole.ui"
    label = "ui"
    verbose_name = "Console pages"

from django.apps import AppConfig


class DrConfig(AppConfig):
    name = "dr"

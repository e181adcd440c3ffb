from django.contrib import admin

from deployments.models import Environment
from opsconsole.audit.admin import AuditedAdmin


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ["name", "tier", "aws_region"]

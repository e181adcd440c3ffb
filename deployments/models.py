"""Environments: the targets every run, lock and role refers to."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models


class Tier(models.TextChoices):
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class Environment(models.Model):
    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Use lowercase letters, digits and dashes.")],
    )
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.STAGING)
    aws_region = models.CharField(max_length=30, default="us-east-1")
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["tier", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_production(self) -> bool:
        return self.tier == Tier.PRODUCTION

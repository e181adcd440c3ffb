"""Where a pg_dump policy's database password comes from: an environment variable of the worker
or a Secrets Manager secret. Resolved at run time, in the worker, and never stored.

Which ones a policy may name is an allowlist the administrator configures (docs/backups.md):
variables whose name starts with BACKUP_PASSWORD_ENV_PREFIX, secrets whose name or ARN starts
with one of BACKUP_PASSWORD_SECRET_PREFIXES. It is checked when a policy is saved and again when a
run reads the password, so an older policy (or one changed behind the form's back) that names
anything else, SECRET_KEY say, fails its run without reading it.
"""

from __future__ import annotations

import json
import os

from backups import conf
from backups.postgres import Connection
from opsconsole import aws


class CredentialsUnavailable(Exception):
    """The password source named by the policy cannot be read; the message never holds a secret."""


def secret_name(secret_id: str) -> str:
    """A Secrets Manager secret's name, from its name or its ARN (…:secret:NAME-AbCdEf)."""
    if secret_id.startswith("arn:") and ":secret:" in secret_id:
        return secret_id.split(":secret:", 1)[1]
    return secret_id


def allowed_sources() -> str:
    """What a password source may be, in words (the policy form's help)."""
    allowed = f"env:{conf.password_env_prefix()}NAME"
    if prefixes := conf.password_secret_prefixes():
        allowed += f", or secretsmanager:ID of a secret whose name or ARN starts with {' or '.join(prefixes)}"
    else:
        allowed += " (no Secrets Manager secret is allowed: BACKUP_PASSWORD_SECRET_PREFIXES names none)"
    return f"Allowed: {allowed}. Empty: no password."


def validate_source(source: str) -> str:
    """The source as a policy keeps it; ValueError (naming what is allowed) when it is not one
    the allowlist lets a policy name."""
    source = (source or "").strip()
    if not source:
        return ""
    scheme, colon, name = source.partition(":")
    if not colon or scheme not in ("env", "secretsmanager"):
        raise ValueError('A password source is empty, "env:VARIABLE" or "secretsmanager:SECRET-ID".')
    if not name:
        raise ValueError("Name the variable or the secret after the colon.")
    if scheme == "env":
        prefix = conf.password_env_prefix()
        if not name.startswith(prefix) or name == prefix:
            raise ValueError(
                f"{source} is not an allowed password source: a variable's name must start with {prefix} "
                f"(BACKUP_PASSWORD_ENV_PREFIX), e.g. env:{prefix}STAGING."
            )
    else:
        prefixes = conf.password_secret_prefixes()
        if not prefixes:
            raise ValueError(
                f"{source} is not an allowed password source: Secrets Manager secrets are allowed once an "
                "administrator names their prefixes in BACKUP_PASSWORD_SECRET_PREFIXES (none are named)."
            )
        if not any(name.startswith(p) or secret_name(name).startswith(p) for p in prefixes):
            raise ValueError(
                f"{source} is not an allowed password source: a secret's name or ARN must start with "
                f"{' or '.join(prefixes)} (BACKUP_PASSWORD_SECRET_PREFIXES)."
            )
    return source


def resolve(definition: dict, region: str, role_arn: str = "") -> Connection:
    """The connection for a policy's copied definition. A Secrets Manager secret holding JSON
    (RDS's format: username, password, host, port, dbname) overrides the policy's fields. A source
    outside the allowlist is refused before anything is read."""
    fields = {
        "host": definition["database_host"],
        "port": int(definition.get("database_port") or 5432),
        "dbname": definition["database_name"],
        "user": definition["database_user"],
        "password": "",
        "sslmode": conf.db_sslmode(),
        "sslrootcert": conf.db_sslrootcert(),
    }
    try:
        source = validate_source(definition.get("password_source", ""))
    except ValueError as exc:
        raise CredentialsUnavailable(f"{exc} Nothing was read; an administrator must change the policy.") from None
    if source.startswith("env:"):
        name = source[4:]
        if name not in os.environ:
            raise CredentialsUnavailable(f"The worker has no environment variable {name} (the password source).")
        fields["password"] = os.environ[name]
    elif source.startswith("secretsmanager:"):
        secret_id = source.split(":", 1)[1]
        try:
            value = aws.client("secretsmanager", region, role_arn).get_secret_value(SecretId=secret_id)["SecretString"]
        except Exception as exc:
            raise CredentialsUnavailable(
                f"Secrets Manager secret {secret_id} could not be read ({aws.error_code(exc) or type(exc).__name__})."
            ) from None
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields["password"] = str(parsed.get("password", ""))
            for key, name in (("host", "host"), ("port", "port"), ("dbname", "dbname"), ("username", "user")):
                if parsed.get(key):
                    fields[name] = int(parsed[key]) if name == "port" else str(parsed[key])
        else:
            fields["password"] = value
    return Connection(**fields)

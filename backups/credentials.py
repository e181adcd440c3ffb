"""Where a pg_dump policy's database password comes from: an environment variable of the worker
or a Secrets Manager secret. Resolved at run time, in the worker, and never stored."""

from __future__ import annotations

import json
import os

from backups import conf
from backups.postgres import Connection
from opsconsole import aws


class CredentialsUnavailable(Exception):
    """The password source named by the policy cannot be read; the message never holds a secret."""


def validate_source(source: str) -> str:
    source = (source or "").strip()
    if source and not source.startswith(("env:", "secretsmanager:")):
        raise ValueError('A password source is empty, "env:VARIABLE" or "secretsmanager:SECRET-ID".')
    if source in ("env:", "secretsmanager:"):
        raise ValueError("Name the variable or the secret after the colon.")
    return source


def resolve(definition: dict, region: str, role_arn: str = "") -> Connection:
    """The connection for a policy's copied definition. A Secrets Manager secret holding JSON
    (RDS's format: username, password, host, port, dbname) overrides the policy's fields."""
    fields = {
        "host": definition["database_host"],
        "port": int(definition.get("database_port") or 5432),
        "dbname": definition["database_name"],
        "user": definition["database_user"],
        "password": "",
        "sslmode": conf.db_sslmode(),
        "sslrootcert": conf.db_sslrootcert(),
    }
    source = definition.get("password_source", "")
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

"""Where a channel's secret comes from: the Slack webhook URL or the PagerDuty routing key is an
environment variable of the worker ("env:VARIABLE") or a Secrets Manager secret
("secretsmanager:SECRET-ID"). The database holds only that reference; the value is read in the
worker at send time and never stored, logged or recorded in an attempt."""

from __future__ import annotations

import os

from django.core.exceptions import ValidationError

from opsconsole import aws


class SecretUnavailable(Exception):
    """The reference cannot be read; the message names the reference, never a value."""


def validate_reference(reference: str) -> str:
    reference = (reference or "").strip()
    if not reference.startswith(("env:", "secretsmanager:")):
        raise ValueError('Give the secret as "env:VARIABLE" or "secretsmanager:SECRET-ID", not the value itself.')
    if reference in ("env:", "secretsmanager:"):
        raise ValueError("Name the variable or the secret after the colon.")
    return reference


def clean_secret_reference(channel) -> None:
    """A channel kind's `clean` when its one setting is a secret reference (Slack, PagerDuty)."""
    try:
        channel.secret = validate_reference(channel.secret)
    except ValueError as exc:
        raise ValidationError({"secret": str(exc)}) from None


def resolve(reference: str, region: str, role_arn: str = "") -> str:
    if reference.startswith("env:"):
        name = reference[4:]
        value = os.environ.get(name, "")
        if not value:
            raise SecretUnavailable(f"The worker has no environment variable {name}.")
        return value
    if reference.startswith("secretsmanager:"):
        secret_id = reference.split(":", 1)[1]
        try:
            return aws.client("secretsmanager", region, role_arn).get_secret_value(SecretId=secret_id)["SecretString"]
        except Exception as exc:
            raise SecretUnavailable(
                f"Secrets Manager secret {secret_id} could not be read ({aws.error_code(exc) or type(exc).__name__})."
            ) from None
    raise SecretUnavailable("The channel names no secret.")

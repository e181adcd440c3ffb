"""The backup settings of docs/backups.md fail at start, in one line naming the variable, when
their value would not do: an sslmode libpq does not know, or a password prefix that would let a
policy name the console's own secrets."""

import pytest

from tests.test_configuration import start


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"BACKUP_DB_SSLMODE": "sometimes"},
            "BACKUP_DB_SSLMODE: expected one of disable, allow, prefer, require, verify-ca, verify-full, "
            "got 'sometimes'",
        ),
        ({"BACKUP_PASSWORD_ENV_PREFIX": "SECRET_"}, "BACKUP_PASSWORD_ENV_PREFIX: expected capitals"),
        ({"BACKUP_PASSWORD_ENV_PREFIX": "AWS_"}, "that no variable of the console's own starts with"),
        ({"BACKUP_PASSWORD_ENV_PREFIX": "backup_db_"}, "got 'backup_db_'"),
        ({"BACKUP_PASSWORD_ENV_PREFIX": "BACKUP_DB_PASSWORD"}, "ending in an underscore"),
    ],
)
def test_a_bad_backup_setting_fails_at_start(overrides, message):
    result = start(**overrides)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[0]
    assert "Traceback" not in result.stderr


def test_good_backup_settings_start():
    result = start(
        BACKUP_DB_SSLMODE="verify-full",
        BACKUP_DB_SSLROOTCERT="/etc/ssl/rds-global-bundle.pem",
        BACKUP_PASSWORD_ENV_PREFIX="OPS_PG_PASSWORD_",
        BACKUP_PASSWORD_SECRET_PREFIXES="backups/,rds!db-",
    )
    assert result.returncode == 0, result.stderr

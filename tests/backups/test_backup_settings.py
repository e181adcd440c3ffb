"""The backup settings of docs/backups.md fail at start, in one line naming the variable, when
their value would not do: an sslmode libpq does not know."""

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
    )
    assert result.returncode == 0, result.stderr

"""METRICS_TOKEN and METRICS_ALLOWED_IPS: a bad value stops the console at start, naming it."""

from __future__ import annotations

import pytest

from tests.test_configuration import start


def test_good_metrics_settings_start(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("a-long-enough-metrics-token\n")
    result = start(METRICS_TOKEN_FILE=str(token_file), METRICS_ALLOWED_IPS="10.0.0.0/8, 192.168.1.7,::1")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN: must be at least 16 characters long"),
        ({"METRICS_TOKEN_FILE": "/nonexistent/token"}, "METRICS_TOKEN_FILE: cannot read /nonexistent/token"),
        (
            {"METRICS_ALLOWED_IPS": "10.0.0.0/8,intranet"},
            "METRICS_ALLOWED_IPS: 'intranet' is not an address or network",
        ),
    ],
)
def test_a_bad_metrics_setting_fails_with_one_line_naming_it(overrides, message):
    result = start(**overrides)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"configuration error: {message}")
    assert "Traceback" not in result.stderr

"""Every URL the console fetches or links to is http or https with a host; anything else is refused
with a message when the environment is saved (admin, shell, fixtures through full_clean)."""

import pytest
from django.core.exceptions import ValidationError

from opsconsole.environments.models import Environment, validate_http_url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    ["http://prometheus:9090", "https://api.example.com/health?x=1", "http://10.0.0.7:8443/", "http://[::1]:9090"],
)
def test_http_and_https_urls_are_accepted(url):
    validate_http_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://internal:70/",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http://",
        "https:///path",
        "http://host:port/",
        "http://exa mple.com/",
        "http://example.com/\n",
        "example.com/health",
    ],
)
def test_other_schemes_and_malformed_urls_are_refused(url):
    with pytest.raises(ValidationError):
        validate_http_url(url)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("test_url", "file:///proc/self/environ"),
        ("prometheus_url", "gopher://127.0.0.1:6379/_FLUSHALL"),
        ("smoke_checks", [{"url": "file:///etc/shadow"}]),
    ],
)
def test_an_environment_with_a_non_http_url_is_refused_naming_the_field(field, value):
    environment = Environment(name="staging", **{field: value})
    with pytest.raises(ValidationError) as refused:
        environment.full_clean()
    assert field in refused.value.message_dict

"""The client's address: the one the audit log records and sign-in throttling counts by.

Without proxies (TRUSTED_PROXY_HOPS=0) it is REMOTE_ADDR, the connecting address. Behind N
proxies that each append the address they received the request from to X-Forwarded-For (an ALB:
N=1), it is the Nth entry from the right: the address the outermost trusted proxy saw. Entries
to the left of it were written by the client and are never read, so a client cannot choose its
address by sending the header itself.

When the header has fewer than N entries, or that entry is not an address, the request did not
come through the configured proxies as expected: REMOTE_ADDR is used, the one address nobody can
forge. (The leftmost entry would be the client's own claim.)

/metrics does not use this: its allowlist is for a scraper that connects directly, and a header
is no proof of where a request came from for a client that can reach the web process itself.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.utils.ipv6 import clean_ipv6_address


def client_ip(request) -> str | None:
    """The client's address, in the form the database returns it (IPv6 compressed, lower case,
    so an audit event's hash computed before saving still matches the stored row); None when
    there is no request or no address."""
    if request is None:
        return None
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        header = request.META.get("HTTP_X_FORWARDED_FOR", "")
        entries = [entry.strip() for entry in header.split(",")] if header.strip() else []
        if len(entries) >= hops:
            address = normalised_address(entries[-hops])
            if address is not None:
                return address
    return normalised_address(request.META.get("REMOTE_ADDR", ""))


def normalised_address(value: str) -> str | None:
    """An IPv4 or IPv6 address as the database stores it, or None when `value` is not one."""
    try:
        validate_ipv46_address(value)
    except ValidationError:
        return None
    return clean_ipv6_address(value) if ":" in value else value

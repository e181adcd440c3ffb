"""The strict layer: where the AWS API reference says AWS refuses, the sandbox refuses too.

moto says yes to much that AWS says no to, and answers some reads more kindly than AWS does. Each
module in this package is one area's rules over moto's models (or over the requests moto serves),
with an `install()` that `sandbox.server` calls before it serves; each rule's docstring cites the
API reference (or the service's documented behaviour) it follows. A rule is never relaxed to make a
test pass: when AWS would refuse, the console must cope.

Rules that depend on chance or on the clock (a stale read, credentials that expire) read their
settings from SANDBOX_* environment variables, so tests can make them certain and fast.
"""

from __future__ import annotations

import importlib

# One module per area; each has install(). Backup and DR rules slot in here the same way.
RULES: tuple[str, ...] = ("sts", "ecs", "elbv2", "cloudwatch")


def install() -> None:
    for name in RULES:
        importlib.import_module(f"{__name__}.{name}").install()

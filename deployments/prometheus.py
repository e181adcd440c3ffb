"""Deploy verification by Prometheus: evaluate an environment's PromQL expression through the
HTTP API (`/api/v1/query`) and compare it with its threshold. Free of Django, like ecs.py.

Two kinds of trouble are kept apart: `QueryError` is permanent (Prometheus refused the expression,
or it returns a range vector or a string): asking again gives the same answer. `Unverifiable` may
pass (Prometheus unreachable, a 5xx, a timeout, no data yet). Neither ever counts as a pass.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any


class Unverifiable(Exception):
    """The expression could not be evaluated now; it may work on a later try."""


class QueryError(Exception):
    """Prometheus refused the expression or answered with a type the check cannot compare."""


class Comparison:
    ABOVE = "above"  # roll back when the value is above the threshold (an error ratio, a latency)
    BELOW = "below"  # roll back when the value is below it (a success ratio, a request rate)


@dataclass(frozen=True)
class Sample:
    labels: dict = field(hash=False)
    value: float

    def describe(self) -> str:
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k != "__name__")
        return f"{self.value:.6g}" + (f" {{{labels}}}" if labels else "")


@dataclass(frozen=True)
class Check:
    """What a deploy is verified against: copied from the environment into the run at launch."""

    url: str
    expression: str
    threshold: float
    comparison: str = Comparison.ABOVE
    timeout: float = 10.0

    def breaches(self, value: float) -> bool:
        return value < self.threshold if self.comparison == Comparison.BELOW else value > self.threshold

    @property
    def rule(self) -> str:
        return f"rolls back {self.comparison} {self.threshold:g}"


@dataclass(frozen=True)
class Reading:
    """The worst sample of one evaluation (the highest for `above`, the lowest for `below`)."""

    sample: Sample
    breached: bool
    series: int


def _get(base_url: str, path: str, params: dict, timeout: float) -> Any:
    """GET a Prometheus API path; return its `data`, or raise QueryError / Unverifiable."""
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(4 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        body = exc.read(65536)
        try:
            error = json.loads(body)
        except ValueError:
            error = {}
        message = str(error.get("error") or f"HTTP {exc.code} {exc.reason}")[:500]
        # The API answers 400 bad_data for a parse error and 422 execution for an evaluation error:
        # the same expression fails the same way next time. Other codes (5xx, 404 behind a proxy)
        # say nothing about the expression.
        if exc.code in (400, 422) and error.get("errorType") in ("bad_data", "execution"):
            raise QueryError(message) from None
        raise Unverifiable(f"Prometheus at {base_url} answered {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise Unverifiable(f"Prometheus at {base_url} is unreachable ({reason})") from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise Unverifiable(f"{base_url} did not answer like the Prometheus API (not JSON)") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise Unverifiable(f"Prometheus at {base_url} answered {str(answer)[:200]}")
    return answer.get("data")


def query(base_url: str, expression: str, timeout: float = 10.0) -> list[Sample]:
    """Evaluate an instant query; a scalar becomes one sample with no labels."""
    data = _get(base_url, "/api/v1/query", {"query": expression}, timeout) or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [Sample({}, float(result[1]))]
    if kind == "vector":
        return [Sample(item.get("metric", {}), float(item["value"][1])) for item in result or []]
    raise QueryError(f"it returns a {kind}; the check needs an instant vector or a scalar")


def evaluate(check: Check) -> Reading:
    """One evaluation of the check. Every series counts: the worst one decides.

    No series, or only NaN (0/0 when there was no traffic), is `Unverifiable`: an absence of data
    is not evidence that the release is healthy.
    """
    samples = [s for s in query(check.url, check.expression, check.timeout) if not math.isnan(s.value)]
    if not samples:
        raise Unverifiable("the expression returned no data (add `or vector(0)` if no data means no errors)")
    pick = min if check.comparison == Comparison.BELOW else max
    worst = pick(samples, key=lambda s: s.value)
    return Reading(worst, check.breaches(worst.value), len(samples))


def parse_check(base_url: str, expression: str, timeout: float = 5.0) -> str:
    """Ask the server's parser about the expression (`/api/v1/format_query`, Prometheus 2.32+).

    Returns the formatted expression; raises QueryError with the parser's message, or Unverifiable
    when the server cannot be asked (unreachable, or too old to have the endpoint).
    """
    data = _get(base_url, "/api/v1/format_query", {"query": expression}, timeout)
    return str(data)

"""Deploy verification by Prometheus, against a real Prometheus server (Debian's `prometheus`).

The test serves a tiny /metrics endpoint whose counters it controls: every scrape adds 100
requests per route, and errors at a fixed share per service ("good": none; "bad": 50% on /a and
10% on /b). Prometheus scrapes it every second; the deploy's bake step reads the error ratio.
AWS is the moto sandbox over HTTP (tests/deployments/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from django.forms.models import model_to_dict

from deployments import ecs, prometheus
from deployments.admin import EnvironmentForm
from deployments.services import request_deploy, request_rollback
from opsconsole.environments.models import Environment
from opsconsole.runs.models import EnvironmentLock, Status
from tests.conftest import client_for

from .conftest import free_port, wire
from .test_rolling_deploy import service_image

ERRORS_PER_SCRAPE = {("good", "/a"): 0, ("good", "/b"): 0, ("bad", "/a"): 50, ("bad", "/b"): 10}
REQUESTS_PER_SCRAPE = 100


def ratio(service: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return (
        f'sum{grouping}(increase(demo_http_errors_total{{service="{service}"}}[15s])) / '
        f'sum{grouping}(increase(demo_http_requests_total{{service="{service}"}}[15s]))'
    )


class Counters:
    def __init__(self):
        self.scrapes = 0
        self.lock = threading.Lock()

    def render(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        lines = ["# TYPE demo_http_requests_total counter", "# TYPE demo_http_errors_total counter"]
        for (service, route), errors in ERRORS_PER_SCRAPE.items():
            labels = f'service="{service}",route="{route}"'
            lines.append(f"demo_http_requests_total{{{labels}}} {n * REQUESTS_PER_SCRAPE}")
            lines.append(f"demo_http_errors_total{{{labels}}} {n * errors}")
        return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def metrics_target():
    counters = Counters()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = counters.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def instant(url: str, expression: str):
    query = urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as response:
        return json.load(response)["data"]["result"]


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory, metrics_target):
    workdir = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [metrics_target]}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: apt-get install prometheus (scripts/test.sh does)"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Ready once both ratios have enough samples for increase() to give a value.
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()[-2000:]
            try:
                if instant(url, ratio("good")) and instant(url, ratio("bad")):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not scrape the demo target within 90s"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def verified(environment: Environment, url: str, expression: str, **fields) -> Environment:
    environment.refresh_from_db()  # keep the live release a deploy recorded
    environment.prometheus_url = url
    environment.prometheus_query = expression
    environment.prometheus_threshold = fields.pop("threshold", 0.05)
    for name, value in fields.items():
        setattr(environment, name, value)
    environment.full_clean()
    environment.save()
    return environment


def messages(run) -> list[str]:
    return list(run.events.values_list("message", flat=True))


# --- Deploys -----------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_healthy_error_ratio_passes_and_a_breach_rolls_the_deploy_back(
    users, staging, stack, releases, prometheus_url
):
    environment = verified(wire(staging, stack, "staging", bake_seconds=1), prometheus_url, ratio("good"))
    good = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    good.refresh_from_db()
    assert good.status == Status.SUCCEEDED, (good.error, messages(good))
    assert good.params["prometheus_url"] == prometheus_url
    assert any(m.startswith(f"Prometheus: {ratio('good')} = 0; rolls back above 0.05: ok") for m in messages(good)), (
        messages(good)
    )

    # The same environment now watches the service whose errors are 50% and 10% by route.
    verified(environment, prometheus_url, ratio("bad"))
    bad = request_deploy(environment, releases["v1.2.0"], users["deployer"])
    bad.refresh_from_db()
    assert bad.status == Status.ROLLED_BACK, (bad.error, messages(bad))
    assert bad.error.startswith(f"Prometheus verification failed: {ratio('bad')} = 0.3")
    assert bad.error.endswith("the check rolls back above 0.05")
    assert service_image(stack, environment) == releases["v1.1.0"].image
    environment.refresh_from_db()
    assert environment.live_release == releases["v1.1.0"]
    lock = EnvironmentLock.objects.get(environment=environment)
    assert lock.reason.startswith(f"Rolled back by run #{bad.pk}: Prometheus verification failed")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_worst_series_decides_and_is_named(users, staging, stack, releases, prometheus_url):
    environment = verified(wire(staging, stack, "staging"), prometheus_url, ratio("bad", by="route"), threshold=0.2)
    run = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    assert 'route="/a"' in run.error and "(worst of 2 series)" in run.error
    assert run.error.startswith(f"Prometheus verification failed: {ratio('bad', by='route')} = 0.5 ")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_below_rolls_back_when_the_value_falls_under_the_threshold(users, staging, stack, releases, prometheus_url):
    # A success ratio of 0.7 against a floor of 0.99.
    success = f"1 - ({ratio('bad')})"
    environment = verified(
        wire(staging, stack, "staging"), prometheus_url, success, threshold=0.99, prometheus_comparison="below"
    )
    run = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    assert run.error.endswith("the check rolls back below 0.99")
    assert " = 0.7" in run.error


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_no_data_during_the_bake_means_not_verified_and_rolls_back(users, staging, stack, releases, prometheus_url):
    environment = verified(
        wire(staging, stack, "staging", bake_seconds=1), prometheus_url, 'sum(demo_http_requests_total{service="gone"})'
    )
    run = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    assert run.error == (
        "Prometheus verification failed: the expression returned no data (add `or vector(0)` if no data means "
        "no errors); the deploy could not be verified"
    )
    assert service_image(stack, environment) == stack_initial_image(stack)


def stack_initial_image(stack) -> str:
    return f"{stack.repository_uri}@{stack.images['v1.0.0']}"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_prometheus_fails_the_deploy_before_the_service_changes(users, staging, stack, releases):
    closed = f"http://127.0.0.1:{free_port()}"
    environment = verified(wire(staging, stack, "staging"), closed, ratio("good"))
    run = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert f"Prometheus at {closed} is unreachable" in run.error
    assert run.error.endswith("so the deploy could not be verified. Nothing was changed on the service.")
    assert service_image(stack, environment) == stack_initial_image(stack)
    assert [step["state"] for step in run.steps][:2] == ["failed", "pending"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_expression_prometheus_refuses_fails_the_deploy_before_the_service_changes(
    users, staging, stack, releases, prometheus_url
):
    environment = verified(wire(staging, stack, "staging"), prometheus_url, "sum(rate(demo_http_errors_total[5m])")
    run = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "The Prometheus verification cannot run ('sum(rate(demo_http_errors_total[5m])': " in run.error
    assert "parse error" in run.error
    assert service_image(stack, environment) == stack_initial_image(stack)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_manual_rollback_is_not_failed_by_the_errors_it_is_meant_to_end(
    users, staging, stack, releases, prometheus_url
):
    environment = verified(wire(staging, stack, "staging"), prometheus_url, ratio("good"))
    for tag in ("v1.1.0", "v1.2.0"):
        run = request_deploy(environment, releases[tag], users["deployer"])
        run.refresh_from_db()
        assert run.status == Status.SUCCEEDED, run.error
    verified(environment, prometheus_url, ratio("bad"))  # v1.2.0 turned out bad
    run = request_rollback(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert "A rollback is not verified by Prometheus (its window still holds the errors)." in messages(run)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_blue_green_traffic_step_that_breaches_shifts_traffic_back(users, staging, stack, releases, prometheus_url):
    environment = verified(wire(staging, stack, "staging", strategy="blue_green"), prometheus_url, ratio("bad"))
    run = request_deploy(environment, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    assert run.error.startswith("Prometheus verification failed:")
    assert run.result["live_color"] == "blue"
    environment.refresh_from_db()
    assert environment.live_color == "blue"


# --- The bake loop and the client, directly ----------------------------------------------------


def test_prometheus_going_away_during_the_bake_is_a_failed_verification():
    closed = f"http://127.0.0.1:{free_port()}"
    check = prometheus.Check(url=closed, expression="vector(0)", threshold=0.05, timeout=2)
    logged = []
    poller = ecs.Poller(log=logged.append, interval=0.01)
    problem = ecs.bake(None, poller, [], [], 0.05, check)
    assert problem.startswith(f"Prometheus verification failed: Prometheus at {closed} is unreachable")
    assert problem.endswith("the deploy could not be verified")
    assert len(logged) >= 2 and all(line.startswith(f"Prometheus: Prometheus at {closed}") for line in logged)


@pytest.mark.integration
def test_the_client_reads_scalars_and_vectors_and_refuses_range_vectors(prometheus_url):
    assert prometheus.query(prometheus_url, "scalar(vector(0.25))") == [prometheus.Sample({}, 0.25)]
    samples = prometheus.query(prometheus_url, 'demo_http_requests_total{service="good"}')
    assert sorted(s.labels["route"] for s in samples) == ["/a", "/b"]
    with pytest.raises(prometheus.QueryError, match="returns a matrix"):
        prometheus.query(prometheus_url, "demo_http_requests_total[1m]")
    nan = prometheus.Check(url=prometheus_url, expression="vector(0) / vector(0)", threshold=1)
    with pytest.raises(prometheus.Unverifiable, match="no data"):
        prometheus.evaluate(nan)


# --- The admin form ------------------------------------------------------------------------------


def form_for(environment: Environment, **changes) -> EnvironmentForm:
    data = model_to_dict(environment)
    for name in ("migration_command", "smoke_checks", "alarm_names", "traffic_steps"):
        data[name] = json.dumps(data[name])
    data = {key: ("" if value is None else value) for key, value in data.items()}
    data.update(changes)
    return EnvironmentForm(data=data, instance=environment)


@pytest.mark.integration
@pytest.mark.django_db
def test_the_admin_form_shows_the_prometheus_parse_error(staging, prometheus_url):
    form = form_for(staging, prometheus_url=prometheus_url, prometheus_query="sum(rate(x[5m])", prometheus_threshold=1)
    assert not form.is_valid()
    assert form.errors["prometheus_query"][0].startswith("Prometheus cannot parse it: ")
    assert "parse error" in form.errors["prometheus_query"][0]

    form = form_for(staging, prometheus_url=prometheus_url, prometheus_query=ratio("good"), prometheus_threshold=0.05)
    assert form.is_valid(), form.errors
    form.save()
    staging.refresh_from_db()
    assert staging.prometheus_query == ratio("good") and staging.prometheus_threshold == 0.05


@pytest.mark.django_db
def test_the_admin_form_refuses_an_incomplete_check_and_changes_nothing(staging, settings):
    settings.PROMETHEUS_URL = ""
    cases = [
        ({"prometheus_query": "vector(1)", "prometheus_url": "http://prom:9090"}, "prometheus_threshold"),
        ({"prometheus_query": "vector(1)", "prometheus_threshold": "1"}, "prometheus_url"),
        ({"prometheus_threshold": "0.1"}, "prometheus_query"),
        ({"prometheus_query": "up", "prometheus_threshold": "1", "prometheus_url": "ftp://prom"}, "prometheus_url"),
        (
            {"prometheus_query": "up", "prometheus_threshold": "1", "prometheus_url": "http://u:secret@prom:9090"},
            "prometheus_url",
        ),
    ]
    for changes, field in cases:
        staging.refresh_from_db()  # an invalid form still leaves its values on the instance
        form = form_for(staging, **changes)
        assert not form.is_valid(), changes
        assert list(form.errors) == [field], form.errors
    staging.refresh_from_db()
    assert staging.prometheus_query == "" and staging.prometheus_threshold is None


@pytest.mark.django_db
def test_the_setting_is_the_url_when_the_environment_names_none(staging, settings):
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"
    form = form_for(staging, prometheus_query="vector(1)", prometheus_threshold="1")
    # The server is not reachable from here: the shape is enough; every deploy asks it again.
    assert form.is_valid(), form.errors
    assert form.save().prometheus_endpoint == settings.PROMETHEUS_URL


@pytest.mark.django_db
def test_the_admin_page_has_the_prometheus_fields(users, staging):
    response = client_for(users["superuser"]).get(f"/admin/environments/environment/{staging.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Verification by Prometheus" in html
    for name in ("prometheus_url", "prometheus_query", "prometheus_threshold", "prometheus_comparison"):
        assert f'name="{name}"' in html
    assert "Roll back when the value is below the threshold" in html

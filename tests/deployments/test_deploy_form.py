"""The deploy and rollback forms carry a one-time token: sent twice (a double click, a resubmitted
page) they make one run, and the second answer shows that run as already requested."""

from unittest import mock

import pytest
from django.contrib.messages import get_messages

from deployments.models import Deployment, Release
from opsconsole.runs.models import EnvironmentLock, IdempotencyKey, Run, Status
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployable(staging):
    staging.ecs_cluster, staging.ecs_service, staging.container_name = "c", "s", "api"
    staging.save()
    return staging


@pytest.fixture
def releases(db):
    return [
        Release.objects.create(repository="r", tag=f"v{n}", digest=f"sha256:{n}" + "0" * 63, registered_by_name="ci")
        for n in (1, 2)
    ]


@pytest.fixture(autouse=True)
def no_execution(settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


@pytest.fixture
def deployer(users, deployable):
    return client_for(users["deployer"])


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_page_gives_each_form_a_fresh_token(deployer, releases):
    first, second = deployer.get("/environments/staging/"), deployer.get("/environments/staging/")
    assert first.context["deploy_token"] != second.context["deploy_token"]
    assert f'name="request_token" value="{first.context["deploy_token"]}"' in first.content.decode()


def test_a_form_sent_twice_makes_one_run_and_shows_it(deployer, releases):
    token = deployer.get("/environments/staging/").context["deploy_token"]
    form = {"release": releases[0].pk, "request_token": token}

    first = deployer.post("/environments/staging/deploy/", form)
    [run] = Run.objects.all()
    assert first.status_code == 302 and first.url == f"/runs/{run.pk}/"

    again = deployer.post("/environments/staging/deploy/", form)
    assert again.status_code == 302 and again.url == f"/runs/{run.pk}/"
    assert said(again) == [f"Already requested: this form was sent before and started run #{run.pk}."]
    assert Run.objects.count() == 1 and Deployment.objects.count() == 1


def test_the_same_token_with_another_release_is_refused(deployer, releases):
    token = deployer.get("/environments/staging/").context["deploy_token"]
    deployer.post("/environments/staging/deploy/", {"release": releases[0].pk, "request_token": token})
    response = deployer.post("/environments/staging/deploy/", {"release": releases[1].pk, "request_token": token})
    assert response.status_code == 302 and response.url == "/environments/staging/"
    assert said(response) == ["This form was already sent with other values; reload the page to make a new request."]
    assert Run.objects.count() == 1


def test_a_refused_form_leaves_its_token_free(deployer, users, deployable, releases):
    token = deployer.get("/environments/staging/").context["deploy_token"]
    form = {"release": releases[0].pk, "request_token": token}
    EnvironmentLock.objects.create(environment=deployable, held_by="ada", reason="maintenance")

    refused = deployer.post("/environments/staging/deploy/", form)
    assert refused.url == "/environments/staging/" and "locked" in said(refused)[0]
    assert not Run.objects.exists() and not IdempotencyKey.objects.exists()

    EnvironmentLock.objects.all().delete()
    assert deployer.post("/environments/staging/deploy/", form).url.startswith("/runs/")
    assert Run.objects.count() == 1


def test_another_persons_token_is_their_own(deployer, users, releases):
    token = deployer.get("/environments/staging/").context["deploy_token"]
    deployer.post("/environments/staging/deploy/", {"release": releases[0].pk, "request_token": token})
    admin = client_for(users["admin"])
    response = admin.post("/environments/staging/deploy/", {"release": releases[0].pk, "request_token": token})
    # Not a replay of dana's answer: the admin's own request, refused as a duplicate of her run.
    [run] = Run.objects.all()
    assert response.url == "/environments/staging/"
    assert said(response) == [
        f"An identical request is already queued on staging: Deploy run #{run.pk} (/runs/{run.pk}/). "
        "Follow that run instead of asking again."
    ]


def test_without_a_token_a_second_identical_request_is_refused_as_a_duplicate(deployer, releases):
    deployer.post("/environments/staging/deploy/", {"release": releases[0].pk})
    response = deployer.post("/environments/staging/deploy/", {"release": releases[0].pk})
    [run] = Run.objects.all()
    assert response.url == "/environments/staging/" and f"Deploy run #{run.pk}" in said(response)[0]


def test_the_rollback_form_sent_twice_makes_one_rollback(deployer, deployable, releases):
    good = Run.objects.create(kind="deployments.deploy", environment=deployable, status=Status.SUCCEEDED)
    Deployment.objects.create(run=good, environment=deployable, release=releases[0])
    deployable.live_release = releases[1]
    deployable.save()
    token = deployer.get("/environments/staging/").context["rollback_token"]
    form = {"release": releases[0].pk, "confirm": "yes", "request_token": token}

    first = deployer.post("/environments/staging/rollback/", form)
    again = deployer.post("/environments/staging/rollback/", form)

    [rollback] = Run.objects.filter(kind="deployments.rollback")
    assert first.url == again.url == f"/runs/{rollback.pk}/"
    assert said(again) == [f"Already requested: this form was sent before and started run #{rollback.pk}."]

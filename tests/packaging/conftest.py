"""Fixtures for the packaging tests: the sandbox AWS of the deployment tests, and the worker
processes of the integration tests, reused as they are."""

from tests.deployments.conftest import releases, sandbox_endpoint, stack, staging_aws  # noqa: F401
from tests.integration.conftest import clean_queues, processes  # noqa: F401

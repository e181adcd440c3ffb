"""Fixtures the security tests borrow: the authorisation matrix's world (users by role, a token
per scope, a run, plan, backup and DR operation in staging), the sandbox AWS and its releases,
a real source database with a pg_dump policy, and a real Terraform workspace."""

from tests.access.test_authorization_matrix import world  # noqa: F401
from tests.backups.conftest import pg_policy, source_db  # noqa: F401
from tests.deployments.conftest import releases, sandbox_endpoint, stack, staging_aws  # noqa: F401
from tests.infrastructure.conftest import terraform_root, workspace  # noqa: F401

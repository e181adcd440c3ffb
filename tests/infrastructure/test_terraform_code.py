"""The infrastructure code in terraform/ is formatted, loads without error diagnostics, and
passes every policy rule; each rule catches its bad fixture and names file, resource and rule."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from infrastructure import policy
from infrastructure.terraform import Terraform, TerraformError

CODE = Path(settings.BASE_DIR) / "terraform"
BAD = Path(__file__).parent / "fixtures" / "policy"


def terraform(tmp_path) -> Terraform:
    return Terraform(directory=CODE, data_dir=tmp_path / "data")


def test_the_code_is_formatted(tmp_path):
    result = terraform(tmp_path).run(["fmt", "-check", "-recursive", "-diff", "-no-color"])
    assert result.code == 0


def test_the_code_loads_with_its_modules_and_no_error_diagnostics(tmp_path):
    # `terraform get` loads the whole configuration (root and modules) offline. `validate` would
    # also check references, but it needs the AWS provider's schema, which cannot be downloaded here.
    result = terraform(tmp_path).run(["get", "-no-color"])
    assert "- network in modules/network" in result.stdout_lines
    assert "- database in modules/database" in result.stdout_lines


def test_a_broken_file_fails_the_load_with_its_location(tmp_path):
    broken = tmp_path / "code"
    shutil.copytree(CODE, broken)
    (broken / "broken.tf").write_text('resource "aws_s3_bucket" "x" { oops }\n')
    with pytest.raises(TerraformError, match="broken.tf|Argument or block definition required"):
        Terraform(directory=broken, data_dir=tmp_path / "data").run(["get", "-no-color"])


def test_the_code_passes_every_policy_rule():
    assert policy.check(CODE) == []


def test_the_policy_reads_the_whole_stack():
    code = policy.read_code(CODE)
    assert [module.path for module in code.modules] == [".", "modules/database", "modules/network"]
    addresses = {block.address for module in code.modules for block in module.blocks}
    assert {"aws_ecs_service.api", "aws_lb_target_group.green", "aws_backup_plan.main", "module.database"} <= addresses


@pytest.mark.parametrize(
    ("fixture", "resource", "rule"),
    [
        ("unencrypted_database.tf", "aws_db_instance.main", "database-encrypted"),
        ("public_database.tf", "aws_db_instance.main", "database-private"),
        ("open_database_port.tf", "aws_security_group.cache", "open-database-port"),
        ("bucket_without_public_access_block.tf", "aws_s3_bucket.assets", "bucket-public-access-block"),
        ("missing_backup_retention.tf", "aws_db_instance.main", "backup-retention"),
        ("secret_in_environment.tf", "aws_ecs_task_definition.api", "secret-in-environment"),
    ],
)
def test_each_rule_catches_its_bad_fixture(tmp_path, fixture, resource, rule):
    shutil.copy(BAD / fixture, tmp_path / fixture)
    findings = policy.check(tmp_path)
    assert [(f.file, f.resource, f.rule) for f in findings] == [(fixture, resource, rule)]
    assert str(findings[0]).startswith(f"{fixture}: {resource}: [{rule}] ")


def test_the_seed_plans_terraform_fails_the_checks():
    # fixtures/seed/main.tf is the seed plan's main.tf, verbatim: the faults terraform/ fixes.
    rules = {finding.rule for finding in policy.check(Path(__file__).parent / "fixtures" / "seed")}
    assert rules == {"database-encrypted", "secret-in-environment"}


def test_a_syntax_error_is_reported_with_the_file_not_raised(tmp_path):
    (tmp_path / "main.tf").write_text('resource "terraform_data" "x" {\n  input = "no closing brace"\n')
    code = policy.read_code(tmp_path)
    assert not code.ok and code.errors[0].startswith("main.tf: ")
    assert [f.rule for f in policy.check(tmp_path)] == ["syntax"]

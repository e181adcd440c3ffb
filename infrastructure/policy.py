"""The Terraform code as data: python-hcl2 reads every .tf file under a directory, for the
code view on the Infrastructure page and for the policy checks that run in the test suite and
before every plan. No Django imports.

Each rule looks at literal values only; an expression it cannot evaluate counts against the
resource where the safe answer needs a literal (encryption must be `true`, not `var.x`).
A Finding names the file, the resource and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

OPTIONS = SerializationOptions(strip_string_quotes=True)
DATABASE_PORTS = {1433, 1521, 3306, 5432, 6379, 11211, 27017}
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}
PUBLIC_ACCESS_FLAGS = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
SECRET_VALUE = re.compile(r"password|secret|token|://[^/\s]*:[^@\s]*@", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    file: str
    resource: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.resource}: [{self.rule}] {self.message}"


@dataclass
class Block:
    kind: str  # resource, data, module, variable, output
    type: str  # resource/data type; empty for the others
    name: str
    body: dict
    file: str

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else "module." if self.kind == "module" else ""
        return f"{prefix}{self.type}.{self.name}" if self.type else f"{prefix}{self.name}"


@dataclass
class Module:
    path: str  # "." for the root, "modules/network" for a module
    blocks: list[Block] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def of(self, kind: str, type_: str | None = None) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind and (type_ is None or b.type == type_)]


@dataclass
class Code:
    root: Path
    modules: list[Module]
    errors: list[str]  # "file: message" for files that do not parse

    @property
    def ok(self) -> bool:
        return not self.errors


def read_code(root: Path) -> Code:
    """Every .tf file under `root` (skipping .terraform), grouped by directory."""
    root = Path(root)
    modules: dict[str, Module] = {}
    errors: list[str] = []
    for path in sorted(root.rglob("*.tf")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        directory = str(relative.parent)
        module = modules.setdefault(directory, Module(directory))
        module.files.append(str(relative))
        try:
            parsed = hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=OPTIONS)
        except Exception as exc:  # any parse error: report it with the file, never crash the page
            errors.append(f"{relative}: {_first_line(exc)}")
            continue
        module.blocks.extend(_blocks(parsed, str(relative)))
    ordered = sorted(modules.values(), key=lambda m: (m.path != ".", m.path))
    return Code(root, ordered, errors)


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "…") if len(text) > 300 else text or type(exc).__name__


def _blocks(parsed: dict, file: str):
    for kind in ("resource", "data"):
        for entry in parsed.get(kind, []):
            for type_, named in entry.items():
                for name, body in named.items():
                    yield Block(kind, type_, name, body, file)
    for kind in ("module", "variable", "output"):
        for entry in parsed.get(kind, []):
            for name, body in entry.items():
                yield Block(kind, "", name, body, file)


# --- Policy rules -------------------------------------------------------------------------------


def check(root: Path) -> list[Finding]:
    code = read_code(root)
    findings = [Finding(error.split(":", 1)[0], "-", "syntax", error.split(":", 1)[1].strip()) for error in code.errors]
    for module in code.modules:
        for rule in RULES:
            findings.extend(rule(module))
    return findings


def _is_true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_literal(value) -> bool:
    return not (isinstance(value, str) and "${" in value)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _finding(block: Block, rule: str, message: str) -> Finding:
    return Finding(block.file, block.address, rule, message)


def database_encrypted(module: Module):
    for block in module.of("resource", "aws_db_instance") + module.of("resource", "aws_rds_cluster"):
        if not _is_true(block.body.get("storage_encrypted")):
            yield _finding(block, "database-encrypted", "storage_encrypted must be true.")


def database_private(module: Module):
    for block in module.of("resource", "aws_db_instance") + module.of("resource", "aws_rds_cluster_instance"):
        value = block.body.get("publicly_accessible", False)
        if _is_true(value) or not _is_literal(value):
            yield _finding(block, "database-private", "publicly_accessible must be false.")


def backup_retention(module: Module):
    checks = (
        ("aws_db_instance", "backup_retention_period"),
        ("aws_elasticache_replication_group", "snapshot_retention_limit"),
    )
    for type_, attribute in checks:
        for block in module.of("resource", type_):
            value = block.body.get(attribute)
            if value is None or (_is_literal(value) and (_int(value) or 0) < 1):
                yield _finding(block, "backup-retention", f"{attribute} must be at least 1 day.")


def _covers_database_port(rule: dict) -> bool:
    if str(rule.get("protocol", "tcp")) in ("-1", "all"):
        return True
    low, high = _int(rule.get("from_port")), _int(rule.get("to_port"))
    if low is None or high is None:
        return True  # not a literal: assume the worst
    return any(low <= port <= high for port in DATABASE_PORTS)


def _open_to_world(rule: dict, *keys: str) -> bool:
    for key in keys:
        value = rule.get(key)
        values = value if isinstance(value, list) else [value]
        if any(v in OPEN_CIDRS for v in values):
            return True
    return False


def no_open_database_port(module: Module):
    message = "opens a database or cache port to the internet (0.0.0.0/0)."
    for block in module.of("resource", "aws_security_group"):
        for rule in block.body.get("ingress", []) or []:
            if isinstance(rule, dict) and _open_to_world(rule, "cidr_blocks", "ipv6_cidr_blocks"):
                if _covers_database_port(rule):
                    yield _finding(block, "open-database-port", message)
    for block in module.of("resource", "aws_security_group_rule"):
        if block.body.get("type") == "ingress" and _open_to_world(block.body, "cidr_blocks", "ipv6_cidr_blocks"):
            if _covers_database_port(block.body):
                yield _finding(block, "open-database-port", message)
    for block in module.of("resource", "aws_vpc_security_group_ingress_rule"):
        if _open_to_world(block.body, "cidr_ipv4", "cidr_ipv6") and _covers_database_port(
            {"protocol": block.body.get("ip_protocol", "tcp"), **block.body}
        ):
            yield _finding(block, "open-database-port", message)


def bucket_public_access_block(module: Module):
    blocks = module.of("resource", "aws_s3_bucket_public_access_block")
    for bucket in module.of("resource", "aws_s3_bucket"):
        reference = f"aws_s3_bucket.{bucket.name}."
        matching = [b for b in blocks if reference in str(b.body.get("bucket", ""))]
        if not matching:
            yield _finding(bucket, "bucket-public-access-block", "has no aws_s3_bucket_public_access_block.")
        elif not all(_is_true(matching[0].body.get(flag)) for flag in PUBLIC_ACCESS_FLAGS):
            yield _finding(
                bucket,
                "bucket-public-access-block",
                f"its public access block must set {', '.join(PUBLIC_ACCESS_FLAGS)}.",
            )


def no_secret_in_environment(module: Module):
    for block in module.of("resource", "aws_ecs_task_definition"):
        text = str(block.body.get("container_definitions", ""))
        for name, value in _environment_entries(text):
            if SECRET_NAME.search(name) or SECRET_VALUE.search(value):
                yield _finding(
                    block,
                    "secret-in-environment",
                    f"container environment variable {name} carries a secret; use `secrets` (Secrets Manager).",
                )


def _environment_entries(text: str) -> list[tuple[str, str]]:
    """(name, value expression) of each entry in every `environment = [...]` of the definitions."""
    entries = []
    for match in re.finditer(r"\benvironment\s*[=:]\s*\[", text):
        body = _balanced(text, match.end() - 1, "[", "]")
        for item in re.finditer(r"\{", body):
            entry = _balanced(body, item.start(), "{", "}")
            name = re.search(r"\bname\s*[=:]\s*\\?\"([^\"\\]+)", entry)
            value = re.search(r"\bvalue\s*[=:]\s*(.+)", entry, re.DOTALL)
            if name:
                entries.append((name.group(1), value.group(1) if value else ""))
    return entries


def _balanced(text: str, start: int, opening: str, closing: str) -> str:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == opening:
            depth += 1
        elif text[index] == closing:
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    return text[start + 1 :]


RULES = (
    database_encrypted,
    database_private,
    backup_retention,
    no_open_database_port,
    bucket_public_access_block,
    no_secret_in_environment,
)
